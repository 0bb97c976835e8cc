/**
 * Scenario 4: Redis flushed mid-delivery (FLUSHALL on a redis-server of this test's own): every
 * job, job scheduler and rate-limit key is gone. MongoDB is the truth: the runtime puts the job
 * schedulers back every RECONCILE_INTERVAL_MS, and the reconciler re-enqueues every pending or
 * failed record (older than its 10 s settle time) whose job is missing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../scripts/services';
import { ChaosRun, expectDelivered, tempDir } from './scenario';

let run: ChaosRun | undefined;
let redis: { url: string; port: number; child: ChildProcess } | undefined;
let dir: string | undefined;

afterAll(async () => {
  await run?.cleanup();
  if (redis && redis.child.exitCode === null)
    await new Promise((resolve) => {
      redis!.child.once('exit', resolve);
      redis!.child.kill('SIGTERM');
    });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('Redis flushed mid-delivery: the reconciler restores every pending record, all sent', async () => {
  dir = tempDir('redis-flush');
  redis = await startRedisServer(path.join(dir, 'redis'));
  run = await ChaosRun.start({ scenario: '4 Redis FLUSHALL', env: { REDIS_URL: redis.url, RECONCILE_INTERVAL_MS: '2000' } });
  await run.submitAll();
  await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  const admin = new Redis(redis.url);
  try {
    await admin.flushall();
    run.log(`FLUSHALL at ${run.feishu.messages.length} received; in flight ${JSON.stringify(inFlight)}; jobs left ${await run.queue.count()}`);
  } finally {
    admin.disconnect();
  }

  const result = await run.finish('FLUSHALL of Redis (jobs, schedulers, rate-limit keys gone)', inFlight);
  const requeued = run
    .workerLogs()
    .filter((l) => l.msg === 'reconciler repaired notification records')
    .reduce((sum, l) => sum + (l.requeued ?? 0), 0);
  run.log(`the reconciler re-enqueued ${requeued} records`);
  expect(requeued).toBeGreaterThan(0);
  expect(run.runningWorkers()).toHaveLength(2);
  expectDelivered(result);
});
