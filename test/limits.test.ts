/** Request limits: body size, per-user and per-token rates (Redis-backed), admin login attempts. */
import { asAdmin, asService, asUser, call, notificationBody } from './support/api';
import { testSecrets } from './support/env';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';

let df: TestDueflow;
beforeAll(async () => {
  df = await startTestDueflow('api', { USER_RATE_LIMIT_PER_MINUTE: '5', SERVICE_RATE_LIMIT_PER_MINUTE: '3', ADMIN_LOGIN_ATTEMPTS: '3', BODY_LIMIT: '2kb' });
});
afterAll(async () => {
  await df.stop();
});

test('a user past the per-minute limit gets 429 with Retry-After; another user is not affected', async () => {
  const alice = await asUser('alice');
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await call(df.baseUrl, 'GET', '/api/v1/notification/records', { auth: alice })).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  const limited = await call(df.baseUrl, 'GET', '/api/v1/notification/records', { auth: alice });
  expect(limited.body.error.code).toBe('rate_limited');
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await call(df.baseUrl, 'GET', '/api/v1/notification/records', { auth: await asUser('bob') })).status).toBe(200);
});

test('a service token past its limit gets 429', async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++)
    statuses.push((await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody('u-limit') })).status);
  expect(statuses).toEqual([202, 202, 202, 429]);
});

test('a body over BODY_LIMIT is a 413 in the error shape', async () => {
  const big = await call(df.baseUrl, 'PUT', '/api/v1/me/settings', {
    auth: await asUser('carol'),
    raw: JSON.stringify({ timeZone: 'UTC', pad: 'x'.repeat(5000) }),
  });
  expect(big.status).toBe(413);
  expect(big.body.error.code).toBe('payload_too_large');
});

test('Bull Board locks an address out after too many failed logins, even for the right password', async () => {
  const wrong = `Basic ${Buffer.from(`${testSecrets.ADMIN_USER}:wrong-password`).toString('base64')}`;
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await call(df.baseUrl, 'GET', '/admin/queues/api/queues', { auth: wrong })).status);
  expect(statuses).toEqual([401, 401, 401, 429]);
  // Locked out: guessing right now does not get in either, so guessing cannot go on.
  const locked = await call(df.baseUrl, 'GET', '/admin/queues/api/queues', { auth: asAdmin() });
  expect(locked.status).toBe(429);
  expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
});
