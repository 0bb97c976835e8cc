/**
 * Events to the host product end to end: endpoints over real HTTP, deliveries through real
 * BullMQ on real Redis, the ledger in the real MongoDB-compatible server, and a node:http
 * receiver on 127.0.0.1 that checks every signature with its own verifier (written from the
 * Standard Webhooks spec with node:crypto, not with dueflow's or the library's signing).
 */
import http from 'node:http';
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { testEnv, testSecrets, waitFor } from './support/env';
import { asService, asUser, call, notificationBody, userWithBot } from './support/api';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';
import type { DueflowProcess } from './support/processes';
import { spawnDueflow } from './support/processes';
import { emitEvent, ensureEvent } from '../src/events/emit';
import { eventIdFor, deliveryIdFor, eventJobId } from '../src/events/ids';
import { reconcileEvents } from '../src/events/reconcile';
import { listEvents } from '../src/events/pull';
import { endpointUrlProblem } from '../src/events/endpointUrl';
import { decideDelivery, settleAttempt } from '../src/events/deliver';
import { createEventSender } from '../src/events/send';
import { purgeExpiredEvents } from '../src/maintenance/purge';
import type { EventType } from '../src/events/types';

// ── the receiver ─────────────────────────────────────────────────────────────────────────────

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}
interface Reply {
  status: number;
  delayMs?: number;
  body?: string;
}

interface Receiver {
  url(path: string): string;
  received: Received[];
  on(path: string): Received[];
  /** Replies for the next requests to `path`, in order; after them, `always`. */
  script(path: string, replies: Reply[], always?: Reply): void;
  inFlight(path: string): number;
  maxInFlight(path: string): number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const scripts = new Map<string, Reply[]>();
  const always = new Map<string, Reply>();
  const open = new Map<string, number>();
  const peak = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const reply = scripts.get(path)?.shift() ?? always.get(path) ?? { status: 200, body: 'ok' };
      open.set(path, (open.get(path) ?? 0) + 1);
      peak.set(path, Math.max(peak.get(path) ?? 0, open.get(path)!));
      res.on('close', () => open.set(path, open.get(path)! - 1));
      const timer = setTimeout(() => {
        if (!res.destroyed) res.writeHead(reply.status, { 'content-type': 'text/plain' }).end(reply.body ?? '');
      }, reply.delayMs ?? 0);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    on: (path) => received.filter((r) => r.path === path),
    script: (path, replies, fallback) => {
      scripts.set(path, [...replies]);
      if (fallback) always.set(path, fallback);
    },
    inFlight: (path) => open.get(path) ?? 0,
    maxInFlight: (path) => peak.get(path) ?? 0,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The Standard Webhooks check, from the spec: HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed by the secret's base64-decoded bytes. */
function verifies(secret: string, r: Received): boolean {
  const id = String(r.headers['webhook-id']);
  const timestamp = String(r.headers['webhook-timestamp']);
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${r.body}`).digest();
  return String(r.headers['webhook-signature'] ?? '')
    .split(' ')
    .some((part) => {
      const [version, signature] = part.split(',');
      const given = Buffer.from(signature ?? '', 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

// ── the dueflow under test ───────────────────────────────────────────────────────────────────

const settings = {
  EVENT_ATTEMPTS: '3',
  EVENT_BACKOFF_MS: '50',
  EVENT_BACKOFF_MAX_MS: '200',
  EVENT_PULL_SETTLE_MS: '0',
  EVENT_ALLOWED_HOSTS: 'hooks.example.com,*.example.org',
};

let df: TestDueflow;
let receiver: Receiver;
let feishu: FeishuServer;
/** Every secret dueflow showed: none may appear in a log line. */
const secretsShown = new Set<string>();

beforeAll(async () => {
  [receiver, feishu] = await Promise.all([startReceiver(), startFeishuServer()]);
  df = await startTestDueflow('all', settings);
});
afterAll(async () => {
  await df?.stop();
  await receiver?.close();
  await feishu?.close();
});
afterEach(async () => {
  await df.ctx.models.webhookEndpoints.deleteMany({});
});

/** Endpoint answers carry the secret: read with plain fetch, so the suite's leak scan never sees them. */
async function secretCall(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: asService(), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : undefined;
  if (parsed?.secret) secretsShown.add(parsed.secret);
  return { status: res.status, body: parsed };
}

async function newEndpoint(path: string, events: string[] = ['*'], base = df): Promise<{ id: string; secret: string; url: string }> {
  const res = await secretCall(base.baseUrl, 'POST', '/api/v1/webhook-endpoints', { url: receiver.url(path), events, description: `test ${path}` });
  expect(res.status).toBe(201);
  return res.body;
}

const hookPath = () => `/hook/${randomUUID()}`;
const key = () => `k-${randomUUID()}`;

async function emit(type: EventType, data: Record<string, unknown> = { recordId: 'r1', userId: 'u1', reminderId: null }, k = key()): Promise<string> {
  await emitEvent(df.ctx, { type, key: k, userId: 'u1', data });
  return eventIdFor(type, k);
}

const delivery = (endpointId: string, eventId: string) => df.ctx.models.eventDeliveries.findById(deliveryIdFor(endpointId, eventId)).lean();

async function waitForDelivery(endpointId: string, eventId: string, ...statuses: string[]) {
  return waitFor(
    async () => {
      const d = await delivery(endpointId, eventId);
      return d && statuses.includes(d.status) ? d : undefined;
    },
    20_000,
    `delivery ${eventId} to be ${statuses.join('|')}`,
  );
}

const listDeliveries = async (endpointId: string, status?: string) =>
  (await call(df.baseUrl, 'GET', `/api/v1/webhook-endpoints/${endpointId}/deliveries${status ? `?status=${status}` : ''}`, { auth: asService() })).body
    .items as any[];

// ── the pure parts ───────────────────────────────────────────────────────────────────────────

describe('decisions', () => {
  const backoff = { baseMs: 5000, maxMs: 3_600_000 };
  test('any 2xx is delivered; other answers retry with a doubling, jittered delay; the last attempt is dead; a refused address is dead at once', () => {
    const answered = (status: number) => ({ kind: 'answered' as const, status, durationMs: 1, body: '' });
    expect(settleAttempt(answered(204), { attempt: 1, maxAttempts: 12 }, backoff)).toEqual({ kind: 'delivered' });
    expect(settleAttempt(answered(500), { attempt: 1, maxAttempts: 12 }, backoff, () => 0.5)).toEqual({ kind: 'failed', delayMs: 5000 });
    expect(settleAttempt(answered(301), { attempt: 3, maxAttempts: 12 }, backoff, () => 0.5)).toEqual({ kind: 'failed', delayMs: 20_000 });
    // 5 s doubling: the 11th would be 85 min, capped at the hour.
    expect(settleAttempt(answered(500), { attempt: 11, maxAttempts: 12 }, backoff, () => 1)).toEqual({ kind: 'failed', delayMs: 3_600_000 });
    expect(settleAttempt(answered(500), { attempt: 12, maxAttempts: 12 }, backoff)).toEqual({ kind: 'dead', reason: 'attempts_exhausted' });
    expect(settleAttempt({ kind: 'no_answer', code: 'timeout', detail: '', durationMs: 10_000 }, { attempt: 1, maxAttempts: 12 }, backoff, () => 0).kind).toBe(
      'failed',
    );
    expect(settleAttempt({ kind: 'no_answer', code: 'address_refused', detail: '', durationMs: 0 }, { attempt: 1, maxAttempts: 12 }, backoff)).toEqual({
      kind: 'dead',
      reason: 'address_refused',
    });
  });

  test("a delivery is sent unless delivered, in another worker's lease, or its endpoint or event is gone; a dead one runs again only as a replay", () => {
    const now = new Date();
    const base = {
      endpoint: { url: 'https://hooks.example.com/x', enabled: true },
      event: { _id: 'evt_x', type: 'webhook.test', at: now, dataJson: '{}' },
      policy: { EVENT_ALLOWED_HOSTS: [], WEBHOOK_ALLOW_LOOPBACK: false },
      leaseMs: 15_000,
      now,
    };
    expect(decideDelivery({ ...base, delivery: { status: 'pending' } })).toEqual({ kind: 'send', replay: false });
    expect(decideDelivery({ ...base, delivery: { status: 'dead' } })).toEqual({ kind: 'send', replay: true });
    expect(decideDelivery({ ...base, delivery: { status: 'delivered' } }).kind).toBe('done');
    expect(decideDelivery({ ...base, delivery: { status: 'sending', sendingSince: new Date(now.getTime() - 1000) } }).kind).toBe('wait');
    expect(decideDelivery({ ...base, delivery: { status: 'sending', sendingSince: new Date(now.getTime() - 60_000) } }).kind).toBe('send');
    expect(decideDelivery({ ...base, endpoint: null, delivery: { status: 'pending' } })).toMatchObject({ kind: 'dead', reason: 'endpoint_missing' });
    expect(decideDelivery({ ...base, endpoint: { ...base.endpoint, enabled: false }, delivery: { status: 'pending' } })).toMatchObject({
      kind: 'dead',
      reason: 'endpoint_disabled',
    });
    expect(decideDelivery({ ...base, event: null, delivery: { status: 'pending' } })).toMatchObject({ kind: 'dead', reason: 'event_missing' });
    expect(decideDelivery({ ...base, endpoint: { url: 'https://10.1.2.3/x', enabled: true }, delivery: { status: 'pending' } })).toMatchObject({
      kind: 'dead',
      reason: 'url_refused',
    });
  });

  test('event ids are derived from type and key', () => {
    expect(eventIdFor('preview.confirmed', 'p1')).toBe(eventIdFor('preview.confirmed', 'p1'));
    expect(eventIdFor('preview.confirmed', 'p1')).not.toBe(eventIdFor('preview.rejected', 'p1'));
    expect(eventIdFor('preview.confirmed', 'p1')).toMatch(/^evt_[0-9a-f]{24}$/);
  });
});

// ── endpoints ────────────────────────────────────────────────────────────────────────────────

describe('endpoints', () => {
  test('create, read, list, change, delete; the secret is shown once, stored sealed, never again', async () => {
    const created = await secretCall(df.baseUrl, 'POST', '/api/v1/webhook-endpoints', {
      url: receiver.url('/crud'),
      events: ['preview.confirmed', 'reminder.done'],
      description: 'the host product',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      url: receiver.url('/crud'),
      events: ['preview.confirmed', 'reminder.done'],
      description: 'the host product',
      enabled: true,
    });
    expect(created.body.id).toMatch(/^[0-9a-f]{24}$/);
    expect(created.body.createdAt).toEqual(expect.any(String));
    const { id, secret } = created.body;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);

    const stored = await df.ctx.models.webhookEndpoints.findById(id).lean();
    expect(stored!.secretSealed.startsWith('v1.')).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(secret.slice(6));

    const one = await call(df.baseUrl, 'GET', `/api/v1/webhook-endpoints/${id}`, { auth: asService() });
    expect(one.status).toBe(200);
    expect(one.body).toEqual({
      id,
      url: receiver.url('/crud'),
      events: ['preview.confirmed', 'reminder.done'],
      description: 'the host product',
      enabled: true,
      createdAt: created.body.createdAt,
      updatedAt: expect.any(String),
    });
    const list = await call(df.baseUrl, 'GET', '/api/v1/webhook-endpoints', { auth: asService() });
    expect(list.body.items.map((e: any) => e.id)).toContain(id);
    expect(JSON.stringify([one.body, list.body])).not.toContain(secret.slice(6));

    const patched = await call(df.baseUrl, 'PATCH', `/api/v1/webhook-endpoints/${id}`, {
      auth: asService(),
      body: { events: ['*'], enabled: false, url: receiver.url('/crud2'), description: null },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, events: ['*'], enabled: false, url: receiver.url('/crud2'), description: null });
    expect(patched.body.secret).toBeUndefined();

    expect((await call(df.baseUrl, 'DELETE', `/api/v1/webhook-endpoints/${id}`, { auth: asService() })).status).toBe(204);
    expect((await call(df.baseUrl, 'GET', `/api/v1/webhook-endpoints/${id}`, { auth: asService() })).status).toBe(404);
    expect((await call(df.baseUrl, 'DELETE', `/api/v1/webhook-endpoints/${id}`, { auth: asService() })).status).toBe(404);
    expect((await call(df.baseUrl, 'GET', '/api/v1/webhook-endpoints/not-an-id', { auth: asService() })).status).toBe(404);
  });

  test.each([
    ['no url', { events: ['*'] }, 'body.url'],
    ['a url that is not one', { url: 'not a url', events: ['*'] }, 'body.url'],
    ['no events', { url: 'https://hooks.example.com/x' }, 'body.events'],
    ['an empty event list', { url: 'https://hooks.example.com/x', events: [] }, 'body.events'],
    ['an unknown event type', { url: 'https://hooks.example.com/x', events: ['preview.eaten'] }, 'body.events.0'],
    ['"*" with others', { url: 'https://hooks.example.com/x', events: ['*', 'preview.confirmed'] }, 'body.events'],
    ['webhook.test, which only the test route sends', { url: 'https://hooks.example.com/x', events: ['webhook.test'] }, 'body.events.0'],
    ['an unknown field', { url: 'https://hooks.example.com/x', events: ['*'], secret: 'mine' }, 'body'],
    ['a description too long', { url: 'https://hooks.example.com/x', events: ['*'], description: 'x'.repeat(501) }, 'body.description'],
  ])('create with %s: 400 naming %s', async (_name, body, field) => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/webhook-endpoints', { auth: asService(), body });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.field)).toContain(field);
    expect(await df.ctx.models.webhookEndpoints.countDocuments()).toBe(0);
  });

  test('a PATCH with nothing, or a bad value, is a 400 and changes nothing', async () => {
    const { id } = await newEndpoint(hookPath());
    for (const body of [{}, { enabled: 'yes' }, { url: 'http://hooks.example.com/x' }, { events: ['nope'] }]) {
      const res = await call(df.baseUrl, 'PATCH', `/api/v1/webhook-endpoints/${id}`, { auth: asService(), body });
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400]);
    }
    expect(await df.ctx.models.webhookEndpoints.findById(id).lean()).toMatchObject({ enabled: true, events: ['*'] });
  });

  test("a change and a secret rotation take the endpoint's lock: while it is held a rotation waits (a store that needs it) and the secret stays", async () => {
    const created = await secretCall(df.baseUrl, 'POST', '/api/v1/webhook-endpoints', { url: receiver.url('/locked'), events: ['reminder.done'] });
    const { id } = created.body;
    const sealed = async () => (await df.ctx.models.webhookEndpoints.findById(id).lean())!.secretSealed;
    const before = await sealed();
    const held = await withGuardLock(df.ctx, lockName('webhook-endpoint', id), () =>
      secretCall(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/rotate-secret`),
    );
    expect(held.acquired).toBe(true);
    if (!held.acquired || df.ctx.store.guardedUpdates === 'atomic') return;
    expect(held.value.status).toBe(503);
    expect(await sealed()).toBe(before);
    expect((await secretCall(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/rotate-secret`)).status).toBe(200);
    expect(await sealed()).not.toBe(before);
  });
});

describe('endpoint URLs: the address rules of channels, and EVENT_ALLOWED_HOSTS', () => {
  test.each([
    ['http to a public host', 'http://hooks.example.com/x', 'https'],
    ['a private address', 'https://10.0.0.1/x', 'private'],
    ['the metadata address (link-local)', 'https://169.254.169.254/latest/meta-data', 'private'],
    ['an IPv4-mapped private address', 'https://[::ffff:10.0.0.1]/x', 'private'],
    ['credentials in the URL', 'https://user:s3cretpw@hooks.example.com/x', 'credentials'],
    ['a host outside EVENT_ALLOWED_HOSTS', 'https://evil.example.net/x', 'EVENT_ALLOWED_HOSTS'],
    ['a public address outside EVENT_ALLOWED_HOSTS', 'https://93.184.216.34/x', 'EVENT_ALLOWED_HOSTS'],
    ['a fragment', 'https://hooks.example.com/x#y', 'fragment'],
  ])('%s is refused: 400 on body.url', async (_name, url, words) => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/webhook-endpoints', { auth: asService(), body: { url, events: ['*'] } });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe('body.url');
    expect(res.body.error.message).toContain(words);
    expect(res.body.error.message).not.toContain('s3cretpw');
  });

  test('allowed hosts (exact and *.domain) are accepted', async () => {
    for (const url of ['https://hooks.example.com/dueflow', 'https://a.example.org/x?token=1']) {
      const res = await secretCall(df.baseUrl, 'POST', '/api/v1/webhook-endpoints', { url, events: ['reminder.done'] });
      expect([url, res.status]).toEqual([url, 201]);
    }
  });

  test('without WEBHOOK_ALLOW_LOOPBACK: loopback in any form is refused; with no allow-list any public host is accepted', async () => {
    const strict = await startTestDueflow('api', { WEBHOOK_ALLOW_LOOPBACK: 'false' });
    try {
      for (const url of ['https://[::1]/x', 'http://127.0.0.1:8080/x', 'https://127.0.0.1/x', 'https://localhost/x', 'https://0.0.0.0/x']) {
        const res = await call(strict.baseUrl, 'POST', '/api/v1/webhook-endpoints', { auth: asService(), body: { url, events: ['*'] } });
        expect([url, res.status, res.body.error.details[0].field]).toEqual([url, 400, 'body.url']);
      }
      const ok = await secretCall(strict.baseUrl, 'POST', '/api/v1/webhook-endpoints', { url: 'https://hooks.anywhere.example/x', events: ['reminder.done'] });
      expect(ok.status).toBe(201);
    } finally {
      await strict.stop();
    }
  });

  test('the sender refuses loopback at connect time when loopback is not allowed (a name that resolves there too)', async () => {
    const sender = createEventSender({ allowLoopback: false, timeoutMs: 2000 });
    const port = new URL(receiver.url('/')).port;
    for (const url of [`http://127.0.0.1:${port}/x`, `http://localhost:${port}/x`]) {
      const result = await sender.post(url, { body: '{}', headers: { 'content-type': 'application/json' } });
      expect([url, result.kind, result.kind === 'no_answer' && result.code]).toEqual([url, 'no_answer', 'address_refused']);
    }
    expect(receiver.on('/x')).toHaveLength(0);
  });

  test('unit: the rules', () => {
    const open = { EVENT_ALLOWED_HOSTS: [], WEBHOOK_ALLOW_LOOPBACK: false };
    expect(endpointUrlProblem('https://hooks.example.com:8443/x?y=1', open)).toBeUndefined();
    expect(endpointUrlProblem('https://[fe80::1]/x', open)).toContain('link-local');
    expect(endpointUrlProblem('https://intranet/x', open)).toContain('public host');
    expect(endpointUrlProblem('ftp://hooks.example.com/x', open)).toContain('https');
    expect(endpointUrlProblem('https://b.example.org/x', { ...open, EVENT_ALLOWED_HOSTS: ['*.example.org'] })).toBeUndefined();
    expect(endpointUrlProblem('https://example.org/x', { ...open, EVENT_ALLOWED_HOSTS: ['*.example.org'] })).toContain('EVENT_ALLOWED_HOSTS');
    expect(endpointUrlProblem('https://badexample.org/x', { ...open, EVENT_ALLOWED_HOSTS: ['*.example.org'] })).toContain('EVENT_ALLOWED_HOSTS');
  });
});

// ── delivery ─────────────────────────────────────────────────────────────────────────────────

describe('delivery', () => {
  test('an event arrives once, in the Standard Webhooks format, signed; emitting it again is a no-op; the ledger keeps the attempt', async () => {
    const path = hookPath();
    receiver.script(path, [], { status: 200, body: 'é'.repeat(1500) });
    const { id, secret } = await newEndpoint(path);
    const k = key();
    const data = {
      previewId: 'p1',
      userId: 'u1',
      task: { id: 't1', externalId: 'ext-1' },
      block: { id: 'b1', start: '2026-01-01T09:00:00.000Z', end: '2026-01-01T10:00:00.000Z' },
      confirmedVia: 'feishu',
      nested: [[1, 2], [3]],
    };
    const at = new Date('2026-01-01T08:59:00.000Z');
    await emitEvent(df.ctx, { type: 'preview.confirmed', key: k, userId: 'u1', data, at });
    const eventId = eventIdFor('preview.confirmed', k);
    const [r] = await waitFor(() => receiver.on(path).length >= 1 && receiver.on(path), 10_000, 'the event');

    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['webhook-id']).toBe(eventId);
    expect(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifies(secret, r)).toBe(true);
    expect(verifies(secret, { ...r, body: r.body.replace('feishu', 'app') })).toBe(false);
    const body = JSON.parse(r.body);
    expect(Object.keys(body)).toEqual(['type', 'timestamp', 'data']);
    expect(body).toEqual({ type: 'preview.confirmed', timestamp: at.toISOString(), data });

    const d = await waitForDelivery(id, eventId, 'delivered');
    expect(d).toMatchObject({ status: 'delivered', attemptCount: 1 });
    const [attempt] = (await listDeliveries(id)).find((x) => x.eventId === eventId).attempts;
    expect(attempt).toMatchObject({ attempt: 1, outcome: 'delivered', code: 'ok', httpStatus: 200, durationMs: expect.any(Number) });
    expect(Buffer.byteLength(attempt.response)).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(attempt.response)).toBeGreaterThan(1000);
    expect(attempt.response).toMatch(/^é+$/);

    await emitEvent(df.ctx, { type: 'preview.confirmed', key: k, userId: 'u1', data });
    await ensureEvent(df.ctx, { type: 'preview.confirmed', key: k, userId: 'u1', data });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.on(path)).toHaveLength(1);
    expect(await df.ctx.models.events.countDocuments({ _id: eventId })).toBe(1);
  });

  test('rotate-secret: new events verify with the new secret only', async () => {
    const path = hookPath();
    const { id, secret: old } = await newEndpoint(path);
    await emit('reminder.done');
    await waitFor(() => receiver.on(path).length >= 1, 10_000, 'the first event');
    const rotated = await secretCall(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ id, secret: expect.stringMatching(/^whsec_/), rotatedAt: expect.any(String) });
    expect(rotated.body.secret).not.toBe(old);
    expect((await call(df.baseUrl, 'GET', `/api/v1/webhook-endpoints/${id}`, { auth: asService() })).body.secret).toBeUndefined();
    await emit('reminder.done');
    await waitFor(() => receiver.on(path).length >= 2, 10_000, 'the second event');
    const [first, second] = receiver.on(path);
    expect([verifies(old, first), verifies(rotated.body.secret, first)]).toEqual([true, false]);
    expect([verifies(old, second), verifies(rotated.body.secret, second)]).toEqual([false, true]);
    expect((await secretCall(df.baseUrl, 'POST', '/api/v1/webhook-endpoints/0123456789abcdef01234567/rotate-secret')).status).toBe(404);
  });

  test('POST /:id/test answers what the endpoint replied; the event goes to that endpoint only; a failed test is retried', async () => {
    const path = hookPath();
    const other = hookPath();
    receiver.script(path, [
      { status: 202, body: 'got it', delayMs: 50 },
      { status: 500, body: 'broken' },
    ]);
    const { id, secret } = await newEndpoint(path, ['preview.confirmed']);
    await newEndpoint(other, ['*']);
    const res = await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/test`, { auth: asService() });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, code: 'ok', httpStatus: 202, body: 'got it', detail: null });
    expect(res.body.durationMs).toBeGreaterThanOrEqual(40);
    const [r] = receiver.on(path);
    expect(JSON.parse(r.body)).toMatchObject({ type: 'webhook.test', data: { endpointId: id } });
    expect(r.headers['webhook-id']).toBe(res.body.eventId);
    expect(verifies(secret, r)).toBe(true);

    const failed = await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/test`, { auth: asService() });
    expect(failed.body).toMatchObject({ ok: false, code: 'non_2xx', httpStatus: 500, body: 'broken' });
    // Retried through the queue like any event, with the same webhook-id.
    await waitForDelivery(id, failed.body.eventId, 'delivered');
    expect(receiver.on(path).filter((x) => x.headers['webhook-id'] === failed.body.eventId)).toHaveLength(2);
    expect(receiver.on(other)).toHaveLength(0);

    await call(df.baseUrl, 'PATCH', `/api/v1/webhook-endpoints/${id}`, { auth: asService(), body: { enabled: false } });
    expect((await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/test`, { auth: asService() })).status).toBe(409);
    expect((await call(df.baseUrl, 'POST', '/api/v1/webhook-endpoints/0123456789abcdef01234567/test', { auth: asService() })).status).toBe(404);
  });

  test('events filter: ["*"] gets everything, a list only its types, a disabled endpoint nothing', async () => {
    const all = hookPath();
    const some = hookPath();
    const off = hookPath();
    await newEndpoint(all, ['*']);
    await newEndpoint(some, ['preview.confirmed', 'anomaly.escalated']);
    const disabled = await newEndpoint(off, ['*']);
    await call(df.baseUrl, 'PATCH', `/api/v1/webhook-endpoints/${disabled.id}`, { auth: asService(), body: { enabled: false } });
    const rejected = await emit('preview.rejected', { previewId: 'p', userId: 'u1', rejectedVia: 'app' });
    const confirmed = await emit('preview.confirmed', { previewId: 'p', userId: 'u1', confirmedVia: 'api' });
    const escalated = await emit('anomaly.escalated', { anomalyId: 'a', userId: 'u1', step: 1 });
    await waitFor(() => receiver.on(all).length >= 3 && receiver.on(some).length >= 2, 10_000, 'the events');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      receiver
        .on(all)
        .map((r) => r.headers['webhook-id'])
        .sort(),
    ).toEqual([rejected, confirmed, escalated].sort());
    expect(
      receiver
        .on(some)
        .map((r) => r.headers['webhook-id'])
        .sort(),
    ).toEqual([confirmed, escalated].sort());
    expect(receiver.on(off)).toHaveLength(0);
  });

  test('500 twice, then 200: retried with backoff, same webhook-id, every attempt in the ledger', async () => {
    const path = hookPath();
    receiver.script(
      path,
      [
        { status: 500, body: 'one' },
        { status: 503, body: 'two' },
      ],
      { status: 200, body: 'three' },
    );
    const { id } = await newEndpoint(path);
    const eventId = await emit('reminder.done');
    const d = await waitForDelivery(id, eventId, 'delivered', 'dead');
    expect(d).toMatchObject({ status: 'delivered', attemptCount: 3 });
    expect(receiver.on(path).map((r) => r.headers['webhook-id'])).toEqual([eventId, eventId, eventId]);
    const view = (await listDeliveries(id)).find((x) => x.eventId === eventId);
    expect(view).toMatchObject({ id: deliveryIdFor(id, eventId), status: 'delivered', attemptCount: 3, eventType: 'reminder.done' });
    expect(view.attempts.map((a: any) => [a.attempt, a.httpStatus, a.code, a.response])).toEqual([
      [1, 500, 'non_2xx', 'one'],
      [2, 503, 'non_2xx', 'two'],
      [3, 200, 'ok', 'three'],
    ]);
    // Backed off between attempts (50 ms doubling, ±20%).
    const times = receiver.on(path).map((r) => r.at);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(35);
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(75);
  });

  test('a timeout counts as a failed attempt', async () => {
    const timeouts = await startTestDueflow('all', { ...settings, EVENT_TIMEOUT_MS: '300', EVENT_ATTEMPTS: '2' });
    try {
      const path = hookPath();
      receiver.script(path, [{ status: 200, delayMs: 1000 }], { status: 200 });
      const { id } = await newEndpoint(path, ['*'], timeouts);
      await emitEvent(timeouts.ctx, { type: 'reminder.done', key: 'timeout-1', data: { recordId: 'r' } });
      const eventId = eventIdFor('reminder.done', 'timeout-1');
      const d = await waitFor(
        async () => {
          const x = await timeouts.ctx.models.eventDeliveries.findById(deliveryIdFor(id, eventId)).lean();
          return x?.status === 'delivered' ? x : undefined;
        },
        10_000,
        'delivered',
      );
      expect(d.history.filter((h: any) => h.event === 'attempt').map((h: any) => h.code)).toEqual(['timeout', 'ok']);
    } finally {
      await timeouts.stop();
    }
  });

  test('attempts exhausted: dead; replayed through the API, the ledger follows', async () => {
    const path = hookPath();
    receiver.script(path, [], { status: 500, body: 'down' });
    const { id } = await newEndpoint(path);
    const eventId = await emit('reminder.done');
    const dead = await waitForDelivery(id, eventId, 'dead', 'delivered');
    expect(dead).toMatchObject({ status: 'dead', statusReason: 'attempts_exhausted', attemptCount: 3, lastErrorCode: 'non_2xx' });
    expect((await listDeliveries(id, 'dead')).map((x) => x.eventId)).toEqual([eventId]);
    expect(await listDeliveries(id, 'delivered')).toEqual([]);

    receiver.script(path, [], { status: 200, body: 'back' });
    const retry = await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/deliveries/${encodeURIComponent(deliveryIdFor(id, eventId))}/retry`, {
      auth: asService(),
    });
    expect(retry.status).toBe(202);
    expect(retry.body).toMatchObject({ status: 'pending', attemptCount: 3 });
    const delivered = await waitForDelivery(id, eventId, 'delivered');
    expect(delivered.attemptCount).toBe(4);
    expect(delivered.history.map((h: any) => h.event)).toEqual(['attempt', 'attempt', 'attempt', 'dead', 'replay', 'attempt']);
    expect(receiver.on(path)).toHaveLength(4);

    // Only a dead delivery is replayed; the event id alone names it too.
    expect((await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/deliveries/${eventId}/retry`, { auth: asService() })).status).toBe(409);
    expect(
      (await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/deliveries/${eventIdFor('reminder.done', 'nope')}/retry`, { auth: asService() })).status,
    ).toBe(404);
    expect((await call(df.baseUrl, 'POST', `/api/v1/webhook-endpoints/${id}/deliveries/garbage/retry`, { auth: asService() })).status).toBe(404);
  });

  test("a dead delivery replayed by its job's Retry (as Bull Board does) gets a new round; the ledger follows", async () => {
    const path = hookPath();
    receiver.script(path, [], { status: 500 });
    const { id } = await newEndpoint(path);
    const eventId = await emit('reminder.done');
    await waitForDelivery(id, eventId, 'dead');
    const job = await waitFor(
      async () => {
        const j = await df.ctx.queues.events.getJob(eventJobId(deliveryIdFor(id, eventId)));
        return j && (await j.getState()) === 'failed' ? j : undefined;
      },
      5000,
      'the job to fail',
    );
    expect(job.attemptsMade).toBe(3);

    // BullMQ's attempts are spent: the replay's retries wait (delayed) instead, the ledger counts the round.
    receiver.script(path, [{ status: 500, body: 'still' }], { status: 204 });
    await job.retry('failed');
    const delivered = await waitForDelivery(id, eventId, 'delivered');
    expect(delivered).toMatchObject({ status: 'delivered', attemptCount: 5, replayBase: 3 });
    expect(delivered.history.map((h: any) => h.event)).toEqual(['attempt', 'attempt', 'attempt', 'dead', 'replay', 'attempt', 'attempt']);
    expect(delivered.history.find((h: any) => h.event === 'replay')?.detail).toContain('Retry');
  });

  test('a deleted endpoint: its waiting deliveries end dead (endpoint_missing), nothing is sent', async () => {
    const path = hookPath();
    receiver.script(path, [{ status: 500 }], { status: 200 });
    const { id } = await newEndpoint(path);
    const eventId = await emit('reminder.done');
    await waitFor(() => receiver.on(path).length >= 1, 10_000, 'the first attempt');
    await call(df.baseUrl, 'DELETE', `/api/v1/webhook-endpoints/${id}`, { auth: asService() });
    const d = await waitForDelivery(id, eventId, 'dead', 'delivered');
    // The first retry may already have been in flight when the endpoint went.
    if (d.status === 'dead') expect(d.statusReason).toBe('endpoint_missing');
  });

  test('a slow endpoint (answers after 8 s) delays neither another endpoint nor a notification', async () => {
    const slow = hookPath();
    const fast = hookPath();
    receiver.script(slow, [], { status: 200, delayMs: 8000 });
    await newEndpoint(slow, ['*']);
    await newEndpoint(fast, ['reminder.done']);
    // Enough to fill the slow endpoint's 4 slots and leave some waiting.
    for (let i = 0; i < 8; i++) await emit('preview.confirmed', { previewId: `p${i}`, userId: 'u1' });
    await waitFor(() => receiver.inFlight(slow) >= 4, 10_000, 'the slow endpoint to be busy');

    const bot = await userWithBot(df.baseUrl, feishu);
    const started = Date.now();
    const [eventId, note] = await Promise.all([
      emit('reminder.done'),
      call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(bot.userId) }),
    ]);
    expect(note.status).toBe(202);
    await waitFor(() => receiver.on(fast).some((r) => r.headers['webhook-id'] === eventId), 2000, "the fast endpoint's event within 2 s");
    const fastMs = Date.now() - started;
    await waitFor(() => feishu.messages.some((m) => m.token === bot.token), 2000, 'the notification within 2 s');
    const noteMs = Date.now() - started;
    expect(fastMs).toBeLessThan(2000);
    expect(noteMs).toBeLessThan(2000);
    expect(receiver.inFlight(slow)).toBeGreaterThan(0);
    // At most EVENT_ENDPOINT_CONCURRENCY (4) requests in flight to the slow endpoint, across the worker's 50 slots.
    expect(receiver.maxInFlight(slow)).toBe(4);
    // The slow ones still get there: 2xx within 10 s.
    await waitFor(() => new Set(receiver.on(slow).map((r) => r.headers['webhook-id'])).size >= 9, 40_000, "the slow endpoint's events");
    expect(receiver.maxInFlight(slow)).toBe(4);
  }, 60_000);
});

// ── the pull API, the reconciler, the purge ─────────────────────────────────────────────────

describe('pull API', () => {
  test('every event in order, read with a cursor', async () => {
    const start = (await listEvents(df.ctx, { limit: 500 })).items;
    let cursor = start.length ? start[start.length - 1].cursor : undefined;
    // Read to the end first, so only what this test emits follows the cursor.
    for (let page = await listEvents(df.ctx, { after: cursor, limit: 500 }); page.items.length; page = await listEvents(df.ctx, { after: cursor, limit: 500 }))
      cursor = page.nextCursor ?? cursor;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(await emit('notification.sent', { recordId: `r${i}`, userId: 'u1', channel: 'feishu_bot', dedupeKey: `d${i}`, triggerType: 't' }));

    const seen: any[] = [];
    let after = cursor;
    for (let round = 0; round < 10; round++) {
      const res = await call(df.baseUrl, 'GET', `/api/v1/events?limit=2${after ? `&after=${after}` : ''}`, { auth: asService() });
      expect(res.status).toBe(200);
      seen.push(...res.body.items);
      if (!res.body.items.length) {
        expect(res.body).toEqual({ items: [], nextCursor: after, hasMore: false });
        break;
      }
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      after = res.body.nextCursor;
    }
    expect(seen.map((e) => e.id)).toEqual(ids);
    expect(seen[0]).toMatchObject({
      type: 'notification.sent',
      userId: 'u1',
      data: { recordId: 'r0', channel: 'feishu_bot' },
      timestamp: expect.any(String),
      cursor: expect.stringMatching(/^[0-9a-f]{24}$/),
    });
    expect((await call(df.baseUrl, 'GET', '/api/v1/events?after=nope', { auth: asService() })).status).toBe(400);
    expect((await call(df.baseUrl, 'GET', '/api/v1/events?limit=501', { auth: asService() })).status).toBe(400);
  });

  test('events younger than EVENT_PULL_SETTLE_MS are held back, so a cursor never steps over one written late', async () => {
    const id = await emit('reminder.done');
    const settled = { models: df.ctx.models, config: { ...df.config, EVENT_PULL_SETTLE_MS: 3000 } };
    const seen = async (now?: Date) => {
      const all: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await listEvents(settled, { after, limit: 500 }, now);
        all.push(...page.items.map((e) => e.id));
        if (!page.hasMore) return all;
        after = page.nextCursor!;
      }
    };
    expect(await seen()).not.toContain(id);
    expect(await seen(new Date(Date.now() + 5000))).toContain(id);
  });
});

describe('reconciler', () => {
  test('an event whose emitter died before its deliveries is fanned out; a delivery whose job is gone is enqueued again', async () => {
    const path = hookPath();
    const { id } = await newEndpoint(path);
    const old = new Date(Date.now() - 60_000);
    // The emitter wrote the event and died: no deliveries, no fannedOutAt.
    const lostId = eventIdFor('reminder.done', 'crash-1');
    await df.ctx.models.events.collection.insertOne({
      _id: lostId,
      type: 'reminder.done',
      key: 'crash-1',
      dataJson: '{"recordId":"r"}',
      at: old,
      seq: new Types.ObjectId(),
      createdAt: old,
    } as never);
    // And a delivery written, its job never added (Redis was away).
    const orphanId = eventIdFor('reminder.done', 'crash-2');
    await df.ctx.models.events.collection.insertOne({
      _id: orphanId,
      type: 'reminder.done',
      key: 'crash-2',
      dataJson: '{"recordId":"s"}',
      at: old,
      seq: new Types.ObjectId(),
      createdAt: old,
      fannedOutAt: old,
    } as never);
    await df.ctx.models.eventDeliveries.collection.insertOne({
      _id: deliveryIdFor(id, orphanId),
      endpointId: id,
      eventId: orphanId,
      eventType: 'reminder.done',
      status: 'pending',
      attemptCount: 0,
      replayBase: 0,
      maxAttempts: 3,
      history: [],
      createdAt: old,
      updatedAt: old,
    } as never);

    const repairs = await reconcileEvents(df.ctx);
    expect(repairs).toMatchObject({ fannedOut: 1, requeued: 1 });
    await waitForDelivery(id, lostId, 'delivered');
    await waitForDelivery(id, orphanId, 'delivered');
    expect(
      receiver
        .on(path)
        .map((r) => r.headers['webhook-id'])
        .sort(),
    ).toEqual([lostId, orphanId].sort());
    expect((await df.ctx.models.events.findById(lostId).lean())!.fannedOutAt).toBeInstanceOf(Date);
    expect(await reconcileEvents(df.ctx)).toEqual({ fannedOut: 0, requeued: 0, unstuck: 0 });
  });

  test('the purge removes events and deliveries past EVENT_RETENTION_DAYS', async () => {
    const path = hookPath();
    const { id } = await newEndpoint(path);
    const eventId = await emit('reminder.done');
    await waitForDelivery(id, eventId, 'delivered');
    expect(await purgeExpiredEvents(df.ctx)).toEqual({ events: 0, eventDeliveries: 0 });
    const purged = await purgeExpiredEvents(df.ctx, new Date(Date.now() + 31 * 86_400_000));
    expect(purged.events).toBeGreaterThanOrEqual(1);
    expect(await df.ctx.models.events.countDocuments({ _id: eventId })).toBe(0);
    expect(await delivery(id, eventId)).toBeNull();
  });
});

// ── a worker killed mid-delivery, Redis flushed ──────────────────────────────────────────────

describe('a worker killed with SIGKILL during delivery, then Redis flushed', () => {
  const chaos = { EVENT_TIMEOUT_MS: '2000', EVENT_BACKOFF_MS: '100', EVENT_BACKOFF_MAX_MS: '500', RECONCILE_INTERVAL_MS: '1000', EVENT_PULL_SETTLE_MS: '0' };
  let api: TestDueflow | undefined;
  const workers: DueflowProcess[] = [];
  afterAll(async () => {
    for (const w of workers)
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.kill('SIGKILL');
        await w.waitForExit().catch(() => undefined);
      }
    await api?.stop();
  });

  test('every event is delivered at least once: none lost', async () => {
    api = await startTestDueflow('api', chaos);
    const env = testEnv({ ...chaos, MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX, DUEFLOW_MODE: 'worker', LOG_LEVEL: 'info' });
    const path = hookPath();
    receiver.script(path, [], { status: 200, delayMs: 250 });
    const { id } = await newEndpoint(path, ['*'], api);
    const eventIds: string[] = [];
    for (let i = 0; i < 40; i++) {
      const k = `kill-${i}-${randomUUID()}`;
      await emitEvent(api.ctx, { type: 'reminder.done', key: k, data: { recordId: `r${i}`, reminderId: null } });
      eventIds.push(eventIdFor('reminder.done', k));
    }
    const distinct = () => new Set(receiver.on(path).map((r) => String(r.headers['webhook-id'])));

    const first = spawnDueflow(env);
    workers.push(first);
    await first.waitForLog('dueflow started');
    await waitFor(() => distinct().size >= 8 && receiver.inFlight(path) > 0, 20_000, 'deliveries under way');
    first.kill('SIGKILL');
    expect((await first.waitForExit()).signal).toBe('SIGKILL');
    const sending = await api.ctx.models.eventDeliveries.countDocuments({ status: 'sending' });
    const notDelivered = await api.ctx.models.eventDeliveries.countDocuments({ status: { $ne: 'delivered' } });
    expect(sending).toBeGreaterThan(0);
    expect(notDelivered).toBeGreaterThan(0);

    // FLUSHDB of this test's keys only (the Redis is shared): jobs, schedulers, locks, slots.
    const admin = new Redis(api.config.REDIS_URL);
    try {
      let deleted = 0;
      for (let cursor = '0'; ;) {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${api.config.QUEUE_PREFIX}*`, 'COUNT', 1000);
        if (keys.length) deleted += await admin.del(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
      expect(deleted).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
    }
    expect(await api.ctx.queues.events.count()).toBe(0);

    const second = spawnDueflow(env);
    workers.push(second);
    await second.waitForLog('dueflow started');
    await waitFor(
      async () => (await api!.ctx.models.eventDeliveries.countDocuments({ endpointId: id, status: 'delivered' })) === 40,
      60_000,
      'all 40 delivered',
    );
    expect([...distinct()].sort()).toEqual([...eventIds].sort());
    const repaired = await second.waitForLog('reconciler repaired event deliveries');
    expect(repaired.requeued + repaired.unstuck).toBeGreaterThan(0);
    second.kill('SIGTERM');
    await second.waitForExit();
    for (const line of [...first.output, ...second.output]) for (const s of secretsShown) expect(line.includes(s)).toBe(false);
  }, 120_000);
});

// Last: everything above has logged what it will.
test('no secret shown by the API appears in any log line', () => {
  expect(secretsShown.size).toBeGreaterThan(5);
  const logs = df.logs.join('\n');
  for (const s of secretsShown) {
    expect(logs.includes(s)).toBe(false);
    expect(logs.includes(s.slice(6))).toBe(false);
  }
  expect(logs).not.toContain(testSecrets.SECRETS_KEY);
});

// Users are never let in.
test('a user token is refused on every events route', async () => {
  const auth = await asUser('someone');
  for (const [method, path] of [
    ['GET', '/api/v1/webhook-endpoints'],
    ['POST', '/api/v1/webhook-endpoints'],
    ['GET', '/api/v1/events'],
  ]) {
    expect([
      path,
      (await call(df.baseUrl, method, path, { auth, body: method === 'POST' ? { url: 'https://hooks.example.com/x', events: ['*'] } : undefined })).status,
    ]).toEqual([path, 401]);
  }
});
