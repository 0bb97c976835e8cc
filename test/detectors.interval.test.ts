/**
 * DETECTOR_INTERVAL_MS: the detectors run after a scan only when the interval has passed since
 * their last run by any worker process (a Redis key), so their cost is off the due-job path.
 * Real Redis and database; the scanner processor is the real one (processors/scanner.ts), started
 * here on an api-mode dueflow so no Job Scheduler scan runs besides the test's own.
 */
import type { Worker } from 'bullmq';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { testConfig, waitFor } from './support/env';
import { detectorsRunKey, runDetectorsIfDue } from '../src/detectors';
import type { Detector } from '../src/detectors/types';
import { createScannerWorker } from '../processors/scanner';
import { queueNames } from '../queues/names';
import { scanJobName } from '../queues/schedulers';

let df: TestDueflow;
const workers: Worker[] = [];

beforeAll(async () => {
  df = await startTestDueflow('api', { DETECTOR_INTERVAL_MS: '60000' });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await df.stop();
});

const MIN = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = () => detectorsRunKey(df.config);

/** A detector that only counts its runs. */
function counting(): Detector & { runs: number } {
  const d = {
    name: 'counting',
    runs: 0,
    detect: async () => {
      d.runs++;
      return { fired: 0 };
    },
  };
  return d;
}

/** A planned block of a new user that ended 20 min ago: the missed-block detector raises it once it runs. */
async function missedBlock(title: string) {
  const userId = `u-${title.replace(/\W+/g, '-')}-${Date.now()}`;
  const task = await df.ctx.models.tasks.create({ userId, title, priority: 1, estimatedMinutes: 30, deadline: new Date(Date.now() + 20 * 3600_000) });
  const end = new Date(Date.now() - 20 * MIN);
  return df.ctx.models.scheduleBlocks.create({ userId, taskId: String(task._id), title, start: new Date(end.getTime() - 45 * MIN), end, status: 'planned' });
}
const triggersOf = (blockId: unknown) => df.ctx.models.triggers.countDocuments({ type: 'missed_block', 'target.id': String(blockId) });

async function scan() {
  const job = await df.ctx.queues[queueNames.scanner].add(scanJobName, { v: 1 });
  const done = await waitFor(
    async () => {
      const j = await df.ctx.queues[queueNames.scanner].getJob(job.id!);
      return j?.finishedOn ? j : undefined;
    },
    20_000,
    'the scan job',
  );
  expect(done.failedReason).toBeUndefined();
  return done.returnvalue;
}

test('the default is 30 s; 0 is allowed (after every scan), a negative value is not', () => {
  expect(testConfig({ DETECTOR_INTERVAL_MS: '' }).DETECTOR_INTERVAL_MS).toBe(30_000);
  expect(testConfig({ DETECTOR_INTERVAL_MS: '0' }).DETECTOR_INTERVAL_MS).toBe(0);
  expect(() => testConfig({ DETECTOR_INTERVAL_MS: '-1' })).toThrow(/DETECTOR_INTERVAL_MS/);
});

test('two scans inside the interval, by two scanner workers: the detectors run once; the second scan says they were skipped', async () => {
  await df.ctx.redis.del(key());
  workers.push(createScannerWorker(df.ctx), createScannerWorker(df.ctx));
  const first = await missedBlock('Seen by the first scan');
  const r1 = await scan();
  expect(r1).toMatchObject({ claimed: expect.any(Number), detectors: { fired: { missed_block: expect.any(Number) }, failed: [] } });
  expect(r1.detectors.fired.missed_block).toBeGreaterThanOrEqual(1);
  expect(await triggersOf(first._id)).toBe(1);
  const ttl = await df.ctx.redis.pttl(key());
  expect(ttl).toBeGreaterThan(50_000);
  expect(ttl).toBeLessThanOrEqual(60_000);

  // A block missed after the first run waits for the next one: the scan itself still runs.
  const second = await missedBlock('Missed after the first scan');
  const r2 = await scan();
  expect(r2).toMatchObject({ claimed: expect.any(Number), detectors: { skipped: 'interval' } });
  expect(r2.detectors.fired).toBeUndefined();
  expect(await triggersOf(second._id)).toBe(0);

  // The interval over (the key expired), the next scan runs them and raises it.
  await df.ctx.redis.del(key());
  const r3 = await scan();
  expect(r3.detectors.fired.missed_block).toBeGreaterThanOrEqual(1);
  expect(await triggersOf(second._id)).toBe(1);
});

test('many concurrent callers (worker processes) inside one interval: one runs them; after it, one again', async () => {
  const ctx = { ...df.ctx, config: { ...df.config, DETECTOR_INTERVAL_MS: 400 } };
  await df.ctx.redis.del(key());
  const d = counting();
  const results = await Promise.all(Array.from({ length: 6 }, () => runDetectorsIfDue(ctx, new Date(), [d])));
  expect(d.runs).toBe(1);
  expect(results.filter((r) => 'skipped' in r)).toHaveLength(5);
  expect(results.find((r) => 'fired' in r)).toEqual({ fired: { counting: 0 }, failed: [] });
  expect(await runDetectorsIfDue(ctx, new Date(), [d])).toEqual({ skipped: 'interval' });
  expect(d.runs).toBe(1);

  await sleep(450);
  await Promise.all(Array.from({ length: 3 }, () => runDetectorsIfDue(ctx, new Date(), [d])));
  expect(d.runs).toBe(2);
});

test('DETECTOR_INTERVAL_MS 0: after every scan, and no key is written', async () => {
  const ctx = { ...df.ctx, config: { ...df.config, DETECTOR_INTERVAL_MS: 0 } };
  await df.ctx.redis.del(key());
  const d = counting();
  for (let i = 0; i < 3; i++) await runDetectorsIfDue(ctx, new Date(), [d]);
  expect(d.runs).toBe(3);
  expect(await df.ctx.redis.exists(key())).toBe(0);
});
