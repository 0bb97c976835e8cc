/**
 * POST /api/v1/feishu/callback over real HTTP: against a whole dueflow (its wiring, its OpenAPI
 * entry, its refusals) and, where the handler's calls are counted, the router on an express app
 * of the test's own with a real context. Signatures and encryption are computed here from
 * Feishu's published algorithm with node:crypto, never by dueflow's code.
 */
import http from 'node:http';
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import express from 'express';
import type { CardActionEvent, CardActionHandler } from '../src/cards/actions';
import type { AppContext } from '../src/context';
import { closeContext, createContext } from '../src/context';
import { createLogger } from '../src/logger';
import { feishuCallbackRouter } from '../src/http/routes/feishuCallback';
import { testConfig, waitFor } from './support/env';
import type { TestDueflow } from './support/harness';
import { clearDatabase, startTestDueflow } from './support/harness';

const feishuEnv = {
  FEISHU_APP_ID: 'cli_callbacktest01',
  FEISHU_APP_SECRET: 'callback-app-secret-never-shown',
  FEISHU_ENCRYPT_KEY: 'callback-encrypt-key-never-shown',
  FEISHU_VERIFICATION_TOKEN: 'callback-verification-token-never-shown',
};
/** The card's own update token inside the event: never logged either. */
const cardToken = 'c-card-update-token-never-shown';
const path = '/api/v1/feishu/callback';

interface SendOptions {
  key?: string;
  tsSec?: number;
  nonce?: string;
  omit?: string[];
  signature?: string;
  encrypt?: boolean;
}

function encrypt(plain: string, key = feishuEnv.FEISHU_ENCRYPT_KEY): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', createHash('sha256').update(key).digest(), iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final()]).toString('base64');
}

/** A request as Feishu makes it: the body (encrypted when asked), signed over its raw bytes. */
async function send(baseUrl: string, payload: unknown, opts: SendOptions = {}) {
  const plain = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const raw = opts.encrypt ? JSON.stringify({ encrypt: encrypt(plain) }) : plain;
  const ts = String(opts.tsSec ?? Math.floor(Date.now() / 1000));
  const nonce = opts.nonce ?? randomUUID();
  const signature =
    opts.signature ??
    createHash('sha256')
      .update(ts + nonce + (opts.key ?? feishuEnv.FEISHU_ENCRYPT_KEY) + raw)
      .digest('hex');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-lark-request-timestamp': ts,
    'x-lark-request-nonce': nonce,
    'x-lark-signature': signature,
  };
  for (const name of opts.omit ?? []) delete headers[name];
  const started = Date.now();
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST', headers, body: raw });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, ms: Date.now() - started };
}

function cardEvent(opts: { eventId?: string; value?: unknown; appId?: string; token?: string; eventType?: string } = {}) {
  return {
    schema: '2.0',
    header: {
      event_id: opts.eventId ?? `ev-${randomUUID()}`,
      event_type: opts.eventType ?? 'card.action.trigger',
      create_time: String(Date.now()),
      token: opts.token ?? feishuEnv.FEISHU_VERIFICATION_TOKEN,
      app_id: opts.appId ?? feishuEnv.FEISHU_APP_ID,
      tenant_key: 'tenant-1',
    },
    event: {
      operator: { open_id: 'ou_alice', union_id: 'on_alice', user_id: 'alice' },
      token: cardToken,
      action: { value: opts.value ?? { action: 'confirm', previewId: 'p-1' }, tag: 'button' },
      host: 'im_message',
      context: { open_message_id: 'om_message1', open_chat_id: 'oc_chat1' },
    },
  };
}
const verification = (token = feishuEnv.FEISHU_VERIFICATION_TOKEN) => ({ type: 'url_verification', challenge: `ch-${randomUUID()}`, token });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let df: TestDueflow;
let noKey: TestDueflow;

// The router on an app of the test's own, with a handler that counts its calls.
let ctx: AppContext;
let server: http.Server;
let own: string;
const ownLogs: string[] = [];
const calls: CardActionEvent[] = [];
const finished: string[] = [];
const callsOf = (eventId: string) => calls.filter((c) => c.eventId === eventId).length;
const countingHandler: CardActionHandler = async (event) => {
  calls.push(event);
  const v = event.value as { delayMs?: number; fail?: boolean } | undefined;
  if (v?.delayMs) await sleep(v.delayMs);
  finished.push(event.eventId);
  if (v?.fail) throw new Error(`handler exploded on ${event.eventId}`);
  return {
    toast: { type: 'success', content: `done ${event.eventId}` },
    card: { type: 'raw', data: { schema: '2.0', body: { elements: [{ tag: 'markdown', content: 'Confirmed' }] } } },
  };
};
const keyOf = (eventId: string) => `${ctx.config.QUEUE_PREFIX}:feishu-callback:${eventId}`;

beforeAll(async () => {
  [df, noKey] = await Promise.all([
    startTestDueflow('api', feishuEnv),
    startTestDueflow('api', { FEISHU_APP_ID: feishuEnv.FEISHU_APP_ID, FEISHU_APP_SECRET: feishuEnv.FEISHU_APP_SECRET }),
  ]);
  ctx = await createContext(
    testConfig({ ...feishuEnv, LOG_LEVEL: 'debug' }),
    createLogger('debug', {
      write: (line: string) => {
        ownLogs.push(line);
      },
    }),
  );
  const app = express();
  app.use(feishuCallbackRouter(ctx, countingHandler));
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  own = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  const keys = await ctx.redis.keys(`${ctx.config.QUEUE_PREFIX}:*`);
  if (keys.length) await ctx.redis.del(...keys);
  await clearDatabase(ctx.mongo);
  await closeContext(ctx);
  await Promise.all([df.stop(), noKey.stop()]);
});

describe('url_verification', () => {
  test('plain: answered {challenge} within 1 s', async () => {
    const body = verification();
    const res = await send(df.baseUrl, body);
    expect(res).toMatchObject({ status: 200, body: { challenge: body.challenge } });
    expect(Object.keys(res.body)).toEqual(['challenge']);
    expect(res.ms).toBeLessThan(1000);
  });

  test('encrypted: decrypted first, answered {challenge} within 1 s', async () => {
    const body = verification();
    const res = await send(df.baseUrl, body, { encrypt: true });
    expect(res).toMatchObject({ status: 200, body: { challenge: body.challenge } });
    expect(res.ms).toBeLessThan(1000);
  });

  test('a wrong verification token or a wrong signature → 401', async () => {
    expect(await send(df.baseUrl, verification('not-the-verification-token'))).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
    expect(await send(df.baseUrl, verification(), { key: 'guessed-encrypt-key-123' })).toMatchObject({
      status: 401,
      body: { error: { code: 'unauthorized' } },
    });
  });
});

describe('card.action.trigger', () => {
  test('plain and encrypted reach the handler with the right CardActionEvent', async () => {
    for (const encrypted of [false, true]) {
      const body = cardEvent({ value: { action: 'snooze', minutes: 30, nested: ['a', 1, null] } });
      const res = await send(own, body, { encrypt: encrypted });
      expect([encrypted, res.status, res.body.toast]).toEqual([encrypted, 200, { type: 'success', content: `done ${body.header.event_id}` }]);
      expect(res.body.card).toEqual({ type: 'raw', data: { schema: '2.0', body: { elements: [{ tag: 'markdown', content: 'Confirmed' }] } } });
      expect(calls.filter((c) => c.eventId === body.header.event_id)).toEqual([
        {
          eventId: body.header.event_id,
          operator: { openId: 'ou_alice', unionId: 'on_alice', userId: 'alice' },
          value: { action: 'snooze', minutes: 30, nested: ['a', 1, null] },
          openMessageId: 'om_message1',
          openChatId: 'oc_chat1',
        },
      ]);
    }
  });

  test("dueflow's own wiring answers with the card action handler's toast", async () => {
    for (const encrypted of [false, true]) {
      const res = await send(df.baseUrl, cardEvent(), { encrypt: encrypted });
      expect(res.status).toBe(200);
      expect(['success', 'info', 'warning', 'error']).toContain(res.body.toast?.type);
      expect(typeof res.body.toast.content).toBe('string');
    }
  });

  test('the answer is kept 48 h under the queue prefix', async () => {
    const body = cardEvent();
    await send(own, body);
    const ttl = await ctx.redis.pttl(keyOf(body.header.event_id));
    expect(ttl).toBeGreaterThan(47 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(48 * 3_600_000);
  });

  test('an event type dueflow does not act on → 200 {}, handler not called', async () => {
    const body = cardEvent({ eventType: 'im.message.receive_v1' });
    expect(await send(own, body)).toMatchObject({ status: 200, body: {} });
    expect(callsOf(body.header.event_id)).toBe(0);
    expect(await send(df.baseUrl, body)).toMatchObject({ status: 200, body: {} });
  });
});

describe('refused with 401, nothing called, nothing stored', () => {
  const cases: Array<[string, (e: ReturnType<typeof cardEvent>) => [unknown, SendOptions], RegExp]> = [
    ['a wrong signature', (e) => [e, { signature: 'ab'.repeat(32) }], /X-Lark-Signature/i],
    ['signed with another key', (e) => [e, { key: 'another-encrypt-key-0000' }], /X-Lark-Signature/i],
    ['no signature header', (e) => [e, { omit: ['x-lark-signature'] }], /missing header x-lark-signature/i],
    ['no headers at all', (e) => [e, { omit: ['x-lark-signature', 'x-lark-request-nonce', 'x-lark-request-timestamp'] }], /missing header/i],
    ['a timestamp 6 minutes old', (e) => [e, { tsSec: Math.floor(Date.now() / 1000) - 360 }], /more than 5 minutes old/],
    ['a timestamp 6 minutes ahead', (e) => [e, { tsSec: Math.floor(Date.now() / 1000) + 360 }], /more than 5 minutes ahead/],
    ['a wrong verification token', (e) => [{ ...e, header: { ...e.header, token: 'not-the-verification-token' } }, {}], /FEISHU_VERIFICATION_TOKEN/],
    ['no verification token', (e) => [{ ...e, header: { ...e.header, token: undefined } }, {}], /FEISHU_VERIFICATION_TOKEN/],
    ['another app_id', (e) => [{ ...e, header: { ...e.header, app_id: 'cli_someoneelse' } }, {}], /app_id does not match FEISHU_APP_ID/],
    ['another app_id, encrypted', (e) => [{ ...e, header: { ...e.header, app_id: 'cli_someoneelse' } }, { encrypt: true }], /app_id/],
  ];
  test.each(cases)('%s', async (_name, make, message) => {
    const event = cardEvent();
    const [payload, opts] = make(event);
    for (const baseUrl of [own, df.baseUrl]) {
      const res = await send(baseUrl, payload, opts);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(message), details: null } });
    }
    expect(callsOf(event.header.event_id)).toBe(0);
    expect(await ctx.redis.exists(keyOf(event.header.event_id))).toBe(0);
    expect(await df.ctx.redis.exists(`${df.config.QUEUE_PREFIX}:feishu-callback:${event.header.event_id}`)).toBe(0);
  });

  test('no FEISHU_ENCRYPT_KEY configured: every callback is refused, and the message says why', async () => {
    for (const [payload, opts] of [
      [cardEvent(), {}],
      [cardEvent(), { encrypt: true }],
      [verification(), {}],
      [cardEvent(), { omit: ['x-lark-signature'] }],
    ] as Array<[unknown, SendOptions]>) {
      const res = await send(noKey.baseUrl, payload, opts);
      expect(res).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', message: 'callbacks are refused: FEISHU_ENCRYPT_KEY is not set' } } });
    }
    expect(await noKey.ctx.redis.keys(`${noKey.config.QUEUE_PREFIX}:feishu-callback:*`)).toEqual([]);
  });
});

describe('replays and concurrency', () => {
  test('a replayed event_id (re-signed, as Feishu retries) gets the same answer; the handler runs once', async () => {
    const body = cardEvent();
    const first = await send(own, body);
    const again = await send(own, body);
    const encryptedAgain = await send(own, body, { encrypt: true });
    expect(first.status).toBe(200);
    expect(again).toMatchObject({ status: 200, body: first.body });
    expect(encryptedAgain).toMatchObject({ status: 200, body: first.body });
    expect(callsOf(body.header.event_id)).toBe(1);
  });

  test('two copies at once: the handler runs once, both get its answer', async () => {
    const body = cardEvent({ value: { delayMs: 400 } });
    const [a, b] = await Promise.all([send(own, body), send(own, body)]);
    expect(a).toMatchObject({ status: 200, body: { toast: { type: 'success', content: `done ${body.header.event_id}` } } });
    expect(b.body).toEqual(a.body);
    expect(callsOf(body.header.event_id)).toBe(1);
  });

  test('a slow handler (4 s): answered within 3 s with an info toast; a second copy meanwhile does nothing; a replay after it finished gets its answer', async () => {
    const body = cardEvent({ value: { delayMs: 4000 } });
    const eventId = body.header.event_id;
    const firstCopy = send(own, body);
    await sleep(100);
    const secondCopy = send(own, body);
    const [first, second] = await Promise.all([firstCopy, secondCopy]);
    expect(first.status).toBe(200);
    expect(first.body.toast.type).toBe('info');
    expect(first.ms).toBeLessThan(3000);
    expect(second.status).toBe(200);
    expect(second.body.toast.type).toBe('info');
    expect(second.ms).toBeLessThan(3000);
    expect(finished).not.toContain(eventId);

    await waitFor(async () => finished.includes(eventId) && (await ctx.redis.get(keyOf(eventId))) !== 'pending', 10_000, 'the slow handler to finish');
    const replay = await send(own, body);
    expect(replay).toMatchObject({ status: 200, body: { toast: { type: 'success', content: `done ${eventId}` }, card: { type: 'raw' } } });
    expect(callsOf(eventId)).toBe(1);
  }, 20_000);

  test('a handler that throws: 200 with an error toast, kept like any answer', async () => {
    const body = cardEvent({ value: { fail: true } });
    const res = await send(own, body);
    expect(res.status).toBe(200);
    expect(res.body.toast.type).toBe('error');
    expect(res.body.toast.content).not.toContain('exploded');
    expect(await send(own, body)).toMatchObject({ status: 200, body: res.body });
    expect(callsOf(body.header.event_id)).toBe(1);
    expect(ownLogs.some((l) => l.includes('card action handler failed') && l.includes(body.header.event_id))).toBe(true);
  });
});

describe('bad bodies after a valid signature', () => {
  test('not JSON → 400 invalid_json', async () => {
    for (const baseUrl of [own, df.baseUrl]) {
      expect(await send(baseUrl, '{"schema": "2.0", ')).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
    }
  });

  test('encrypted text that is not JSON, or does not decrypt → 400 naming body.encrypt', async () => {
    const notJson = await send(df.baseUrl, JSON.stringify({ encrypt: encrypt('not json at all') }));
    expect(notJson).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining('body.encrypt') } } });
    const otherKey = await send(df.baseUrl, JSON.stringify({ encrypt: encrypt(JSON.stringify(verification()), 'another-encrypt-key-0000') }));
    expect(otherKey).toMatchObject({ status: 400, body: { error: { code: 'validation_failed', message: expect.stringContaining('body.encrypt') } } });
    const notBase64 = await send(df.baseUrl, JSON.stringify({ encrypt: 42 }));
    expect(notBase64).toMatchObject({ status: 400, body: { error: { code: 'validation_failed', message: expect.stringContaining('body.encrypt') } } });
  });

  test('a wrong shape → 400 naming the field; the handler is not called', async () => {
    const event = cardEvent();
    const broken = { ...event, event: { ...event.event, context: { open_chat_id: 'oc_1' } } };
    const res = await send(own, broken);
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'validation_failed' } } });
    expect(res.body.error.details).toEqual([expect.objectContaining({ field: 'body.event.context.open_message_id' })]);
    expect(callsOf(event.header.event_id)).toBe(0);
    expect((await send(df.baseUrl, { hello: 'world' })).body.error.message).toMatch(/body\.schema/);
  });

  test('a body over BODY_LIMIT → 413 in the error shape', async () => {
    const event = cardEvent({ value: { padding: 'x'.repeat(150 * 1024) } });
    for (const baseUrl of [own, df.baseUrl]) {
      expect(await send(baseUrl, event)).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    }
    expect(callsOf(event.header.event_id)).toBe(0);
  });
});

test('/openapi.json documents the route with the feishu auth kind and its signature scheme', async () => {
  const doc = (await (await fetch(`${df.baseUrl}/openapi.json`)).json()) as any;
  const op = doc.paths[path].post;
  expect(op['x-dueflow-auth']).toBe('feishu');
  expect(op.security).toEqual([{ feishuSignature: [] }]);
  expect(doc.components.securitySchemes.feishuSignature).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Lark-Signature' });
  expect(op.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['x-lark-request-timestamp', 'x-lark-request-nonce', 'x-lark-signature']));
  expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '413']));
});

test('no secret, token or raw body in the logs; event ids and outcomes are there', () => {
  const all = [...ownLogs, ...df.logs, ...noKey.logs].join('\n');
  for (const secret of [
    feishuEnv.FEISHU_ENCRYPT_KEY,
    feishuEnv.FEISHU_VERIFICATION_TOKEN,
    feishuEnv.FEISHU_APP_SECRET,
    cardToken,
    '"encrypt"',
    'ou_alice',
    'xxxxxxxx',
  ]) {
    expect([secret, all.includes(secret)]).toEqual([secret, false]);
  }
  expect(ownLogs.some((l) => /"eventId":"ev-/.test(l) && l.includes('"openMessageId":"om_message1"') && l.includes('"outcome":"answered"'))).toBe(true);
  expect(ownLogs.some((l) => l.includes('"outcome":"replayed"'))).toBe(true);
});
