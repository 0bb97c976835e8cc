import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { startRedisServer } from '../scripts/services';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { testSecrets, userToken } from './support/env';

describe('HTTP foundation', () => {
  let df: TestDueflow;
  beforeAll(async () => {
    df = await startTestDueflow('api');
  });
  afterAll(async () => {
    await df.stop();
  });

  test('healthz answers while the process is alive', async () => {
    const res = await fetch(`${df.baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test('readyz is 200 when Redis and MongoDB answer', async () => {
    const res = await fetch(`${df.baseUrl}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', checks: { redis: 'up', mongodb: 'up' } });
  });

  test('every answer carries a request id, echoed when the caller sends one', async () => {
    const mine = await fetch(`${df.baseUrl}/healthz`, { headers: { 'X-Request-Id': 'abc-123' } });
    expect(mine.headers.get('x-request-id')).toBe('abc-123');
    const generated = await fetch(`${df.baseUrl}/healthz`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('unknown routes answer the one error shape', async () => {
    const res = await fetch(`${df.baseUrl}/api/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route for GET /api/v1/nothing-here', details: null } });
  });

  test('metrics are Prometheus text with process metrics and jobs per queue and state', async () => {
    const res = await fetch(`${df.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toMatch(/dueflow_queue_jobs\{queue="notifications",state="waiting"\} 0/);
    expect(text).toMatch(/dueflow_queue_jobs\{queue="active-schedule-triggered",state="failed"\} 0/);
  });

  test('the OpenAPI document is served, with a docs page', async () => {
    const doc = (await (await fetch(`${df.baseUrl}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/readyz'].get).toBeDefined();
    expect(doc.components.securitySchemes.userJwt.scheme).toBe('bearer');
    const docs = await fetch(`${df.baseUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });

  describe('Bull Board', () => {
    const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

    test.each([
      ['no credentials', undefined],
      ['a wrong password', basic(testSecrets.ADMIN_USER, 'wrong-password')],
      ['a wrong user', basic('someone', testSecrets.ADMIN_PASSWORD)],
      ['a user JWT', 'Bearer x.y.z'],
    ])('refuses %s with 401 and shows no queue data', async (_name, authorization) => {
      for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
        const res = await fetch(`${df.baseUrl}${url}`, { headers: authorization ? { authorization } : {} });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('Basic');
        expect(await res.text()).not.toContain('notifications');
      }
    });

    test('answers with the admin credentials and lists every dueflow queue', async () => {
      const authorization = basic(testSecrets.ADMIN_USER, testSecrets.ADMIN_PASSWORD);
      const page = await fetch(`${df.baseUrl}/admin/queues`, { headers: { authorization } });
      expect(page.status).toBe(200);
      const api = (await (await fetch(`${df.baseUrl}/admin/queues/api/queues`, { headers: { authorization } })).json()) as any;
      expect(api.queues.map((q: { name: string }) => q.name).sort()).toEqual([
        'active-schedule-triggered',
        'card-updates',
        'events',
        'maintenance',
        'notifications',
        'scanner',
      ]);
    });
  });

  test('each kind of missing or bad credential is a 401 without a stack trace', async () => {
    const doc = (await (await fetch(`${df.baseUrl}/openapi.json`)).json()) as any;
    const routesOf = (kind: string) =>
      Object.entries<any>(doc.paths).flatMap(([p, ops]) =>
        Object.entries<any>(ops)
          .filter(([, op]) => op['x-dueflow-auth'] === kind)
          .map(([m]) => [m, p] as const),
      );
    const [userRoute] = routesOf('user');
    const [serviceRoute] = routesOf('service');
    expect(userRoute).toBeDefined();
    expect(serviceRoute).toBeDefined();
    const cases: Array<[string, readonly [string, string], string | undefined]> = [
      ['user route, no header', userRoute, undefined],
      ['user route, not bearer', userRoute, 'Basic abc'],
      ['user route, garbage token', userRoute, 'Bearer not-a-jwt'],
      ['user route, wrong secret', userRoute, `Bearer ${await userToken('u1', 'another-secret-0123456789abcdef0123456789')}`],
      ['user route, expired', userRoute, `Bearer ${await userToken('u1', testSecrets.JWT_SECRET, '-1m')}`],
      ['user route, service token', userRoute, `Bearer ${testSecrets.SERVICE_TOKEN}`],
      ['service route, no header', serviceRoute, undefined],
      ['service route, wrong token', serviceRoute, 'Bearer wrong-service-token-0123456789'],
      ['service route, user JWT', serviceRoute, `Bearer ${await userToken('u1')}`],
    ];
    for (const [name, [method, p], authorization] of cases) {
      const url = `${df.baseUrl}${p.replace(/\{\w+\}/g, 'x')}`;
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: method === 'get' ? undefined : '{}',
      });
      const body = await res.text();
      expect([name, res.status]).toEqual([name, 401]);
      expect(JSON.parse(body).error.code).toBe('unauthorized');
      expect(body).not.toMatch(/at \w+ \(|\.ts:\d+/);
    }
  });
});

describe('readyz when Redis is down', () => {
  test('answers 503 naming Redis', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dueflow-redis-'));
    const redis = await startRedisServer(dir);
    const df = await startTestDueflow('api', { REDIS_URL: redis.url });
    try {
      redis.child.kill('SIGKILL');
      await new Promise((r) => redis.child.once('exit', r));
      const res = await fetch(`${df.baseUrl}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as any;
      expect(body.error.code).toBe('not_ready');
      expect(body.error.message).toBe('redis is down');
      expect(body.error.details.redis).toMatch(/^down: /);
      expect(body.error.details.mongodb).toBe('up');
    } finally {
      // Bring Redis back on the same port so the shutdown below is the ordinary one.
      const again = await startRedisServer(dir, redis.port);
      await df.stop();
      again.child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
