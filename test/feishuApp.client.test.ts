/** The Feishu app client against real Redis and the Feishu-compatible server, over real HTTP. */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { createFeishuAppApi } from '../src/feishuApp/client';
import { createTokenCache, TokenCacheError } from '../src/feishuApp/tokenCache';
import type { AppCallOutcome, FeishuAppApi } from '../src/feishuApp/types';
import { createLogger } from '../src/logger';
import { startFeishuServer, type FeishuServer } from './support/feishuServer';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `{t-${randomBytes(4).toString('hex')}}`;
const appId = 'cli_dueflow_test_01';
const appSecret = 'app-secret-never-shown-0123456789';
const tokenKey = `${prefix}:feishu-app:${appId}:tenant-access-token`;

let server: FeishuServer;
let admin: Redis;
const connections: Redis[] = [];
const logLines: string[] = [];
const outcomes: AppCallOutcome[] = [];
const tokensSeen = new Set<string>();

const card = (text: string) => ({ schema: '2.0', config: { update_multi: true }, body: { elements: [{ tag: 'markdown', content: text }] } });
const uuid = () => `n-${randomBytes(8).toString('hex')}`;

function newApi(overrides: { secret?: string; base?: string; prefix?: string } = {}): FeishuAppApi {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  connections.push(redis);
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const api = createFeishuAppApi({
    config: {
      FEISHU_APP_ID: appId,
      FEISHU_APP_SECRET: overrides.secret ?? appSecret,
      FEISHU_API_BASE: overrides.base ?? server.url,
      FEISHU_TIMEOUT_MS: 2000,
      QUEUE_PREFIX: overrides.prefix ?? prefix,
    },
    redis,
    logger,
  });
  // Every outcome is kept, for the leak checks at the end.
  const keep = async (p: Promise<AppCallOutcome>) => {
    const o = await p;
    outcomes.push(o);
    return o;
  };
  return { send: (i) => keep(api.send(i)), updateCard: (i) => keep(api.updateCard(i)), buzz: (i) => keep(api.buzz(i)) };
}

async function cachedToken(): Promise<string | undefined> {
  const raw = await admin.get(tokenKey);
  const token = raw ? (JSON.parse(raw) as string) : undefined;
  if (token) tokensSeen.add(token);
  return token;
}

async function deleteKeys(pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const users = Array.from({ length: 6 }, (_, i) => ({ openId: `ou_user${i}`, unionId: `on_user${i}`, userId: `uid${i}`, email: `user${i}@example.com` }));

beforeAll(async () => {
  server = await startFeishuServer({ rateLimit: false, app: { appId, appSecret, tokenTtlSec: 7200, rateLimit: false } });
  for (const u of users) server.app.registerUser(u);
  admin = new Redis(redisUrl);
});

beforeEach(async () => {
  server.reset();
  server.app.expireTokens();
  await deleteKeys(`${prefix}*`);
});

afterAll(async () => {
  await deleteKeys(`${prefix}*`);
  await Promise.all([...connections, admin].map((c) => c.quit()));
  await server.close();
});

describe('the token, shared through Redis', () => {
  test('two processes sending at once fetch one token; after it expires one refresh serves both', async () => {
    const a = newApi();
    const b = newApi();
    const sends = users.flatMap((u, i) =>
      [a, b].map((api) => api.send({ receiveIdType: 'open_id', receiveId: u.openId, card: card(`hello ${i}`), uuid: uuid() })),
    );
    const first = await Promise.all(sends);
    expect(first.map((o) => o.kind)).toEqual(first.map(() => 'sent'));
    expect(server.app.tokensIssued).toBe(1);
    expect(server.app.tokenRequests).toBe(1);
    const oldToken = await cachedToken();
    expect(oldToken).toBeDefined();

    server.app.expireTokens();
    const refreshed = await a.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('after expiry'), uuid: uuid() });
    expect(refreshed).toMatchObject({ kind: 'sent', code: 'ok' });
    expect(server.app.tokensIssued).toBe(2);
    const newToken = await cachedToken();
    expect(newToken).not.toBe(oldToken);

    const other = await b.send({ receiveIdType: 'open_id', receiveId: users[1].openId, card: card('the other process'), uuid: uuid() });
    expect(other).toMatchObject({ kind: 'sent', code: 'ok' });
    expect(server.app.tokensIssued).toBe(2);
    expect(server.app.tokenRequests).toBe(2);
    // The refreshing send saw 99991663 once and retried: 13 + 1 + 1 sends accepted, one refused.
    const imRequests = server.requests.filter((r) => r.path === '/open-apis/im/v1/messages');
    expect(imRequests.filter((r) => r.code === 99991663)).toHaveLength(1);
    expect(server.app.messages).toHaveLength(14);
  });

  test('both processes holding an expired token: each retries once, one new token in all', async () => {
    const a = newApi();
    const b = newApi();
    await a.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('warm up'), uuid: uuid() });
    server.app.expireTokens();
    const results = await Promise.all(
      [a, b, a, b].map((api, i) => api.send({ receiveIdType: 'open_id', receiveId: users[i].openId, card: card('x'), uuid: uuid() })),
    );
    expect(results.map((o) => o.kind)).toEqual(['sent', 'sent', 'sent', 'sent']);
    expect(server.app.tokensIssued).toBe(2);
    await cachedToken();
  });

  test('a token refused twice is temporary, after exactly one retry', async () => {
    const a = newApi();
    await a.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('warm up'), uuid: uuid() });
    await cachedToken();
    const before = server.requests.length;
    server.app.failNext(2, { code: 99991663 });
    const o = await a.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(o).toMatchObject({ kind: 'temporary', code: 'feishu_99991663', providerCode: 99991663, rateLimited: false });
    const im = server.requests.slice(before).filter((r) => r.path === '/open-apis/im/v1/messages');
    expect(im).toHaveLength(2);
    await cachedToken();
  });

  test('a wrong app secret is permanent feishu_app_credentials_invalid', async () => {
    const wrong = newApi({ secret: 'not-the-app-secret-at-all', prefix: `{t-${randomBytes(4).toString('hex')}}` });
    const o = await wrong.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(o).toMatchObject({ kind: 'permanent', code: 'feishu_app_credentials_invalid', providerCode: 10014, rateLimited: false, httpStatus: 400 });
    expect(JSON.stringify(o)).not.toContain('not-the-app-secret-at-all');
    expect(logLines.join('\n')).not.toContain('not-the-app-secret-at-all');
    // Its lock went with the failure: a second call asks Feishu again at once, without waiting.
    const started = Date.now();
    const again = await wrong.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(again.code).toBe('feishu_app_credentials_invalid');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(server.app.messages).toHaveLength(0);
  });
});

describe('calls', () => {
  test('send, updateCard and buzz succeed; the uuid and the receive id type reach Feishu', async () => {
    const api = newApi();
    const id = uuid();
    const sent = await api.send({ receiveIdType: 'email', receiveId: users[2].email, card: card('first'), uuid: id });
    expect(sent).toMatchObject({ kind: 'sent', code: 'ok', rateLimited: false, httpStatus: 200, providerCode: 0 });
    const messageId = sent.providerMessageId!;
    expect(messageId).toMatch(/^om_/);
    expect(server.app.messages[0]).toMatchObject({ messageId, receiveIdType: 'email', receiveId: users[2].email, openId: users[2].openId, uuid: id });
    expect(server.app.messages[0].card).toEqual(card('first'));
    expect(sent.request).toEqual({
      url: '/open-apis/im/v1/messages?receive_id_type=email',
      body: { receive_id_type: 'email', receive_id: users[2].email, msg_type: 'interactive', uuid: id, content: JSON.stringify(card('first')) },
    });
    expect(sent.response?.status).toBe(200);
    expect(sent.durationMs).toBeGreaterThanOrEqual(0);

    // The same uuid again: Feishu answers with the first message, none is added.
    const replay = await api.send({ receiveIdType: 'email', receiveId: users[2].email, card: card('first'), uuid: id });
    expect(replay.providerMessageId).toBe(messageId);
    expect(server.app.messages).toHaveLength(1);

    const updated = await api.updateCard({ messageId, card: card('redrawn') });
    expect(updated).toMatchObject({ kind: 'sent', code: 'ok', request: { url: `/open-apis/im/v1/messages/${messageId}` } });
    expect(server.app.updates).toEqual([expect.objectContaining({ messageId, card: card('redrawn') })]);

    const buzzed = await api.buzz({ messageId, openIds: [users[2].openId] });
    expect(buzzed).toMatchObject({
      kind: 'sent',
      code: 'ok',
      request: { url: `/open-apis/im/v1/messages/${messageId}/urgent_app?user_id_type=open_id`, body: { user_id_list: [users[2].openId] } },
    });
    expect(server.app.urgents).toEqual([expect.objectContaining({ messageId, userIds: [users[2].openId] })]);
    await cachedToken();
  });

  test('each receive id type names the user', async () => {
    const api = newApi();
    const u = users[3];
    for (const [type, id] of [
      ['open_id', u.openId],
      ['union_id', u.unionId],
      ['user_id', u.userId],
      ['email', u.email],
    ] as const) {
      expect(await api.send({ receiveIdType: type, receiveId: id, card: card(type), uuid: uuid() })).toMatchObject({ kind: 'sent' });
    }
    expect(server.app.messagesTo(u.openId)).toHaveLength(4);
  });

  test('an unknown receiver, an over-age update and an injected permanent code are permanent', async () => {
    const api = newApi();
    expect(await api.send({ receiveIdType: 'open_id', receiveId: 'ou_nobody', card: card('x'), uuid: uuid() })).toMatchObject({
      kind: 'permanent',
      code: 'feishu_230001',
      providerCode: 230001,
      httpStatus: 400,
    });

    const sent = await api.send({ receiveIdType: 'open_id', receiveId: users[4].openId, card: card('x'), uuid: uuid() });
    server.app.ageMessage(sent.providerMessageId!, 15 * 86_400_000);
    const late = await api.updateCard({ messageId: sent.providerMessageId!, card: card('late') });
    expect(late).toMatchObject({ kind: 'permanent', code: 'feishu_230031', providerCode: 230031 });
    expect(late.detail).toMatch(/14 days/);

    server.app.failNext(1, { code: 230013 });
    const outside = await api.send({ receiveIdType: 'open_id', receiveId: users[4].openId, card: card('x'), uuid: uuid() });
    expect(outside).toMatchObject({ kind: 'permanent', code: 'feishu_230013', rateLimited: false });
    expect(outside.detail).toMatch(/availability/);
    expect(outside.providerMessageId).toBeUndefined();
  });

  test('99991400 with a reset header: rate limited, wait 3 s', async () => {
    const api = newApi();
    server.app.failNext(1, { code: 99991400, resetSec: 3 });
    const o = await api.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(o).toMatchObject({
      kind: 'temporary',
      code: 'provider_rate_limited',
      rateLimited: true,
      retryAfterMs: 3000,
      providerCode: 99991400,
      httpStatus: 429,
    });

    server.app.failNext(1, { code: 230020 });
    const limited = await api.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(limited).toMatchObject({ kind: 'temporary', code: 'provider_rate_limited', rateLimited: true });
    expect(limited.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(2000);
  });

  test('a 5xx is temporary provider_5xx', async () => {
    const api = newApi();
    server.app.failNext(1, { code: 1234, httpStatus: 502 });
    expect(await api.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() })).toMatchObject({
      kind: 'temporary',
      code: 'provider_5xx',
      httpStatus: 502,
    });
  });

  test('the audit record is bounded: content cut to 2,000 characters, the answer to about 2 KB', async () => {
    const api = newApi();
    const big = card('长'.repeat(5000));
    const o = await api.send({ receiveIdType: 'open_id', receiveId: users[5].openId, card: big, uuid: uuid() });
    expect(o.kind).toBe('sent');
    expect(server.app.messages[0].card).toEqual(big);
    expect((o.request.body as { content: string }).content.length).toBeLessThanOrEqual(2000);
    expect(JSON.stringify(o.response).length).toBeLessThanOrEqual(2300);
    expect(o.response?.body).toMatchObject({ code: 0, data: { message_id: o.providerMessageId } });
  });

  test('a server that is down: temporary network_error, both for the token and for the call', async () => {
    const port = await closedPort();
    const fresh = newApi({ base: `http://127.0.0.1:${port}`, prefix: `{t-${randomBytes(4).toString('hex')}}` });
    const noToken = await fresh.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    expect(noToken).toMatchObject({ kind: 'temporary', code: 'network_error', rateLimited: false });
    expect(noToken.detail).toMatch(/ECONNREFUSED/);

    // Token cached (same prefix as a working client), Feishu unreachable for the call itself.
    await newApi().send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() });
    const cached = newApi({ base: `http://127.0.0.1:${port}` });
    expect(await cached.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() })).toMatchObject({
      kind: 'temporary',
      code: 'network_error',
    });
    await cachedToken();
  });

  test('a stalled answer is temporary provider_timeout', async () => {
    const api = newApi();
    await api.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('warm up'), uuid: uuid() });
    server.stallNext(1, 2500);
    expect(await api.send({ receiveIdType: 'open_id', receiveId: users[0].openId, card: card('x'), uuid: uuid() })).toMatchObject({
      kind: 'temporary',
      code: 'provider_timeout',
    });
    await cachedToken();
  });
});

describe('the token cache itself', () => {
  const cacheFor = (opts: { waitMs?: number } = {}) => {
    const redis = new Redis(redisUrl);
    connections.push(redis);
    return createTokenCache({ redis, prefix, appId, lockMs: 5000, waitMs: opts.waitMs ?? 2000, pollMs: 20 });
  };
  const key = Symbol('tenant-access-token');

  test('one miss wins the lock; the others wait for what it stores', async () => {
    const [one, two, three] = [cacheFor(), cacheFor(), cacheFor()];
    expect(await one.get(key, { namespace: appId })).toBeUndefined();
    const waiting = Promise.all([two.get(key, { namespace: appId }), three.get(key, { namespace: appId })]);
    await new Promise((r) => setTimeout(r, 100));
    await one.set(key, 'token-value-1', Date.now() + 60_000, { namespace: appId });
    expect(await waiting).toEqual(['token-value-1', 'token-value-1']);
    expect(await admin.pttl(tokenKey)).toBeGreaterThan(55_000);
  });

  test('invalidate drops only the token it names', async () => {
    const cache = cacheFor();
    await cache.get(key, { namespace: appId });
    await cache.set(key, 'token-new', Date.now() + 60_000, { namespace: appId });
    expect(await cache.invalidate('token-old')).toBe(false);
    expect(await cache.get(key, { namespace: appId })).toBe('token-new');
    expect(await cache.invalidate('token-new')).toBe(true);
    expect(await admin.exists(tokenKey)).toBe(0);
  });

  test('a fetch that is abandoned hands the lock to a waiter; one never finished is a clear temporary error', async () => {
    const [one, two] = [cacheFor(), cacheFor({ waitMs: 300 })];
    expect(await one.get(key, { namespace: appId })).toBeUndefined();
    await expect(two.get(key, { namespace: appId })).rejects.toThrow(TokenCacheError);
    await one.abandonFetch();
    expect(await two.get(key, { namespace: appId })).toBeUndefined();
  });

  test('a token already past its (early) expiry is not stored', async () => {
    const cache = cacheFor();
    await cache.get(key, { namespace: appId });
    await cache.set(key, 'short-lived', Date.now() - 1000, { namespace: appId });
    expect(await admin.exists(tokenKey)).toBe(0);
    expect(await cache.get(key, { namespace: appId })).toBeUndefined();
  });
});

// Last, so it covers every call of the file.
test('no token and no app secret in any outcome or log line', () => {
  expect(outcomes.length).toBeGreaterThan(30);
  expect(tokensSeen.size).toBeGreaterThanOrEqual(3);
  const everything = JSON.stringify(outcomes) + logLines.join('\n');
  expect(everything).not.toContain(appSecret);
  for (const token of tokensSeen) expect(everything).not.toContain(token);
});
