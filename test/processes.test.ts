/** Real processes, as dynos run them: modes and graceful shutdown. */
import net from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { freePort } from '../scripts/services';
import { deliveryJobId } from '../src/notifications/schemas';
import { asService, asUser, call, notificationBody } from './support/api';
import { testEnv, waitFor } from './support/env';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import type { DueflowProcess } from './support/processes';
import { spawnDueflow } from './support/processes';

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

let feishu: FeishuServer;
let env: Record<string, string>;
let api: TestDueflow; // in-process API on the same database and queues as the processes
let redis: Redis;
let queue: Queue;
const procs: DueflowProcess[] = [];

beforeAll(async () => {
  feishu = await startFeishuServer();
  env = testEnv({ LOG_LEVEL: 'info', FEISHU_TIMEOUT_MS: '10000' });
  api = await startTestDueflow('api', { MONGODB_DB: env.MONGODB_DB, QUEUE_PREFIX: env.QUEUE_PREFIX, FEISHU_TIMEOUT_MS: '10000' });
  redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
  queue = new Queue('notifications', { connection: redis, prefix: env.QUEUE_PREFIX });
});
afterEach(async () => {
  for (const p of procs.splice(0))
    if (p.child.exitCode === null) {
      p.kill('SIGKILL');
      await p.waitForExit();
    }
});
afterAll(async () => {
  await queue.close();
  redis.disconnect();
  await api.stop();
  await feishu.close();
});

function start(mode: string, extra: Record<string, string> = {}) {
  const p = spawnDueflow({ ...env, DUEFLOW_MODE: mode, ...extra });
  procs.push(p);
  return p;
}

test('worker mode runs the processors and answers no HTTP', async () => {
  const port = await freePort();
  const worker = start('worker', { PORT: String(port) });
  const started = await worker.waitForLog('dueflow started');
  expect(started.mode).toBe('worker');
  expect(started.port).toBeUndefined();
  expect(await refused(port)).toBe(true);
  expect((await queue.getWorkers()).length).toBeGreaterThan(0);
});

test('api mode serves HTTP and runs no processor', async () => {
  const port = await freePort();
  const web = start('api', { PORT: String(port) });
  await web.waitForLog('dueflow started');
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  expect(ready.status).toBe(200);
  expect(await queue.getWorkers()).toHaveLength(0);
  // A notification requested through this process stays queued: nothing here processes it.
  const res = await call(`http://127.0.0.1:${port}`, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody('u-api-only') });
  expect(res.status).toBe(202);
  // Not urgent: it waits among the prioritized (bulk) jobs.
  expect(await (await queue.getJob(deliveryJobId(res.body.id)))!.getState()).toBe('prioritized');
  await queue.obliterate({ force: true });
});

test('SIGTERM during an active job: exits 0 within 25 s and the job completes', async () => {
  const userId = 'u-sigterm';
  const token = 'botsigterm0123456789';
  feishu.registerBot(token);
  await call(api.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth: await asUser(userId),
    body: { enabled: true, webhookUrl: feishu.botUrl(token) },
  });
  const worker = start('worker');
  await worker.waitForLog('dueflow started');

  feishu.stallNext(1, 3000); // Feishu takes 3 s to answer: the job is active when SIGTERM comes
  const { body } = await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  await waitFor(() => feishu.requests.some((r) => r.token === token), 10_000, 'the request to reach Feishu');

  const signalled = Date.now();
  worker.kill('SIGTERM');
  const exit = await worker.waitForExit(25_000);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - signalled).toBeLessThan(25_000);
  const record = await api.ctx.models.notificationRecords.findById(body.id).lean();
  expect(record!.status).toBe('sent');
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
  expect(await (await queue.getJob(deliveryJobId(body.id)))!.getState()).toBe('completed');
});

test('SIGTERM when a job outlasts SHUTDOWN_TIMEOUT_MS: exits 0 at the timeout and leaves the job to the stall check', async () => {
  const userId = 'u-sigterm-slow';
  const token = 'botsigtermslow0123456';
  feishu.registerBot(token);
  await call(api.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth: await asUser(userId),
    body: { enabled: true, webhookUrl: feishu.botUrl(token) },
  });
  const worker = start('worker', { SHUTDOWN_TIMEOUT_MS: '1000' });
  await worker.waitForLog('dueflow started');

  feishu.stallNext(1, 8000); // Feishu answers after 8 s, long after the 1 s the worker may wait
  const { body } = await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  await waitFor(() => feishu.requests.some((r) => r.token === token), 10_000, 'the request to reach Feishu');

  const signalled = Date.now();
  worker.kill('SIGTERM');
  const exit = await worker.waitForExit(25_000);
  const tookMs = Date.now() - signalled;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(tookMs).toBeGreaterThanOrEqual(1000);
  expect(tookMs).toBeLessThan(4000); // the timeout, not the last-resort exit (timeout + 4 s, code 1)
  const gaveUp = await worker.waitForLog(/did not finish in time/, 1000);
  expect(gaveUp.workers).toEqual(['notifications']);
  // Not failed, not completed: still active under a lock that will expire, for another worker to take.
  expect(await (await queue.getJob(deliveryJobId(body.id)))!.getState()).toBe('active');
  expect((await api.ctx.models.notificationRecords.findById(body.id).lean())!.status).toBe('sending');
});

test('a missing or bad variable stops the process at start, naming it', async () => {
  const bad = start('api', { PORT: 'eighty', REDIS_URL: 'http://nope' });
  const exit = await bad.waitForExit(10_000);
  expect(exit.code).toBe(1);
  const out = bad.output.join('\n');
  expect(out).toContain('PORT:');
  expect(out).toContain('REDIS_URL: must be a redis:// or rediss:// URL');
  const prod = start('api', { NODE_ENV: 'production', JWT_SECRET: '', SERVICE_TOKEN: '', SECRETS_KEY: '', ADMIN_PASSWORD: '' });
  expect((await prod.waitForExit(10_000)).code).toBe(1);
  expect(prod.output.join('\n')).toContain('JWT_SECRET: required in production');
});
