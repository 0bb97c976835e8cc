/**
 * Scenario 3: Redis restarted mid-delivery. A redis-server of this test's own (AOF on, fsync
 * every second) is stopped with SIGTERM, which flushes the AOF, and started again on the same
 * port and data directory: the queues come back from the AOF and the workers reconnect.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startRedisServer } from '../../scripts/services';
import { waitFor } from '../support/env';
import { ChaosRun, expectDelivered, sleep, tempDir } from './scenario';

let run: ChaosRun | undefined;
let redis: { url: string; port: number; child: ChildProcess } | undefined;
let dir: string | undefined;

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

afterAll(async () => {
  await run?.cleanup();
  if (redis) await stop(redis.child);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('Redis restarted (AOF) mid-delivery: all sent, processes stay up', async () => {
  dir = tempDir('redis-restart');
  const dataDir = path.join(dir, 'redis');
  redis = await startRedisServer(dataDir);
  run = await ChaosRun.start({ scenario: '3 Redis restart', env: { REDIS_URL: redis.url } });
  await run.submitAll();
  await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  const before = await run.queue.getJobCounts();
  const stoppedAt = Date.now();
  await stop(redis.child);
  run.log(`Redis stopped at ${run.feishu.messages.length} received; in flight ${JSON.stringify(inFlight)}; jobs before ${JSON.stringify(before)}`);
  await sleep(2000);
  redis = await startRedisServer(dataDir, redis.port);
  const downSeconds = (Date.now() - stoppedAt) / 1000;
  // The API's producer connection fails fast while it reconnects: ask until it answers.
  const after = await waitFor(() => run!.queue.getJobCounts().catch(() => undefined), 15_000, 'the queue to answer again');
  run.log(`Redis back after ${downSeconds.toFixed(1)} s; jobs after restart ${JSON.stringify(after)}`);
  // The AOF brought the queue back: every job that existed before is still there.
  expect(Object.values(after).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(Object.values(before).reduce((a, b) => a + b, 0));

  const result = await run.finish(`Redis stopped (SIGTERM) and restarted on the same port and AOF after ${downSeconds.toFixed(1)} s`, inFlight);
  expect(run.runningWorkers()).toHaveLength(2);
  expectDelivered(result);
});
