/** Providers against the Feishu-compatible server, over real HTTP. */
import { createHmac, randomUUID } from 'node:crypto';
import {
  buildFeishuBotBody,
  classifyFeishuResponse,
  createFeishuBotProvider,
  createFeishuFlowProvider,
  feishuBotProvider,
  feishuFlowProvider,
  feishuSign,
  maskSecret,
  maskWebhookUrl,
  providerFor,
  sendToChannel,
} from '../src/providers';
import type { Delivery, FeishuBotChannel, FeishuFlowChannel, ProviderOutcome } from '../src/providers';
import { startFeishuServer, type FeishuServer } from './support/feishuServer';

const MAX = 20 * 1024;
let server: FeishuServer;

beforeAll(async () => {
  server = await startFeishuServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

const token = () => `tok${randomUUID().replace(/-/g, '')}`;
const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

function delivery(message: Partial<Delivery['message']> = {}): Delivery {
  return {
    notificationId: 'n-1',
    userId: 'u-1',
    triggerType: 'important_urgent_task',
    target: { type: 'task', id: 't-1' },
    message: {
      title: '日程建议已生成',
      summary: '任务「写周报」还没有排进日程，建议放到 15:00-16:00。',
      actionText: '去确认',
      actionUrl: 'https://app.example.com/previews/p-1',
      ...message,
    },
    traceId: 'trace-1',
    triggerId: 'tr-1',
    previewId: 'p-1',
  };
}

function bot(t: string, extra: Partial<FeishuBotChannel> = {}): FeishuBotChannel {
  return { kind: 'feishu_bot', webhookUrl: server.botUrl(t), format: 'card', ...extra };
}

async function postRaw(url: string, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, body: await res.json() };
}

describe('feishu_bot formats', () => {
  it.each(['text', 'post', 'card'] as const)('%s body is accepted and recorded', async (format) => {
    const t = token();
    server.registerBot(t);
    const outcome = await feishuBotProvider.send(bot(t, { format }), delivery());
    expect(outcome).toMatchObject({ kind: 'sent', code: 'ok', rateLimited: false, httpStatus: 200, providerCode: 0 });
    expect(outcome.response).toEqual({ status: 200, body: { code: 0, msg: 'success', data: {} } });

    const [message] = await server.waitForMessages(1, 2000);
    expect(message.kind).toBe('bot');
    expect(message.token).toBe(t);
    const body = message.body;
    if (format === 'text') {
      expect(body.msg_type).toBe('text');
      expect(body.content.text).toBe('日程建议已生成\n任务「写周报」还没有排进日程，建议放到 15:00-16:00。\n去确认: https://app.example.com/previews/p-1');
    } else if (format === 'post') {
      expect(body.msg_type).toBe('post');
      expect(body.content.post.zh_cn.title).toBe('日程建议已生成');
      expect(body.content.post.zh_cn.content).toEqual([
        [{ tag: 'text', text: '任务「写周报」还没有排进日程，建议放到 15:00-16:00。' }],
        [{ tag: 'a', text: '去确认', href: 'https://app.example.com/previews/p-1' }],
      ]);
    } else {
      expect(body.msg_type).toBe('interactive');
      expect(body.content).toBeUndefined(); // the card is top level, not inside content
      expect(body.card.header.title).toEqual({ tag: 'plain_text', content: '日程建议已生成' });
      expect(body.card.elements[0]).toEqual({ tag: 'div', text: { tag: 'lark_md', content: '任务「写周报」还没有排进日程，建议放到 15:00-16:00。' } });
      expect(body.card.elements[1].actions[0]).toMatchObject({ tag: 'button', text: { content: '去确认' }, url: 'https://app.example.com/previews/p-1' });
    }
    expect(body.sign).toBeUndefined();
    expect(server.requests[0].headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('card without an action URL has no button', () => {
    const body = buildFeishuBotBody(bot('x'), delivery({ actionUrl: undefined }), new Date()) as any;
    expect(body.card.elements).toHaveLength(1);
  });

  it('unknown bot token → permanent feishu_19001', async () => {
    const outcome = await feishuBotProvider.send(bot(token()), delivery());
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'feishu_19001', providerCode: 19001, httpStatus: 400, rateLimited: false });
    expect(server.messages).toHaveLength(0);
  });
});

describe('feishu_bot signature', () => {
  const secret = 'sec-0123456789abcdef-SECRET';

  it('matches Feishu: HMAC-SHA256 keyed by timestamp\\nsecret over an empty message', () => {
    // Recomputed here; the second line is DingTalk's order, which Feishu rejects.
    expect(feishuSign('1700000000', 'abc')).toBe(createHmac('sha256', '1700000000\nabc').update(Buffer.alloc(0)).digest('base64'));
    expect(feishuSign('1700000000', 'abc')).not.toBe(createHmac('sha256', 'abc').update('1700000000\nabc').digest('base64'));
  });

  it('right secret → sent, with timestamp in seconds and sign at the top level', async () => {
    const t = token();
    server.registerBot(t, { secret });
    const before = Math.floor(Date.now() / 1000);
    const outcome = await feishuBotProvider.send(bot(t, { signingSecret: secret }), delivery());
    expect(outcome.kind).toBe('sent');
    const { body } = server.messages[0];
    expect(typeof body.timestamp).toBe('string');
    expect(Number(body.timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(body.timestamp)).toBeLessThanOrEqual(before + 2);
    expect(body.sign).toBe(feishuSign(body.timestamp, secret));
    // The audit copy keeps the timestamp but never the sign.
    expect((outcome.request.body as any).timestamp).toBe(body.timestamp);
    expect((outcome.request.body as any).sign).toBeUndefined();
  });

  it('wrong secret → permanent feishu_19021', async () => {
    const t = token();
    server.registerBot(t, { secret });
    const outcome = await feishuBotProvider.send(bot(t, { signingSecret: 'another-secret-entirely' }), delivery());
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'feishu_19021', providerCode: 19021 });
    expect(server.messages).toHaveLength(0);
  });

  it('missing signature on a signed bot → 19021', async () => {
    const t = token();
    server.registerBot(t, { secret });
    expect(await feishuBotProvider.send(bot(t), delivery())).toMatchObject({ kind: 'permanent', code: 'feishu_19021' });
  });

  it('timestamp more than an hour old → 19021 even with a correct sign', async () => {
    const t = token();
    server.registerBot(t, { secret });
    const signed = (ts: number) => {
      const timestamp = String(ts);
      return JSON.stringify({ timestamp, sign: feishuSign(timestamp, secret), msg_type: 'text', content: { text: 'hi' } });
    };
    const now = Math.floor(Date.now() / 1000);
    expect((await postRaw(server.botUrl(t), signed(now - 3700))).body.code).toBe(19021);
    expect((await postRaw(server.botUrl(t), signed(now + 3700))).body.code).toBe(19021);
    expect((await postRaw(server.botUrl(t), signed(now - 60))).body.code).toBe(0);

    const slowClock = createFeishuBotProvider({ now: () => new Date(Date.now() - 2 * 3600_000) });
    expect(await slowClock.send(bot(t, { signingSecret: secret }), delivery())).toMatchObject({ kind: 'permanent', code: 'feishu_19021' });
  });
});

describe('feishu_bot keyword', () => {
  it('message without the keyword → permanent feishu_19024; keyword only in a link does not count', async () => {
    const t = token();
    server.registerBot(t, { keyword: 'dueflow' });
    expect(await feishuBotProvider.send(bot(t), delivery())).toMatchObject({ kind: 'permanent', code: 'feishu_19024', providerCode: 19024 });
    const inLinkOnly = delivery({ actionUrl: 'https://dueflow.example.com/p/1' });
    expect(await feishuBotProvider.send(bot(t, { format: 'text' }), inLinkOnly)).toMatchObject({ code: 'feishu_19024' });
    expect(server.messages).toHaveLength(0);
  });

  it.each(['text', 'post', 'card'] as const)('channel with the keyword puts it in the %s title → sent', async (format) => {
    const t = token();
    server.registerBot(t, { keyword: 'dueflow' });
    const outcome = await feishuBotProvider.send(bot(t, { format, keyword: 'dueflow' }), delivery());
    expect(outcome.kind).toBe('sent');
    const { body } = server.messages[0];
    const title = format === 'text' ? body.content.text : format === 'post' ? body.content.post.zh_cn.title : body.card.header.title.content;
    expect(title.startsWith('dueflow 日程建议已生成')).toBe(true);
  });

  it('keyword already in the title is not added twice', () => {
    const body = buildFeishuBotBody(bot('x', { format: 'post', keyword: '日程' }), delivery(), new Date()) as any;
    expect(body.content.post.zh_cn.title).toBe('日程建议已生成');
  });
});

describe('20 KB limit', () => {
  const huge = '这是一段很长的中文摘要，用来测试消息体的大小限制。'.repeat(700); // ~53 KB of UTF-8

  it.each(['text', 'post', 'card'] as const)('%s: 50 KB Chinese summary is trimmed, accepted and under 20 KB', async (format) => {
    expect(Buffer.byteLength(huge)).toBeGreaterThan(50_000);
    const t = token();
    const secret = 'sign-me-0123456789abcdef';
    server.registerBot(t, { secret, keyword: 'dueflow' });
    const outcome = await feishuBotProvider.send(bot(t, { format, signingSecret: secret, keyword: 'dueflow' }), delivery({ summary: huge }));
    expect(outcome.kind).toBe('sent');
    const { body } = server.messages[0];
    const size = bytes(body);
    expect(size).toBeLessThanOrEqual(MAX);
    expect(size).toBeGreaterThan(MAX - 100); // trimmed just enough, not gutted
    const summary = format === 'text' ? body.content.text : format === 'post' ? body.content.post.zh_cn.content[0][0].text : body.card.elements[0].text.content;
    expect(summary).toContain('…');
    expect(JSON.stringify(body)).toContain('https://app.example.com/previews/p-1'); // the action survives trimming
  });

  it('never splits a character (4-byte emoji)', () => {
    const body = buildFeishuBotBody(bot('x', { format: 'text' }), delivery({ summary: '😀'.repeat(10_000), actionUrl: undefined }), new Date()) as any;
    expect(bytes(body)).toBeLessThanOrEqual(MAX);
    const text: string = body.content.text;
    expect(text.endsWith('😀…')).toBe(true);
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no lone high surrogate
  });

  it('a huge title is trimmed too when the summary alone is not enough', () => {
    const body = buildFeishuBotBody(bot('x', { format: 'card' }), delivery({ title: '标题'.repeat(10_000) }), new Date()) as any;
    expect(bytes(body)).toBeLessThanOrEqual(MAX);
    expect(body.card.header.title.content.endsWith('…')).toBe(true);
  });

  it('the server refuses a body over 20 KB with 9499 (so trimming is required)', async () => {
    const t = token();
    server.registerBot(t);
    const res = await postRaw(server.botUrl(t), JSON.stringify({ msg_type: 'text', content: { text: huge } }));
    expect(res).toEqual({ status: 400, body: expect.objectContaining({ code: 9499 }) });
  });

  it('flow: 50 KB summary is trimmed and accepted', async () => {
    const id = token();
    server.registerFlow(id);
    const outcome = await feishuFlowProvider.send({ kind: 'feishu', webhookUrl: server.flowUrl(id), authType: 'none' }, delivery({ summary: huge }));
    expect(outcome.kind).toBe('sent');
    expect(bytes(server.messages[0].body)).toBeLessThanOrEqual(MAX);
    expect(server.messages[0].body.message.summary.endsWith('…')).toBe(true);
  });
});

describe('server checks', () => {
  it('malformed JSON → 9499, bad msg_type → 19002', async () => {
    const t = token();
    server.registerBot(t);
    expect((await postRaw(server.botUrl(t), '{"msg_type":')).body.code).toBe(9499);
    expect((await postRaw(server.botUrl(t), JSON.stringify({ msg_type: 'fax', content: { text: 'x' } }))).body.code).toBe(19002);
    expect((await postRaw(server.botUrl(t), JSON.stringify({ content: { text: 'x' } }))).body.code).toBe(19002);
    expect(server.requests.map((r) => r.code)).toEqual([9499, 19002, 19002]);
    expect(server.messages).toHaveLength(0);
  });
});

describe('classifyFeishuResponse', () => {
  it.each([
    [400, 9499, 'permanent', 'feishu_9499', false],
    [400, 19001, 'permanent', 'feishu_19001', false],
    [400, 19002, 'permanent', 'feishu_19002', false],
    [200, 19021, 'permanent', 'feishu_19021', false],
    [400, 19021, 'permanent', 'feishu_19021', false],
    [400, 19022, 'permanent', 'feishu_19022', false],
    [400, 19024, 'permanent', 'feishu_19024', false],
    [200, 11232, 'temporary', 'provider_rate_limited', true],
    [429, 11232, 'temporary', 'provider_rate_limited', true],
    [200, 2200, 'temporary', 'feishu_2200', false],
    [500, 2200, 'temporary', 'feishu_2200', false],
    [200, 0, 'sent', 'ok', false],
    [200, 12345, 'permanent', 'payload_invalid', false],
  ])('HTTP %i code %i → %s %s (rateLimited %s)', (status, code, kind, outcomeCode, rateLimited) => {
    expect(classifyFeishuResponse(status, { code, msg: 'x', data: {} })).toMatchObject({
      kind,
      code: outcomeCode,
      rateLimited,
      providerCode: code,
      httpStatus: status,
    });
  });

  it.each([
    [429, 'temporary', 'provider_rate_limited', true],
    [500, 'temporary', 'provider_5xx', false],
    [502, 'temporary', 'provider_5xx', false],
    [503, 'temporary', 'provider_5xx', false],
    [401, 'permanent', 'provider_auth_failed', false],
    [403, 'permanent', 'provider_auth_failed', false],
    [404, 'permanent', 'invalid_url', false],
    [400, 'permanent', 'payload_invalid', false],
    [413, 'permanent', 'payload_invalid', false],
    [302, 'permanent', 'invalid_url', false],
    [200, 'permanent', 'payload_invalid', false], // 200 without any code is not "sent"
  ])('HTTP %i without a Feishu code → %s %s', (status, kind, code, rateLimited) => {
    expect(classifyFeishuResponse(status, '<html>error</html>')).toMatchObject({ kind, code, rateLimited });
  });

  it('accepts the legacy StatusCode form', () => {
    expect(classifyFeishuResponse(200, { StatusCode: 0, StatusMessage: 'success' })).toMatchObject({ kind: 'sent', providerCode: 0 });
    expect(classifyFeishuResponse(200, { StatusCode: 19021, StatusMessage: 'sign fail' })).toMatchObject({ kind: 'permanent', code: 'feishu_19021' });
  });
});

describe('transport trouble', () => {
  it('answer slower than the timeout → temporary provider_timeout', async () => {
    const t = token();
    server.registerBot(t);
    server.stallNext(1, 1500);
    const provider = createFeishuBotProvider({ timeoutMs: 300 });
    const outcome = await provider.send(bot(t), delivery());
    expect(outcome).toMatchObject({ kind: 'temporary', code: 'provider_timeout', rateLimited: false });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(250);
    expect(outcome.durationMs).toBeLessThan(1200);
    expect(outcome.httpStatus).toBeUndefined();
    // The next call is not stalled.
    expect((await provider.send(bot(t), delivery())).kind).toBe('sent');
  });

  it('server down → temporary network_error; up again → sent', async () => {
    const t = token();
    server.registerBot(t);
    expect((await feishuBotProvider.send(bot(t), delivery())).kind).toBe('sent'); // leaves a keep-alive socket
    await server.down();
    try {
      const outcome = await feishuBotProvider.send(bot(t), delivery());
      expect(outcome).toMatchObject({ kind: 'temporary', code: 'network_error', rateLimited: false });
      expect(outcome.detail).toMatch(/ECONNREFUSED|closed|reset/i);
    } finally {
      await server.up();
    }
    expect((await feishuBotProvider.send(bot(t), delivery())).kind).toBe('sent');
    expect(server.messages).toHaveLength(2);
  });

  it('non-http URL → permanent invalid_url without a request', async () => {
    const outcome = await feishuBotProvider.send(bot('x', { webhookUrl: 'ftp://open.feishu.cn/open-apis/bot/v2/hook/abc' }), delivery());
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'invalid_url' });
    expect(server.requests).toHaveLength(0);
  });

  it('a 302 is not followed → permanent invalid_url (bot and flow)', async () => {
    const t = token();
    const elsewhere = token();
    server.registerBot(t);
    server.registerBot(elsewhere);
    server.failNext(2, { httpStatus: 302, location: server.botUrl(elsewhere) });
    const outcome = await feishuBotProvider.send(bot(t), delivery());
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'invalid_url', httpStatus: 302 });
    const flowOutcome = await feishuFlowProvider.send({ kind: 'feishu', webhookUrl: server.flowUrl('f'), authType: 'none' }, delivery());
    expect(flowOutcome).toMatchObject({ kind: 'permanent', code: 'invalid_url', httpStatus: 302 });
    expect(server.requests).toHaveLength(2); // nothing went to the redirect target
    expect(server.messages).toHaveLength(0);
  });

  it.each([
    [{ code: 2200 }, 'temporary', 'feishu_2200', false],
    [{ httpStatus: 503 }, 'temporary', 'provider_5xx', false],
    [{ httpStatus: 429 }, 'temporary', 'provider_rate_limited', true],
    [{ code: 19022 }, 'permanent', 'feishu_19022', false],
  ])('injected %j → %s %s', async (fault, kind, code, rateLimited) => {
    const t = token();
    server.registerBot(t);
    server.failNext(1, fault);
    expect(await feishuBotProvider.send(bot(t), delivery())).toMatchObject({ kind, code, rateLimited });
    expect((await feishuBotProvider.send(bot(t), delivery())).kind).toBe('sent'); // only the next 1 failed
  });
});

describe('rate limit', () => {
  it('the 6th request to one bot within a second gets 11232 → temporary, rate limited', async () => {
    const t = token();
    const other = token();
    server.registerBot(t);
    server.registerBot(other);
    const outcomes: ProviderOutcome[] = [];
    for (let i = 0; i < 6; i++) outcomes.push(await feishuBotProvider.send(bot(t), delivery()));
    expect(server.requests[5].receivedAt - server.requests[0].receivedAt).toBeLessThan(1000);
    expect(outcomes.slice(0, 5).map((o) => o.kind)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
    expect(outcomes[5]).toMatchObject({ kind: 'temporary', code: 'provider_rate_limited', rateLimited: true, providerCode: 11232, httpStatus: 200 });
    expect(server.rateLimitedCount).toBe(1);
    // Per bot: another bot is unaffected.
    expect((await feishuBotProvider.send(bot(other), delivery())).kind).toBe('sent');
  });

  it('the per-minute window limits too (a server with a small limit, to stay fast)', async () => {
    const small = await startFeishuServer({ rateLimit: { perSecond: 1000, perMinute: 3 } });
    try {
      small.registerBot('b');
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) codes.push((await postRaw(small.botUrl('b'), JSON.stringify({ msg_type: 'text', content: { text: 'x' } }))).body.code);
      expect(codes).toEqual([0, 0, 0, 11232]);
    } finally {
      await small.close();
    }
  });
});

describe('feishu flow', () => {
  const bearer = 'bearer-0123456789-abcdefXYZ';
  const flow = (id: string, extra: Partial<FeishuFlowChannel> = {}): FeishuFlowChannel => ({
    kind: 'feishu',
    webhookUrl: server.flowUrl(id),
    authType: 'bearer',
    bearerToken: bearer,
    ...extra,
  });

  it('sends the event body with the bearer token', async () => {
    const id = token();
    server.registerFlow(id, { bearerToken: bearer });
    const now = new Date('2026-01-02T03:04:05.000Z');
    const outcome = await createFeishuFlowProvider({ now: () => now }).send(flow(id), delivery());
    expect(outcome).toMatchObject({ kind: 'sent', code: 'ok', httpStatus: 200 });
    const [message] = await server.waitForMessages(1);
    expect(message.kind).toBe('flow');
    expect(message.body).toEqual({
      event: 'notification.feishu.requested',
      version: 1,
      notification_id: 'n-1',
      user_id: 'u-1',
      preview_id: 'p-1',
      trigger_id: 'tr-1',
      trigger_type: 'important_urgent_task',
      target_type: 'task',
      target_id: 't-1',
      message: {
        title: '日程建议已生成',
        summary: '任务「写周报」还没有排进日程，建议放到 15:00-16:00。',
        action_text: '去确认',
        action_url: 'https://app.example.com/previews/p-1',
      },
      trace_id: 'trace-1',
      sent_at: '2026-01-02T03:04:05.000Z',
    });
    expect(server.requests[0].headers.authorization).toBe(`Bearer ${bearer}`);
  });

  it('no auth → no Authorization header', async () => {
    const id = token();
    server.registerFlow(id);
    expect((await feishuFlowProvider.send(flow(id, { authType: 'none', bearerToken: undefined }), delivery())).kind).toBe('sent');
    expect(server.requests[0].headers.authorization).toBeUndefined();
  });

  it('wrong bearer → permanent provider_auth_failed', async () => {
    const id = token();
    server.registerFlow(id, { bearerToken: bearer });
    const outcome = await feishuFlowProvider.send(flow(id, { bearerToken: 'wrong-token-000000000000' }), delivery());
    expect(outcome).toMatchObject({ kind: 'permanent', code: 'provider_auth_failed', httpStatus: 401 });
    expect(server.messages).toHaveLength(0);
  });

  it.each([
    [{ httpStatus: 500 }, 'temporary', 'provider_5xx', false],
    [{ httpStatus: 503 }, 'temporary', 'provider_5xx', false],
    [{ httpStatus: 429 }, 'temporary', 'provider_rate_limited', true],
    [{ httpStatus: 400 }, 'permanent', 'payload_invalid', false],
    [{ httpStatus: 200, code: 1001 }, 'permanent', 'payload_invalid', false],
  ])('injected %j → %s %s', async (fault, kind, code, rateLimited) => {
    const id = token();
    server.registerFlow(id, { bearerToken: bearer });
    server.failNext(1, fault);
    expect(await feishuFlowProvider.send(flow(id), delivery())).toMatchObject({ kind, code, rateLimited });
  });

  it('unknown flow → permanent invalid_url (404)', async () => {
    expect(await feishuFlowProvider.send(flow(token()), delivery())).toMatchObject({ kind: 'permanent', code: 'invalid_url', httpStatus: 404 });
  });
});

describe('secrets never reach the outcome', () => {
  it('URL token, signing secret, sign and bearer are absent from every outcome', async () => {
    const botToken = token();
    const flowId = token();
    const secret = 'signing-secret-0123456789abcdef';
    const bearer = 'bearer-token-0123456789abcdef';
    server.registerBot(botToken, { secret });
    server.registerFlow(flowId, { bearerToken: bearer });
    const signed = bot(botToken, { signingSecret: secret });
    const flowChannel: FeishuFlowChannel = { kind: 'feishu', webhookUrl: server.flowUrl(flowId), authType: 'bearer', bearerToken: bearer };

    const outcomes = [
      await feishuBotProvider.send(signed, delivery()),
      await feishuBotProvider.send({ ...signed, signingSecret: 'x' + secret }, delivery()),
      await feishuFlowProvider.send(flowChannel, delivery()),
      await feishuFlowProvider.send({ ...flowChannel, bearerToken: 'y' + bearer }, delivery()),
    ];
    // Servers that echo what they were given.
    server.failNext(1, { httpStatus: 500, msg: `echo ${botToken} ${secret}` });
    outcomes.push(await feishuBotProvider.send(signed, delivery()));
    server.failNext(1, { httpStatus: 200, code: 7, msg: `echo ${flowId} Bearer ${bearer}` });
    outcomes.push(await feishuFlowProvider.send(flowChannel, delivery()));
    await server.down();
    outcomes.push(await feishuBotProvider.send(signed, delivery()), await feishuFlowProvider.send(flowChannel, delivery()));
    await server.up();

    const sign = server.messages[0].body.sign as string;
    expect(outcomes.map((o) => o.kind)).toEqual(['sent', 'permanent', 'sent', 'permanent', 'temporary', 'permanent', 'temporary', 'temporary']);
    for (const outcome of outcomes) {
      const text = JSON.stringify(outcome);
      for (const s of [botToken, flowId, secret, bearer, sign]) expect(text).not.toContain(s);
      expect(outcome.request.url).toContain('…');
    }
    expect(outcomes[0].request.url).toBe(`${server.url}/open-apis/bot/v2/hook/${botToken.slice(0, 4)}…${botToken.slice(-4)}`);
  });
});

describe('masking', () => {
  it('maskSecret shows 4+4 characters of long strings and nothing of short ones', () => {
    expect(maskSecret('abcdefghijklmnopqrstuvwxyz')).toBe('abcd…wxyz');
    expect(maskSecret('short-secret')).toBe('****');
    expect(maskSecret('')).toBe('****');
  });

  it('maskWebhookUrl masks the last path segment and query values', () => {
    expect(maskWebhookUrl('https://open.feishu.cn/open-apis/bot/v2/hook/0f1e2d3c-aaaa-bbbb-cccc-123456789abc')).toBe(
      'https://open.feishu.cn/open-apis/bot/v2/hook/0f1e…9abc',
    );
    // The last segment is masked even when the token is in the query: a short one becomes ****.
    expect(maskWebhookUrl('https://oapi.dingtalk.com/robot/send?access_token=abcdefghijklmnopqrstuvwxyz')).toBe(
      'https://oapi.dingtalk.com/robot/****?access_token=abcd…wxyz',
    );
    expect(maskWebhookUrl('not a url at all, secret inside')).toBe('not …side');
  });
});

describe('registry', () => {
  it('finds the provider by channel kind and dispatches', async () => {
    expect(providerFor('feishu_bot').kind).toBe('feishu_bot');
    expect(providerFor('feishu').kind).toBe('feishu');
    const t = token();
    server.registerBot(t);
    expect((await sendToChannel(bot(t, { format: 'text' }), delivery())).kind).toBe('sent');
    expect(server.messages[0].kind).toBe('bot');
  });
});
