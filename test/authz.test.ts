/**
 * The authorization matrix, over every route of the OpenAPI document: no token → 401; a user
 * token on a service route → 401; user B can neither read nor change user A's data (404, never
 * 403, so ids don't leak). A route missing from the table below fails the test: a new route
 * cannot be forgotten.
 */
import { createHash, randomUUID } from 'node:crypto';
import { asService, asUser, call, notificationBody } from './support/api';
import { waitFor } from './support/env';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';

let df: TestDueflow;
let feishu: FeishuServer;
let doc: any;
const A = `alice-${randomUUID()}`;
const B = `bob-${randomUUID()}`;
const ids: Record<string, string> = {};

/** For each user route: the ids of A's resource to put in its path, and a body B sends that would be valid for B's own data. */
/** cross-user: B names A's resource (404 expected; 400 allowed where A's id is in the body and the answer is the same as for an id that does not exist). */
type Case = { path: (id: Record<string, string>) => string; body?: unknown; kind: 'own-space' | 'cross-user'; idInBody?: boolean };
const hour = 3600_000;
/** dueflow is given it, so a feishu route's 401 below comes from the signature check, not from a missing key. */
const feishuEncryptKey = 'authz-encrypt-key-0123456789';
const table: Record<string, Case> = {
  'GET /api/v1/notification/records': { kind: 'own-space', path: () => '/api/v1/notification/records' },
  'GET /api/v1/notification/records/{id}': { kind: 'cross-user', path: (i) => `/api/v1/notification/records/${i.record}` },
  'GET /api/v1/notification/channels': { kind: 'own-space', path: () => '/api/v1/notification/channels' },
  // Channels are named by kind within the caller's own space: B only ever reaches B's own channel,
  // and A's stays as it was (the snapshot below).
  'GET /api/v1/notification/channels/{channel}': { kind: 'own-space', path: () => '/api/v1/notification/channels/feishu_bot' },
  'DELETE /api/v1/notification/channels/{channel}': { kind: 'own-space', path: () => '/api/v1/notification/channels/feishu_bot' },
  'POST /api/v1/notification/channels/{channel}/test': { kind: 'own-space', path: () => '/api/v1/notification/channels/feishu_bot/test' },
  'PUT /api/v1/notification/channels/{channel}': {
    kind: 'own-space',
    path: () => '/api/v1/notification/channels/feishu_bot',
    body: { enabled: false, webhookUrl: 'http://127.0.0.1:9/open-apis/bot/v2/hook/bobsOwnToken123' },
  },
  'GET /api/v1/me/settings': { kind: 'own-space', path: () => '/api/v1/me/settings' },
  'PUT /api/v1/me/settings': { kind: 'own-space', path: () => '/api/v1/me/settings', body: { timeZone: 'UTC', optOutTriggerTypes: ['important_urgent_task'] } },
  'POST /api/v1/tasks': { kind: 'own-space', path: () => '/api/v1/tasks', body: { title: 'B task', priority: 3 } },
  'GET /api/v1/tasks': { kind: 'own-space', path: () => '/api/v1/tasks' },
  'GET /api/v1/tasks/{id}': { kind: 'cross-user', path: (i) => `/api/v1/tasks/${i.task}` },
  'PATCH /api/v1/tasks/{id}': { kind: 'cross-user', path: (i) => `/api/v1/tasks/${i.task}`, body: { title: 'stolen' } },
  'DELETE /api/v1/tasks/{id}': { kind: 'cross-user', path: (i) => `/api/v1/tasks/${i.task}` },
  'POST /api/v1/reminders': {
    kind: 'own-space',
    path: () => '/api/v1/reminders',
    body: () => ({ message: { title: 'B reminder', summary: 'mine' }, at: new Date(Date.now() + 50 * hour).toISOString() }),
  },
  'GET /api/v1/reminders': { kind: 'own-space', path: () => '/api/v1/reminders' },
  'GET /api/v1/reminders/{id}': { kind: 'cross-user', path: (i) => `/api/v1/reminders/${i.reminder}` },
  'PATCH /api/v1/reminders/{id}': {
    kind: 'cross-user',
    path: (i) => `/api/v1/reminders/${i.reminder}`,
    body: { message: { title: 'stolen' }, cron: '0 9 * * *' },
  },
  'DELETE /api/v1/reminders/{id}': { kind: 'cross-user', path: (i) => `/api/v1/reminders/${i.reminder}` },
  'POST /api/v1/schedule/blocks': {
    kind: 'cross-user',
    idInBody: true,
    path: () => '/api/v1/schedule/blocks',
    body: (i: Record<string, string>) => ({
      taskId: i.task,
      title: 'B block',
      start: new Date(Date.now() + 50 * hour).toISOString(),
      end: new Date(Date.now() + 51 * hour).toISOString(),
    }),
  },
  'GET /api/v1/schedule/blocks': {
    kind: 'own-space',
    path: () => `/api/v1/schedule/blocks?from=${new Date(Date.now() - 48 * hour).toISOString()}&to=${new Date(Date.now() + 48 * hour).toISOString()}`,
  },
  'PATCH /api/v1/schedule/blocks/{id}': { kind: 'cross-user', path: (i) => `/api/v1/schedule/blocks/${i.block}`, body: { status: 'unfinished' } },
  'DELETE /api/v1/schedule/blocks/{id}': { kind: 'cross-user', path: (i) => `/api/v1/schedule/blocks/${i.block}` },
  'POST /api/v1/schedule/blocks/{id}/feedback': {
    kind: 'cross-user',
    path: (i) => `/api/v1/schedule/blocks/${i.block}/feedback`,
    body: { status: 'unfinished' },
  },
  'POST /api/v1/active-schedule/triggers': {
    kind: 'cross-user',
    idInBody: true,
    path: () => '/api/v1/active-schedule/triggers',
    body: (i: Record<string, string>) => ({ type: 'important_urgent_task', target: { type: 'task', id: i.task } }),
  },
  'GET /api/v1/active-schedule/triggers/{id}': { kind: 'cross-user', path: (i) => `/api/v1/active-schedule/triggers/${i.trigger}` },
  'POST /api/v1/active-schedule/dry-run': {
    kind: 'cross-user',
    idInBody: true,
    path: () => '/api/v1/active-schedule/dry-run',
    body: (i: Record<string, string>) => ({ taskId: i.task }),
  },
  'GET /api/v1/active-schedule/previews/{id}': { kind: 'cross-user', path: (i) => `/api/v1/active-schedule/previews/${i.preview}` },
  'POST /api/v1/active-schedule/previews/{id}/confirm': { kind: 'cross-user', path: (i) => `/api/v1/active-schedule/previews/${i.preview}/confirm` },
  'POST /api/v1/active-schedule/previews/{id}/reject': { kind: 'cross-user', path: (i) => `/api/v1/active-schedule/previews/${i.preview}/reject` },
  'POST /api/v1/anomalies/{id}/acknowledge': { kind: 'cross-user', path: (i) => `/api/v1/anomalies/${i.anomaly}/acknowledge` },
};

function routes(auth: string): string[] {
  return Object.entries<any>(doc.paths).flatMap(([p, ops]) =>
    Object.entries<any>(ops)
      .filter(([, op]) => op['x-dueflow-auth'] === auth)
      .map(([m]) => `${m.toUpperCase()} ${p}`),
  );
}
const concrete = (key: string) => key.split(' ')[1].replace(/\{\w+\}/g, '0123456789abcdef01234567');

/** Everything A can see of their own data: must be the same after B tried everything. */
async function snapshotOfA() {
  const auth = await asUser(A);
  const get = async (p: string) => (await call(df.baseUrl, 'GET', p, { auth })).body;
  return JSON.stringify([
    await get('/api/v1/notification/channels'),
    await get(`/api/v1/notification/records/${ids.record}`),
    await get('/api/v1/me/settings'),
    await get(`/api/v1/tasks/${ids.task}`),
    await get(table['GET /api/v1/schedule/blocks'].path(ids)),
    await get(`/api/v1/reminders/${ids.reminder}`),
    await get(`/api/v1/active-schedule/triggers/${ids.trigger}`),
    await get(`/api/v1/active-schedule/previews/${ids.preview}`),
    (await call(df.baseUrl, 'GET', `/api/v1/anomalies/${ids.anomaly}`, { auth: asService() })).body,
    (await df.ctx.models.triggers.findById(ids.anomaly).lean())?.anomaly,
  ]);
}

beforeAll(async () => {
  feishu = await startFeishuServer({ autoRegister: true });
  df = await startTestDueflow('all', { FEISHU_ENCRYPT_KEY: feishuEncryptKey });
  doc = await (await fetch(`${df.baseUrl}/openapi.json`)).json();
  const auth = await asUser(A);
  await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth,
    body: { enabled: true, webhookUrl: feishu.botUrl('alicesBotToken123'), signingSecret: 'alice-secret' },
  });
  await call(df.baseUrl, 'PUT', '/api/v1/me/settings', { auth, body: { timeZone: 'Asia/Shanghai', optOutTriggerTypes: [] } });
  ids.task = (
    await call(df.baseUrl, 'POST', '/api/v1/tasks', {
      auth,
      body: { title: 'A task', priority: 1, estimatedMinutes: 30, deadline: new Date(Date.now() + 30 * hour).toISOString() },
    })
  ).body.id;
  ids.block = (
    await call(df.baseUrl, 'POST', '/api/v1/schedule/blocks', {
      auth,
      body: { title: 'A block', start: new Date(Date.now() + 40 * hour).toISOString(), end: new Date(Date.now() + 41 * hour).toISOString() },
    })
  ).body.id;
  ids.reminder = (
    await call(df.baseUrl, 'POST', '/api/v1/reminders', {
      auth,
      body: { message: { title: 'A reminder', summary: 'Take a break' }, at: new Date(Date.now() + 45 * hour).toISOString() },
    })
  ).body.id;
  ids.record = (await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(A) })).body.id;
  ids.anomaly = (
    await call(df.baseUrl, 'POST', '/api/v1/anomalies', {
      auth: asService(),
      body: {
        userId: A,
        type: 'disk_almost_full',
        severity: 'critical',
        targetType: 'server',
        targetId: 'db-1',
        title: 'Disk almost full',
        detail: '97%',
        occurredAt: new Date().toISOString(),
        idempotencyKey: randomUUID(),
      },
    })
  ).body.id;
  const trigger = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: ids.task } },
  });
  ids.trigger = trigger.body.id;
  ids.preview = await waitFor(
    async () => (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${ids.trigger}`, { auth })).body.previewId,
    20_000,
    'the preview',
  );
  for (const [k, v] of Object.entries(ids)) expect([k, typeof v]).toEqual([k, 'string']);
}, 60_000);
afterAll(async () => {
  await df.stop();
  await feishu.close();
});

test('every user route is in the table', () => {
  expect(routes('user').filter((r) => !table[r])).toEqual([]);
});

/** The host product's routes act for any user: service token only, so the 401 checks below cover them. */
const syncRoutes = [
  'PUT /api/v1/users/{userId}/tasks/{externalId}',
  'DELETE /api/v1/users/{userId}/tasks/{externalId}',
  'PUT /api/v1/users/{userId}/blocks/{externalId}',
  'DELETE /api/v1/users/{userId}/blocks/{externalId}',
  'PUT /api/v1/users/{userId}/settings',
  'POST /api/v1/sync',
];
test('the sync routes are service routes', () => {
  expect(routes('service')).toEqual(expect.arrayContaining(syncRoutes));
});

/** The host product's integration: webhook endpoints, their deliveries and the events API are the service's alone (the 401 test below covers them). */
const eventRoutes = [
  'POST /api/v1/webhook-endpoints',
  'GET /api/v1/webhook-endpoints',
  'GET /api/v1/webhook-endpoints/{id}',
  'PATCH /api/v1/webhook-endpoints/{id}',
  'DELETE /api/v1/webhook-endpoints/{id}',
  'POST /api/v1/webhook-endpoints/{id}/test',
  'POST /api/v1/webhook-endpoints/{id}/rotate-secret',
  'GET /api/v1/webhook-endpoints/{id}/deliveries',
  'POST /api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/retry',
  'GET /api/v1/events',
];
test('the webhook endpoint and events routes are service routes, all of them', () => {
  expect(eventRoutes.filter((r) => !routes('service').includes(r))).toEqual([]);
  const documented = [...routes('user'), ...routes('service'), ...routes('none'), ...routes('feishu')].filter((r) =>
    /webhook-endpoints|\/api\/v1\/events/.test(r),
  );
  expect(documented.sort()).toEqual([...eventRoutes].sort());
});

test('no token → 401 on every user and service route; a user token on a service route → 401', async () => {
  for (const key of [...routes('user'), ...routes('service')]) {
    const method = key.split(' ')[0];
    const res = await call(df.baseUrl, method, concrete(key), { body: method === 'GET' ? undefined : {} });
    expect([key, res.status, res.body?.error?.code]).toEqual([key, 401, 'unauthorized']);
  }
  const userAuth = await asUser(A);
  for (const key of routes('service')) {
    const res = await call(df.baseUrl, key.split(' ')[0], concrete(key), { auth: userAuth, body: key.startsWith('GET') ? undefined : {} });
    expect([key, res.status]).toEqual([key, 401]);
  }
});

test('every feishu route: unsigned, a bearer instead of a signature, a wrong or stale signature → 401, nothing answered', async () => {
  expect(routes('feishu').length).toBeGreaterThan(0);
  const userAuth = await asUser(A);
  for (const key of routes('feishu')) {
    const [method] = key.split(' ');
    const raw = JSON.stringify({ type: 'url_verification', challenge: 'authz-challenge', token: 'x' });
    const signedBy = (secret: string, ts: number) => {
      const nonce = randomUUID();
      return {
        'x-lark-request-timestamp': String(ts),
        'x-lark-request-nonce': nonce,
        'x-lark-signature': createHash('sha256').update(`${ts}${nonce}${secret}${raw}`).digest('hex'),
      };
    };
    const now = Math.floor(Date.now() / 1000);
    const attempts: Array<[string, { auth?: string; headers?: Record<string, string> }]> = [
      ['unsigned', {}],
      ['a user token', { auth: userAuth }],
      ['the service token', { auth: asService() }],
      ['signed with another key', { headers: signedBy('not-the-encrypt-key-123', now) }],
      ['signed 6 minutes ago', { headers: signedBy(feishuEncryptKey, now - 360) }],
    ];
    for (const [name, opts] of attempts) {
      const res = await call(df.baseUrl, method, concrete(key), { ...opts, raw });
      expect([key, name, res.status, res.body?.error?.code]).toEqual([key, name, 401, 'unauthorized']);
      expect(JSON.stringify(res.body)).not.toContain('authz-challenge');
    }
    // The control: the same body signed with the key is answered.
    const ok = await call(df.baseUrl, method, concrete(key), { raw, headers: signedBy(feishuEncryptKey, now) });
    expect([key, ok.status, ok.body]).toEqual([key, 200, { challenge: 'authz-challenge' }]);
  }
});

test("user B can neither read nor change user A's data: 404 (never 403), and A's data is unchanged", async () => {
  const before = await snapshotOfA();
  const auth = await asUser(B);
  for (const key of routes('user')) {
    const c = table[key];
    const body = typeof c.body === 'function' ? (c.body as (i: Record<string, string>) => unknown)(ids) : c.body;
    const res = await call(df.baseUrl, key.split(' ')[0], c.path(ids), { auth, body });
    expect([key, res.status === 403]).toEqual([key, false]);
    if (c.kind === 'cross-user' && c.idInBody) {
      // The same answer as for an id nobody has: nothing tells B that A's id exists.
      const nobodys = await call(df.baseUrl, key.split(' ')[0], c.path(ids), {
        auth,
        body: JSON.parse(JSON.stringify(body).split(ids.task).join('0123456789abcdef01234567')),
      });
      expect([key, [400, 404].includes(res.status), res.body]).toEqual([key, true, nobodys.body]);
    } else if (c.kind === 'cross-user') {
      expect([key, res.status]).toEqual([key, 404]);
    } else {
      // B's own space: whatever B sees names nothing of A's.
      const text = JSON.stringify(res.body) ?? '';
      for (const [name, id] of Object.entries(ids)) expect([key, name, text.includes(id)]).toEqual([key, name, false]);
      expect(text).not.toContain('alicesBotToken');
    }
  }
  expect(await snapshotOfA()).toBe(before);
  expect(feishu.messages.filter((m) => m.token === 'alicesBotToken123').length).toBeLessThanOrEqual(3); // A's own record, preview and anomaly messages only
});
