/**
 * The Feishu app API of the test server, over real HTTP. The callback receiver below verifies and
 * decrypts with node:crypto from Feishu's documented algorithm, not with the server's helpers.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFeishuServer, type FeishuServer, type FeishuServerOptions } from './support/feishuServer';

const APP_ID = 'cli_test_app_0001';
const APP_SECRET = 'app-secret-0123456789abcdef';
const ENCRYPT_KEY = 'encrypt-key-0123456789';
const VERIFICATION_TOKEN = 'verification-token-0123';
const ALICE = { openId: 'ou_alice', unionId: 'on_alice', userId: 'alice', email: 'alice@example.com' };
const BOB = { openId: 'ou_bob' };

const servers: FeishuServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(app: Partial<NonNullable<FeishuServerOptions['app']>> = {}, rest: FeishuServerOptions = {}): Promise<FeishuServer> {
  const server = await startFeishuServer({ ...rest, app: { appId: APP_ID, appSecret: APP_SECRET, ...app } });
  servers.push(server);
  server.app.registerUser(ALICE);
  server.app.registerUser(BOB);
  return server;
}

async function call(server: FeishuServer, method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(token && { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

const getToken = (server: FeishuServer, secret = APP_SECRET, appId = APP_ID) =>
  call(server, 'POST', '/open-apis/auth/v3/tenant_access_token/internal', { app_id: appId, app_secret: secret });

async function tokenOf(server: FeishuServer): Promise<string> {
  return (await getToken(server)).json.tenant_access_token;
}

function card(extra: Record<string, unknown> = {}, elements: unknown[] = [{ tag: 'markdown', content: 'Due soon' }]) {
  return { schema: '2.0', config: { update_multi: true }, header: { title: { tag: 'plain_text', content: 'Reminder' } }, body: { elements }, ...extra };
}

const send = (server: FeishuServer, token: string, receiveIdType: string, receiveId: string, content: unknown = card(), extra: Record<string, unknown> = {}) =>
  call(
    server,
    'POST',
    `/open-apis/im/v1/messages?receive_id_type=${receiveIdType}`,
    {
      receive_id: receiveId,
      msg_type: 'interactive',
      content: typeof content === 'string' ? content : JSON.stringify(content),
      ...extra,
    },
    token,
  );

const patch = (server: FeishuServer, token: string, messageId: string, content: unknown) =>
  call(server, 'PATCH', `/open-apis/im/v1/messages/${messageId}`, { content: JSON.stringify(content) }, token);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('tenant_access_token', () => {
  test('issued, then reused with its remaining life', async () => {
    const server = await start();
    const first = await getToken(server);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ code: 0, msg: 'ok', tenant_access_token: expect.stringMatching(/^t-/), expire: 7200 });
    const second = await getToken(server);
    expect(second.json.tenant_access_token).toBe(first.json.tenant_access_token);
    expect(second.json.expire).toBeLessThanOrEqual(7200);
    expect(second.json.expire).toBeGreaterThan(7190);
    expect(server.app.tokensIssued).toBe(1);
    expect(server.app.tokenRequests).toBe(2);
  });

  test('a token under 30 min from expiry is replaced; the old one works until its own expiry', async () => {
    // 60 s of life is under 30 min: every request gets a new token.
    const short = await start({ tokenTtlSec: 60 });
    const a = await tokenOf(short);
    expect(await tokenOf(short)).not.toBe(a);
    expect(short.app.tokensIssued).toBe(2);

    const server = await start({ tokenTtlSec: 2, tokenRenewWindowSec: 1 });
    const t0 = Date.now();
    const old = await getToken(server);
    expect(old.json.expire).toBe(2);
    expect((await getToken(server)).json.tenant_access_token).toBe(old.json.tenant_access_token);
    await sleep(1100 - (Date.now() - t0));
    const renewed = await getToken(server);
    expect(renewed.json.tenant_access_token).not.toBe(old.json.tenant_access_token);
    expect(renewed.json.expire).toBe(2);
    expect((await send(server, old.json.tenant_access_token, 'open_id', ALICE.openId)).json.code).toBe(0);
    await sleep(2100 - (Date.now() - t0));
    const expired = await send(server, old.json.tenant_access_token, 'open_id', ALICE.openId);
    expect(expired.status).toBe(400);
    expect(expired.json.code).toBe(99991663);
    expect((await send(server, renewed.json.tenant_access_token, 'open_id', ALICE.openId)).json.code).toBe(0);
    expect(server.app.tokensIssued).toBe(2);
  });

  test('wrong secret or app id: 10014; a missing field: 10003', async () => {
    const server = await start();
    for (const answer of [await getToken(server, 'wrong-secret'), await getToken(server, APP_SECRET, 'cli_other')]) {
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ code: 10014, msg: 'app secret invalid' });
    }
    const missing = await call(server, 'POST', '/open-apis/auth/v3/tenant_access_token/internal', { app_id: APP_ID });
    expect(missing.status).toBe(400);
    expect(missing.json.code).toBe(10003);
    expect(server.app.tokensIssued).toBe(0);
    expect(server.app.tokenRequests).toBe(3);
  });

  test('expireTokens: every issued token answers 99991663; the next request issues a new one', async () => {
    const server = await start();
    const token = await tokenOf(server);
    server.app.expireTokens();
    const answer = await send(server, token, 'open_id', ALICE.openId);
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ code: 99991663, msg: 'Invalid access token for authorization. Please make a request with token attached.' });
    expect((await send(server, '', 'open_id', ALICE.openId)).json.code).toBe(99991663);
    expect((await send(server, 't-made-up', 'open_id', ALICE.openId)).json.code).toBe(99991663);
    const fresh = await tokenOf(server);
    expect(fresh).not.toBe(token);
    expect((await send(server, fresh, 'open_id', ALICE.openId)).json.code).toBe(0);
    expect(server.app.tokensIssued).toBe(2);
  });
});

describe('send', () => {
  test('to each receive id type, resolved to the user and their p2p chat', async () => {
    const server = await start();
    const token = await tokenOf(server);
    const chatId = server.app.chatIdOf(ALICE.openId);
    const ids: Array<[string, string]> = [
      ['open_id', ALICE.openId],
      ['union_id', ALICE.unionId],
      ['user_id', ALICE.userId],
      ['email', ALICE.email],
      ['chat_id', chatId],
    ];
    for (const [type, id] of ids) {
      const answer = await send(server, token, type, id);
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({
        code: 0,
        msg: 'success',
        data: { message_id: expect.stringMatching(/^om_/), chat_id: chatId, msg_type: 'interactive', create_time: expect.stringMatching(/^\d+$/) },
      });
      expect(server.app.message(answer.json.data.message_id)).toMatchObject({
        receiveIdType: type,
        receiveId: id,
        openId: ALICE.openId,
        chatId,
        msgType: 'interactive',
        card: card(),
      });
    }
    expect(server.app.messagesTo(ALICE.openId)).toHaveLength(5);
    expect(server.app.messages[0].cards).toEqual([card()]);

    server.app.registerChat('oc_group');
    const group = await send(server, token, 'chat_id', 'oc_group');
    expect(group.json.data.chat_id).toBe('oc_group');
    expect(server.app.message(group.json.data.message_id)!.openId).toBeUndefined();

    const text = await call(
      server,
      'POST',
      '/open-apis/im/v1/messages?receive_id_type=open_id',
      { receive_id: BOB.openId, msg_type: 'text', content: JSON.stringify({ text: 'hi' }) },
      token,
    );
    expect(text.json.code).toBe(0);
    expect(server.app.messagesTo(BOB.openId)[0].card).toEqual({ text: 'hi' });
    await expect(server.app.waitForMessages(7, 100)).resolves.toHaveLength(7);
  });

  test('refusals: unknown id 230001, bad type 99992402, bad card 230001, too long 230025', async () => {
    const server = await start();
    const token = await tokenOf(server);
    const expectCode = async (answer: Promise<{ status: number; json: any }>, code: number) => {
      const { status, json } = await answer;
      expect({ status, code: json.code }).toEqual({ status: 400, code });
    };
    await expectCode(send(server, token, 'open_id', 'ou_nobody'), 230001);
    await expectCode(send(server, token, 'email', 'nobody@example.com'), 230001);
    await expectCode(send(server, token, 'chat_id', 'oc_unknown'), 230001);
    await expectCode(send(server, token, 'phone', ALICE.openId), 99992402);
    await expectCode(
      call(server, 'POST', '/open-apis/im/v1/messages', { receive_id: ALICE.openId, msg_type: 'interactive', content: JSON.stringify(card()) }, token),
      99992402,
    );
    await expectCode(send(server, token, 'open_id', ALICE.openId, { ...card(), schema: '1.0' }), 230001);
    await expectCode(send(server, token, 'open_id', ALICE.openId, { schema: '2.0', body: {} }), 230001);
    await expectCode(send(server, token, 'open_id', ALICE.openId, '{not json'), 230001);
    await expectCode(send(server, token, 'open_id', ALICE.openId, card(), { msg_type: 'post' }), 99992402);
    await expectCode(send(server, token, 'open_id', ALICE.openId, card(), { uuid: 'u'.repeat(51) }), 99992402);
    // 30 KB of UTF-8: 10,300 three-byte characters are about 30.2 KB.
    const long = card({}, [{ tag: 'markdown', content: '期'.repeat(10_300) }]);
    const tooLong = await send(server, token, 'open_id', ALICE.openId, long);
    expect(tooLong.status).toBe(400);
    expect(tooLong.json).toEqual({ code: 230025, msg: 'message content too long' });
    const justFits = card({}, [{ tag: 'markdown', content: 'x'.repeat(30 * 1024 - JSON.stringify(card({}, [{ tag: 'markdown', content: '' }])).length) }]);
    expect((await send(server, token, 'open_id', ALICE.openId, justFits)).json.code).toBe(0);
    expect(server.app.messages).toHaveLength(1);
  });

  test('uuid: a repeat within the hour answers the same message_id and sends nothing', async () => {
    const server = await start();
    const token = await tokenOf(server);
    const first = await send(server, token, 'open_id', ALICE.openId, card(), { uuid: 'notif-1-attempt' });
    const again = await send(server, token, 'open_id', ALICE.openId, card(), { uuid: 'notif-1-attempt' });
    expect(again.json.code).toBe(0);
    expect(again.json.data.message_id).toBe(first.json.data.message_id);
    expect(server.app.messages).toHaveLength(1);
    expect(server.app.messages[0].uuid).toBe('notif-1-attempt');
    // An hour later the uuid is free again.
    server.app.ageMessage(first.json.data.message_id, 61 * 60 * 1000);
    const later = await send(server, token, 'open_id', ALICE.openId, card(), { uuid: 'notif-1-attempt' });
    expect(later.json.data.message_id).not.toBe(first.json.data.message_id);
    expect(server.app.messages).toHaveLength(2);
  });

  test('autoRegisterUsers accepts any receive id of any type', async () => {
    const server = await start({ autoRegisterUsers: true });
    const token = await tokenOf(server);
    for (const [type, id] of [
      ['open_id', 'ou_new'],
      ['union_id', 'on_new'],
      ['user_id', 'u_new'],
      ['email', 'new@example.com'],
      ['chat_id', 'oc_new'],
    ]) {
      expect((await send(server, token, type, id)).json.code).toBe(0);
    }
    expect(server.app.messagesTo('ou_new')).toHaveLength(1);
    const viaEmail = server.app.messages[3];
    expect((await send(server, token, 'email', 'new@example.com')).json.data.chat_id).toBe(viaEmail.chatId);
  });

  test('requests are recorded and logged with the secret and tokens masked', async () => {
    const lines: string[] = [];
    const server = await start({}, { log: (m) => lines.push(m) });
    const token = await tokenOf(server);
    await send(server, token, 'open_id', ALICE.openId);
    expect(server.requests.map((r) => [r.kind, r.method, r.path, r.httpStatus, r.code])).toEqual([
      ['app', 'POST', '/open-apis/auth/v3/tenant_access_token/internal', 200, 0],
      ['app', 'POST', '/open-apis/im/v1/messages', 200, 0],
    ]);
    const recorded = JSON.stringify(server.requests) + lines.join('\n');
    expect(recorded).not.toContain(APP_SECRET);
    expect(recorded).not.toContain(token);
    expect(server.requests[1].headers.authorization).toMatch(/^Bearer t-/);
    expect(lines.some((l) => l.includes('app send') && l.includes('HTTP 200'))).toBe(true);
  });
});

describe('limits', () => {
  test('app limit per second: HTTP 429, 99991400, x-ogw-ratelimit-reset', async () => {
    const server = await start({ rateLimit: { appPerSecond: 3, appPerMinute: 100, recipientPerSecond: 100 } });
    const token = await tokenOf(server);
    for (let i = 0; i < 3; i += 1) expect((await send(server, token, 'open_id', ALICE.openId)).json.code).toBe(0);
    const limited = await send(server, token, 'open_id', BOB.openId);
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe(99991400);
    expect(limited.headers.get('x-ogw-ratelimit-reset')).toBe('1');
    expect(server.app.rateLimitedCount).toBe(1);
    expect(server.rateLimitedCount).toBe(0);
  });

  test('app limit per minute tells to wait most of a minute', async () => {
    const server = await start({ rateLimit: { appPerSecond: 100, appPerMinute: 4, recipientPerSecond: 100 } });
    const token = await tokenOf(server);
    for (let i = 0; i < 4; i += 1) expect((await send(server, token, 'open_id', ALICE.openId)).json.code).toBe(0);
    const limited = await send(server, token, 'open_id', ALICE.openId);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('x-ogw-ratelimit-reset'))).toBeGreaterThanOrEqual(59);
    server.reset();
    expect((await send(server, token, 'open_id', ALICE.openId)).json.code).toBe(0);
  });

  test('per recipient: the 6th message in a second to one user is 230020; others still get theirs', async () => {
    const server = await start();
    const token = await tokenOf(server);
    for (let i = 0; i < 5; i += 1) expect((await send(server, token, 'open_id', ALICE.openId)).json.code).toBe(0);
    const limited = await send(server, token, 'union_id', ALICE.unionId);
    expect(limited.status).toBe(400);
    expect(limited.json).toEqual({ code: 230020, msg: 'frequency limit' });
    expect((await send(server, token, 'open_id', BOB.openId)).json.code).toBe(0);
    expect(server.app.rateLimitedCount).toBe(1);
    expect(server.app.messages).toHaveLength(6);
  });

  test('rateLimit false turns the limits off', async () => {
    const server = await start({ rateLimit: false });
    const token = await tokenOf(server);
    const answers = await Promise.all(Array.from({ length: 60 }, () => send(server, token, 'open_id', ALICE.openId)));
    expect(answers.every((a) => a.json.code === 0)).toBe(true);
    expect(server.app.rateLimitedCount).toBe(0);
  });

  test('failNext answers the next im/v1 requests with the fault', async () => {
    const server = await start();
    const token = await tokenOf(server);
    server.app.failNext(2, { code: 99991400, resetSec: 3 });
    server.app.failNext(1, { code: 99991664 });
    server.app.failNext(1, { code: 2200, httpStatus: 500, msg: 'Internal Error' });
    const first = await send(server, token, 'open_id', ALICE.openId);
    expect(first.status).toBe(429);
    expect(first.json.code).toBe(99991400);
    expect(first.headers.get('x-ogw-ratelimit-reset')).toBe('3');
    expect((await send(server, token, 'open_id', ALICE.openId)).status).toBe(429);
    const third = await send(server, token, 'open_id', ALICE.openId);
    expect(third.status).toBe(400);
    expect(third.json.code).toBe(99991664);
    const fourth = await send(server, token, 'open_id', ALICE.openId);
    expect(fourth.status).toBe(500);
    expect(fourth.json).toEqual({ code: 2200, msg: 'Internal Error' });
    expect((await send(server, token, 'open_id', ALICE.openId)).json.code).toBe(0);
    expect(server.app.messages).toHaveLength(1);
    expect(server.app.rateLimitedCount).toBe(0);
    // The token endpoint is not an im/v1 request.
    server.app.failNext(1, { code: 99991400 });
    expect((await getToken(server)).json.code).toBe(0);
    expect((await patch(server, token, server.app.messages[0].messageId, card())).status).toBe(429);
  });
});

describe('update and urgent_app', () => {
  test('PATCH redraws a shared card; refused without update_multi, after 14 days, and past 5/s', async () => {
    const server = await start();
    const token = await tokenOf(server);
    const shared = (await send(server, token, 'open_id', ALICE.openId)).json.data.message_id;
    const redrawn = card({}, [{ tag: 'markdown', content: 'Done' }]);
    const ok = await patch(server, token, shared, redrawn);
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ code: 0, msg: 'success', data: {} });
    await server.app.waitForUpdates(1, 100);
    expect(server.app.message(shared)!.card).toEqual(redrawn);
    expect(server.app.message(shared)!.cards).toEqual([card(), redrawn]);
    expect(server.app.updates).toEqual([{ messageId: shared, card: redrawn, at: expect.any(Number) }]);

    const notShared = (await send(server, token, 'open_id', BOB.openId, { ...card(), config: {} })).json.data.message_id;
    const refused = await patch(server, token, notShared, redrawn);
    expect(refused.status).toBe(400);
    expect(refused.json.code).toBe(230001);
    expect((await patch(server, token, 'om_missing', redrawn)).json.code).toBe(230001);
    expect((await patch(server, token, shared, { schema: '2.0' })).json.code).toBe(230001);

    for (let i = 0; i < 4; i += 1) expect((await patch(server, token, shared, redrawn)).json.code).toBe(0);
    const tooFast = await patch(server, token, shared, redrawn);
    expect(tooFast.status).toBe(400);
    expect(tooFast.json.code).toBe(230020);
    expect(server.app.rateLimitedCount).toBe(1);

    server.app.ageMessage(shared, 15 * 24 * 60 * 60 * 1000);
    const old = await patch(server, token, shared, redrawn);
    expect(old.status).toBe(400);
    expect(old.json.code).toBe(230031);
    expect(server.app.updates).toHaveLength(5);
  });

  test('urgent_app buzzes the users of a message', async () => {
    const server = await start();
    const token = await tokenOf(server);
    const messageId = (await send(server, token, 'open_id', ALICE.openId)).json.data.message_id;
    const waiting = server.app.waitForUrgents(1, 1000);
    const answer = await call(
      server,
      'PATCH',
      `/open-apis/im/v1/messages/${messageId}/urgent_app?user_id_type=open_id`,
      { user_id_list: [ALICE.openId] },
      token,
    );
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ code: 0, msg: 'success', data: { invalid_user_id_list: [] } });
    await waiting;
    expect(server.app.urgents).toEqual([{ messageId, userIds: [ALICE.openId], at: expect.any(Number) }]);
    const unknown = await call(
      server,
      'PATCH',
      '/open-apis/im/v1/messages/om_missing/urgent_app?user_id_type=open_id',
      { user_id_list: [ALICE.openId] },
      token,
    );
    expect(unknown.status).toBe(400);
    expect(unknown.json.code).toBe(230001);
    const noToken = await call(server, 'PATCH', `/open-apis/im/v1/messages/${messageId}/urgent_app?user_id_type=open_id`, { user_id_list: [ALICE.openId] });
    expect(noToken.json.code).toBe(99991663);
  });
});

/** dueflow's side, written from Feishu's documentation: verify, decrypt, answer a toast and a card. */
interface Received {
  headers: http.IncomingHttpHeaders;
  raw: string;
  event: any;
  signatureOk: boolean;
}

async function startReceiver(
  encryptKey: string | undefined,
  answer: (event: any) => unknown,
): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers['x-lark-request-timestamp']);
      const nonce = String(req.headers['x-lark-request-nonce']);
      const expected = crypto
        .createHash('sha256')
        .update(timestamp + nonce + (encryptKey ?? '') + raw)
        .digest('hex');
      const signatureOk = req.headers['x-lark-signature'] === expected;
      let event = JSON.parse(raw);
      if (encryptKey && typeof event.encrypt === 'string') {
        const data = Buffer.from(event.encrypt, 'base64');
        const decipher = crypto.createDecipheriv('aes-256-cbc', crypto.createHash('sha256').update(encryptKey).digest(), data.subarray(0, 16));
        event = JSON.parse(Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]).toString('utf8'));
      }
      received.push({ headers: req.headers, raw, event, signatureOk });
      if (!signatureOk) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad signature"}');
      const body = event.type === 'url_verification' ? { challenge: event.challenge } : answer(event);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/feishu/callback`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const buttonCard = () =>
  card({}, [
    { tag: 'markdown', content: 'Task due' },
    {
      tag: 'column_set',
      columns: [
        {
          tag: 'column',
          elements: [
            {
              tag: 'button',
              text: { tag: 'plain_text', content: 'Confirm' },
              type: 'primary',
              behaviors: [{ type: 'callback', value: { action: 'confirm', n: 'n1' } }],
            },
          ],
        },
        {
          tag: 'column',
          elements: [{ tag: 'button', text: { tag: 'plain_text', content: 'Open' }, behaviors: [{ type: 'open_url', default_url: 'https://example.com' }] }],
        },
      ],
    },
    {
      tag: 'collapsible_panel',
      elements: [{ tag: 'button', text: { tag: 'plain_text', content: 'Snooze' }, behaviors: [{ type: 'callback', value: { action: 'snooze', n: 'n1' } }] }],
    },
  ]);

describe('card callbacks', () => {
  test('press, encrypted: signed, decryptable, the answered card becomes the current card', async () => {
    const done = card({}, [{ tag: 'markdown', content: 'Confirmed by Alice' }]);
    const receiver = await startReceiver(ENCRYPT_KEY, () => ({ toast: { type: 'success', content: 'Confirmed' }, card: { type: 'raw', data: done } }));
    try {
      const server = await start({ encryptKey: ENCRYPT_KEY, verificationToken: VERIFICATION_TOKEN, callbackUrl: receiver.url, tenantKey: 'tenant_x' });
      const token = await tokenOf(server);
      const messageId = (await send(server, token, 'open_id', ALICE.openId, buttonCard())).json.data.message_id;
      expect(server.app.buttons(messageId)).toEqual([
        { text: 'Confirm', value: { action: 'confirm', n: 'n1' } },
        { text: 'Snooze', value: { action: 'snooze', n: 'n1' } },
      ]);

      const before = Math.floor(Date.now() / 1000);
      const result = await server.app.press({ messageId, action: 'confirm' });
      expect(result).toMatchObject({ status: 200, body: { toast: { type: 'success', content: 'Confirmed' }, card: { type: 'raw', data: done } } });
      expect(result.ms).toBeGreaterThanOrEqual(0);
      const [got] = receiver.received;
      expect(got.signatureOk).toBe(true);
      expect(Object.keys(JSON.parse(got.raw))).toEqual(['encrypt']);
      expect(got.headers['content-type']).toBe('application/json');
      expect(Number(got.headers['x-lark-request-timestamp'])).toBeGreaterThanOrEqual(before);
      expect(got.headers['x-lark-request-nonce']).toEqual(expect.any(String));
      expect(got.event).toEqual({
        schema: '2.0',
        header: {
          event_id: result.eventId,
          event_type: 'card.action.trigger',
          create_time: expect.stringMatching(/^\d{13}$/),
          token: VERIFICATION_TOKEN,
          app_id: APP_ID,
          tenant_key: 'tenant_x',
        },
        event: {
          operator: { open_id: ALICE.openId, union_id: ALICE.unionId, user_id: ALICE.userId },
          token: expect.stringMatching(/^c-/),
          action: { value: { action: 'confirm', n: 'n1' }, tag: 'button' },
          host: 'im_message',
          context: { open_message_id: messageId, open_chat_id: server.app.chatIdOf(ALICE.openId) },
        },
      });
      expect(server.app.message(messageId)!.card).toEqual(done);
      expect(server.app.message(messageId)!.cards).toEqual([buttonCard(), done]);
      expect(server.app.redraws).toEqual([{ messageId, card: done, eventId: result.eventId, at: expect.any(Number) }]);

      // The redrawn card has no buttons left: the error names what exists.
      await expect(server.app.press({ messageId, action: 'confirm' })).rejects.toThrow(/no callback button with action "confirm".*none/);
    } finally {
      await receiver.close();
    }
  });

  test('press options: replayed event id, old timestamp, tampered value, wrong signature, other operator', async () => {
    const receiver = await startReceiver(ENCRYPT_KEY, () => ({ toast: { type: 'info', content: 'ok' } }));
    try {
      const server = await start({ encryptKey: ENCRYPT_KEY, callbackUrl: receiver.url });
      const token = await tokenOf(server);
      const messageId = (await send(server, token, 'open_id', ALICE.openId, buttonCard())).json.data.message_id;
      await expect(server.app.press({ messageId, action: 'delete' })).rejects.toThrow(/"Confirm" \(action "confirm"\), "Snooze" \(action "snooze"\)/);
      await expect(server.app.press({ messageId: 'om_missing', action: 'confirm' })).rejects.toThrow(/no message om_missing/);

      const first = await server.app.press({
        messageId,
        action: 'snooze',
        eventId: 'ev-1',
        timestamp: 1_700_000_000,
        nonce: 'nonce-1',
        extraValue: { n: 'other', admin: true },
      });
      expect(first.eventId).toBe('ev-1');
      const replay = await server.app.press({ messageId, action: 'snooze', eventId: 'ev-1' });
      const wrong = await server.app.press({ messageId, action: 'snooze', signWith: 'not-the-key' });
      const bob = await server.app.press({ messageId, action: 'confirm', operatorOpenId: BOB.openId, encrypt: false });
      const [a, b, c, d] = receiver.received;
      expect(a.headers['x-lark-request-timestamp']).toBe('1700000000');
      expect(a.headers['x-lark-request-nonce']).toBe('nonce-1');
      expect(a.event.header.create_time).toBe('1700000000000');
      expect(a.event.event.action.value).toEqual({ action: 'snooze', n: 'other', admin: true });
      expect(b.event.header.event_id).toBe('ev-1');
      expect(replay.status).toBe(200);
      expect(c.signatureOk).toBe(false);
      expect(wrong.status).toBe(401);
      expect(d.signatureOk).toBe(true);
      expect(JSON.parse(d.raw).schema).toBe('2.0');
      expect(d.event.event.operator).toEqual({ open_id: BOB.openId });
      expect(bob.status).toBe(200);
      // Answers without a card leave the card alone.
      expect(server.app.message(messageId)!.cards).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  test('press without an encrypt key: plain JSON event, signed with an empty key', async () => {
    const receiver = await startReceiver(undefined, () => ({ toast: { type: 'success', content: 'Snoozed' }, card: { type: 'raw', data: card() } }));
    try {
      const server = await start({ callbackUrl: receiver.url });
      const token = await tokenOf(server);
      const messageId = (await send(server, token, 'open_id', ALICE.openId, buttonCard())).json.data.message_id;
      const result = await server.app.press({ messageId, action: 'snooze' });
      expect(result.status).toBe(200);
      const [got] = receiver.received;
      expect(got.signatureOk).toBe(true);
      expect(JSON.parse(got.raw)).toEqual(got.event);
      expect(got.event.header.event_type).toBe('card.action.trigger');
      expect(got.event.header.token).toBe('');
      expect(server.app.message(messageId)!.card).toEqual(card());
      await expect(server.app.verifyUrl({ encrypt: true })).rejects.toThrow(/needs app.encryptKey/);
    } finally {
      await receiver.close();
    }
  });

  test('verifyUrl sends the url_verification challenge, encrypted or not', async () => {
    const receiver = await startReceiver(ENCRYPT_KEY, () => ({}));
    try {
      const server = await start({ encryptKey: ENCRYPT_KEY, verificationToken: VERIFICATION_TOKEN });
      await expect(server.app.verifyUrl()).rejects.toThrow(/callback URL/);
      server.app.setCallbackUrl(receiver.url);
      const encrypted = await server.app.verifyUrl({ challenge: 'ch-1' });
      expect(encrypted).toMatchObject({ status: 200, body: { challenge: 'ch-1' } });
      expect(Object.keys(JSON.parse(receiver.received[0].raw))).toEqual(['encrypt']);
      expect(receiver.received[0].event).toEqual({ type: 'url_verification', challenge: 'ch-1', token: VERIFICATION_TOKEN });
      const plain = await server.app.verifyUrl({ encrypt: false });
      expect(plain.status).toBe(200);
      expect(receiver.received[1].signatureOk).toBe(true);
      expect(JSON.parse(receiver.received[1].raw)).toEqual({ type: 'url_verification', challenge: plain.body.challenge, token: VERIFICATION_TOKEN });
    } finally {
      await receiver.close();
    }
  });

  test('a callback that answers too late: status 0, card kept', async () => {
    const slow = http.createServer((_req, res) => void setTimeout(() => res.writeHead(200).end('{}'), 500));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const server = await start({ callbackUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/cb`, callbackTimeoutMs: 100 });
      const token = await tokenOf(server);
      const messageId = (await send(server, token, 'open_id', ALICE.openId, buttonCard())).json.data.message_id;
      const result = await server.app.press({ messageId, action: 'confirm' });
      expect(result.status).toBe(0);
      expect(server.app.message(messageId)!.cards).toHaveLength(1);
    } finally {
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
  });
});

describe('the server around the app', () => {
  test('without `app`, its paths are unknown paths and server.app throws', async () => {
    const server = await startFeishuServer();
    servers.push(server);
    expect(() => server.app).toThrow(/without the app API/);
    const answer = await call(server, 'POST', '/open-apis/im/v1/messages?receive_id_type=open_id', { receive_id: 'ou_x' });
    expect(answer.status).toBe(404);
    expect(server.requests[0].kind).toBe('other');
  });

  test('reset clears app records and windows; users and tokens stay; bots still work', async () => {
    const server = await start({ rateLimit: { appPerSecond: 2, appPerMinute: 100, recipientPerSecond: 100 } });
    server.registerBot('bot-token');
    const token = await tokenOf(server);
    await send(server, token, 'open_id', ALICE.openId);
    await send(server, token, 'open_id', ALICE.openId);
    expect((await send(server, token, 'open_id', ALICE.openId)).status).toBe(429);
    server.app.failNext(1, { code: 2200 });
    server.reset();
    expect(server.app.messages).toHaveLength(0);
    expect(server.app.rateLimitedCount).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect((await send(server, token, 'email', ALICE.email)).json.code).toBe(0);
    const bot = await call(server, 'POST', '/open-apis/bot/v2/hook/bot-token', { msg_type: 'text', content: { text: 'hi' } });
    expect(bot.json.code).toBe(0);
    expect(server.messages).toHaveLength(1);
    expect(server.requests.map((r) => r.kind)).toEqual(['app', 'bot']);
  });
});
