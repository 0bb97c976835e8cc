/**
 * Fuzzing every route of the OpenAPI document with malformed requests (wrong types, missing
 * fields, huge strings, deep nesting, invalid dates and time zones, broken JSON, wrong content
 * types, odd ids): every answer is a 4xx in the error shape, never a 5xx, the process stays up,
 * and the data stored before is unchanged.
 */
import { createHash, randomUUID } from 'node:crypto';
import { asService, asUser, call, notificationBody } from './support/api';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';

let df: TestDueflow;
let doc: any;
const userId = `fuzz-${randomUUID()}`;
const ids: Record<string, string> = {};
/** Feishu callbacks: most fuzzed bodies are signed with the key, so they get past the signature to the parsing. */
const feishuEncryptKey = 'fuzz-encrypt-key-0123456789';
const FEISHU_SIGNED = 'feishu-signature';
function feishuHeaders(body: string): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = randomUUID();
  return {
    'x-lark-request-timestamp': ts,
    'x-lark-request-nonce': nonce,
    'x-lark-signature': createHash('sha256')
      .update(ts + nonce + feishuEncryptKey + body)
      .digest('hex'),
  };
}

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with the printed seed. */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const random = prng(seed);
const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];

const deep = (depth: number): unknown => (depth === 0 ? 'bottom' : { a: [deep(depth - 1)] });
const huge = 'x'.repeat(60_000);

/** Values that are wrong for a property of the given JSON-schema type. */
function wrongFor(schema: any): unknown {
  const type = schema?.type ?? (schema?.enum ? 'string' : schema?.anyOf || schema?.oneOf ? 'mixed' : 'object');
  const types = Array.isArray(type) ? type : [type];
  const candidates: unknown[] = [];
  if (!types.includes('string')) candidates.push('not-the-right-type', huge);
  if (!types.includes('number') && !types.includes('integer')) candidates.push(12345, -1.5, 1e308);
  if (!types.includes('boolean')) candidates.push(true);
  if (!types.includes('object')) candidates.push({ nested: deep(3) });
  if (!types.includes('array')) candidates.push([1, 'two', { three: 3 }]);
  if (schema?.format === 'date-time' || /date|At$|start|end|from|to/i.test(schema?.title ?? '')) candidates.push('2026-13-45T25:61:00Z', 'yesterday');
  if (schema?.enum) candidates.push('not-one-of-the-values');
  if (types.includes('string') && schema?.maxLength) candidates.push('y'.repeat(schema.maxLength + 1));
  if (types.includes('integer')) candidates.push(1.5);
  if (types.includes('number') || types.includes('integer')) {
    if (schema?.minimum !== undefined) candidates.push(schema.minimum - 1);
    if (schema?.maximum !== undefined) candidates.push(schema.maximum + 1);
  }
  return pick(candidates.length ? candidates : [deep(40)]);
}

/** Every property schema reachable at the top of a body schema (through oneOf/anyOf/allOf). */
function propertiesOf(schema: any): Record<string, any> {
  if (!schema) return {};
  const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema;
  const branches = [resolved, ...(resolved.oneOf ?? []), ...(resolved.anyOf ?? []), ...(resolved.allOf ?? [])];
  return Object.assign({}, ...branches.map((b: any) => b?.properties ?? {}));
}

const fakeIds = ['0123456789abcdef01234567', 'not-an-id', '../../etc/passwd', 'ｆｕｚｚ', 'z'.repeat(500), '%00', 'feishu_bot_nope', '-1'];
const badTimeZones = ['Mars/Olympus_Mons', 'UTC+25', '', 'Asia/Shanghai\n'];

interface Attempt {
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  auth?: string;
}

function malformed(method: string, path: string, op: any, auth: string): Attempt | undefined {
  const params: string[] = (path.match(/\{(\w+)\}/g) ?? []).map((p) => p.slice(1, -1));
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const queryParams = (op.parameters ?? []).filter((p: any) => p.in === 'query');
  // /api/v1/<resource>/...: the id of the stored thing of that kind (tasks, schedule, notification, reminders), else the task's.
  const realId = (name: string) => (name === 'channel' ? 'feishu_bot' : (ids[path.split('/')[3]] ?? ids.any));
  const fill = (useReal: boolean) => path.replace(/\{(\w+)\}/g, (_m, name) => encodeURIComponent(useReal ? realId(name) : pick(fakeIds)));

  const kinds: string[] = [];
  if (bodySchema) kinds.push('wrong-field', 'wrong-field', 'not-object', 'broken-json', 'wrong-content-type', 'deep', 'missing-all');
  if (params.length) kinds.push('bad-param');
  if (queryParams.length) kinds.push('bad-query', 'bad-query');
  if (!kinds.length) return undefined;
  const kind = pick(kinds);

  switch (kind) {
    case 'wrong-field': {
      const props = propertiesOf(bodySchema);
      const names = Object.keys(props);
      if (!names.length) return { method, path: fill(false), body: JSON.stringify({ unexpected: wrongFor({}) }), auth };
      const name = pick(names);
      const value = name === 'timeZone' ? pick(badTimeZones) : wrongFor(props[name]);
      // Real ids: a wrong body must not change the real resource either.
      return { method, path: fill(true), body: JSON.stringify({ [name]: value }), auth };
    }
    case 'not-object':
      return { method, path: fill(true), body: JSON.stringify(pick([42, 'text', [1, 2], true, huge])), auth };
    case 'broken-json':
      return { method, path: fill(true), body: pick(['{"title": ', '{title: 1}', '[1,2', '\u0000', '{"a":1}}', 'nul']), auth };
    case 'wrong-content-type':
      return {
        method,
        path: fill(false),
        body: '{"title":"x"}',
        contentType: pick(['text/plain', 'application/x-www-form-urlencoded', 'application/xml']),
        auth,
      };
    case 'deep': {
      // Built as text: JSON.stringify itself would overflow the stack at this depth.
      const depth = 200 + Math.floor(random() * 5000);
      return { method, path: fill(true), body: '{"a":['.repeat(depth) + '1' + ']}'.repeat(depth), auth };
    }
    case 'missing-all':
      return { method, path: fill(false), body: '{}', auth };
    case 'bad-param':
      return { method, path: fill(false), body: bodySchema ? '{}' : undefined, auth };
    case 'bad-query': {
      const q = pick(queryParams) as any;
      const value = wrongFor(q.schema);
      const text = typeof value === 'string' ? value.slice(0, 3000) : JSON.stringify(value).slice(0, 3000);
      return { method, path: `${fill(true)}?${encodeURIComponent(q.name)}=${encodeURIComponent(text)}`, auth };
    }
  }
  return undefined;
}

async function snapshot(): Promise<string> {
  const collections = await df.ctx.mongo.db!.listCollections().toArray();
  const all: Record<string, unknown[]> = {};
  for (const { name } of collections.sort((a, b) => a.name.localeCompare(b.name))) {
    all[name] = await df.ctx.mongo.db!.collection(name).find({}).sort({ _id: 1 }).toArray();
  }
  return JSON.stringify(all);
}

beforeAll(async () => {
  df = await startTestDueflow('api', { USER_RATE_LIMIT_PER_MINUTE: '1000000', SERVICE_RATE_LIMIT_PER_MINUTE: '1000000', FEISHU_ENCRYPT_KEY: feishuEncryptKey });
  doc = await (await fetch(`${df.baseUrl}/openapi.json`)).json();
  const auth = await asUser(userId);
  const hour = 3600_000;
  await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth,
    body: { enabled: true, webhookUrl: 'http://127.0.0.1:9/open-apis/bot/v2/hook/fuzzToken123' },
  });
  await call(df.baseUrl, 'PUT', '/api/v1/me/settings', {
    auth,
    body: { timeZone: 'Asia/Shanghai', quietHours: { start: '22:00', end: '07:00' }, optOutTriggerTypes: [] },
  });
  ids.tasks = (
    await call(df.baseUrl, 'POST', '/api/v1/tasks', {
      auth,
      body: { title: 'Fuzz task', priority: 1, urgencyThresholdAt: new Date(Date.now() + 10 * hour).toISOString() },
    })
  ).body.id;
  ids.schedule = (
    await call(df.baseUrl, 'POST', '/api/v1/schedule/blocks', {
      auth,
      body: { title: 'Fuzz block', start: new Date(Date.now() + 20 * hour).toISOString(), end: new Date(Date.now() + 21 * hour).toISOString() },
    })
  ).body.id;
  ids.reminders = (
    await call(df.baseUrl, 'POST', '/api/v1/reminders', {
      auth,
      body: { message: { title: 'Fuzz reminder', summary: 'Drink water' }, cron: '0 9 * * *', count: 3 },
    })
  ).body.id;
  ids.notification = (await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) })).body.id;
  // The host product's routes (/api/v1/users/{userId}/...): a synced task and block, one id for both path params.
  ids.users = randomUUID().replace(/-/g, '').slice(0, 24);
  const synced = `/api/v1/users/${ids.users}`;
  expect(
    (
      await call(df.baseUrl, 'PUT', `${synced}/tasks/${ids.users}`, {
        auth: asService(),
        body: { title: 'Fuzz synced task', priority: 1, urgencyThresholdAt: new Date(Date.now() + 12 * hour).toISOString() },
      })
    ).status,
  ).toBe(201);
  expect(
    (
      await call(df.baseUrl, 'PUT', `${synced}/blocks/${ids.users}`, {
        auth: asService(),
        body: { taskExternalId: ids.users, start: new Date(Date.now() + 22 * hour).toISOString(), end: new Date(Date.now() + 23 * hour).toISOString() },
      })
    ).status,
  ).toBe(201);
  // A webhook endpoint (its answer holds the secret: read with plain fetch, outside the captured answers).
  const endpoint = await fetch(`${df.baseUrl}/api/v1/webhook-endpoints`, {
    method: 'POST',
    headers: { authorization: asService(), 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'http://127.0.0.1:9/fuzz-hook', events: ['*'] }),
  });
  ids['webhook-endpoints'] = ((await endpoint.json()) as { id: string }).id;
  ids.any = ids.tasks;
  for (const v of Object.values(ids)) expect(v).toMatch(/^[0-9a-f]{24}$/);
});
afterAll(async () => {
  await df.stop();
});

test(`2,000 malformed requests across every route: only 4xx in the error shape, data unchanged (seed ${seed})`, async () => {
  const before = await snapshot();
  const userAuth = await asUser(userId);
  const targets = Object.entries<any>(doc.paths).flatMap(([path, ops]) =>
    Object.entries<any>(ops)
      .filter(([, op]) => op['x-dueflow-auth'] !== 'none')
      .map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        op,
        auth: ({ service: asService(), feishu: FEISHU_SIGNED } as Record<string, string>)[op['x-dueflow-auth']] ?? userAuth,
      })),
  );

  const syncRoutes = [
    'PUT /api/v1/users/{userId}/tasks/{externalId}',
    'DELETE /api/v1/users/{userId}/tasks/{externalId}',
    'PUT /api/v1/users/{userId}/blocks/{externalId}',
    'DELETE /api/v1/users/{userId}/blocks/{externalId}',
    'PUT /api/v1/users/{userId}/settings',
    'POST /api/v1/sync',
  ];
  expect(targets.map((t) => `${t.method} ${t.path}`)).toEqual(expect.arrayContaining(syncRoutes));

  let sent = 0;
  const byStatus: Record<number, number> = {};
  const routesHit = new Set<string>();
  while (sent < 2000) {
    const target = pick(targets);
    const attempt = malformed(target.method, target.path, target.op, target.auth);
    if (!attempt) continue;
    const headers: Record<string, string> = { 'content-type': attempt.contentType ?? 'application/json' };
    // A feishu route: signed nine times in ten (the parsing is what is fuzzed), unsigned otherwise.
    if (attempt.auth === FEISHU_SIGNED) Object.assign(headers, random() < 0.9 ? feishuHeaders(attempt.body ?? '') : {});
    else headers.authorization = attempt.auth!;
    const res = await fetch(`${df.baseUrl}${attempt.path}`, { method: attempt.method, headers, body: attempt.method === 'GET' ? undefined : attempt.body });
    const text = await res.text();
    sent++;
    routesHit.add(`${target.method} ${target.path}`);
    byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
    const ok = res.status >= 400 && res.status < 500;
    if (!ok)
      throw new Error(
        `${attempt.method} ${attempt.path.slice(0, 200)} with ${String(attempt.body).slice(0, 200)} answered ${res.status}: ${text.slice(0, 300)} (seed ${seed})`,
      );
    const parsed = JSON.parse(text);
    expect(typeof parsed.error.code).toBe('string');
    expect(typeof parsed.error.message).toBe('string');
  }
  process.stdout.write(`fuzz: ${sent} requests over ${routesHit.size} routes, answers ${JSON.stringify(byStatus)}, seed ${seed}\n`);
  expect(routesHit.size).toBeGreaterThanOrEqual(targets.filter((t) => malformed(t.method, t.path, t.op, t.auth)).length - 1);
  expect((await fetch(`${df.baseUrl}/healthz`)).status).toBe(200);
  expect(await snapshot()).toBe(before);
}, 120_000);
