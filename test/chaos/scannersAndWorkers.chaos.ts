/**
 * Scenario 7: two scanners and three workers at once — each due job fires once, each record is
 * sent once.
 *
 * Five real worker processes (the compiled build) share one database and queue prefix. Every
 * worker-mode process runs the scanner's Job Scheduler, but BullMQ makes one `scan` job per
 * interval, which any one process takes (scanner concurrency 1 per process). With
 * SCAN_INTERVAL_MS 200 and a small SCAN_BATCH_SIZE, a scan over the due burst takes longer than
 * the interval on this store, so the next interval's scan job runs in another process while the
 * first is still claiming. To make two concurrent scanners certain rather than likely, this test
 * process also runs two scanner loops of its own (`scanDueJobs` on two separate contexts, i.e.
 * two Redis and two database connections) from just before the due moment. The processes' scans
 * are counted from their `due jobs scanned` log lines; the test's own from the scan results.
 *
 * Data through the HTTP API of an in-process api-mode dueflow: N users (50), each with a feishu_bot
 * channel (cards) and working hours all day, and T priority-1 tasks (CHAOS_MESSAGES, default 200)
 * with unique titles, all with one urgencyThresholdAt a few seconds after they are created.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { asUser, call } from '../support/api';
import { closeContext, createContext, type AppContext } from '../../src/context';
import { createLogger } from '../../src/logger';
import { scanDueJobs } from '../../src/scheduling/scanner';
import { ChaosRun, RESULTS_FILE, sleep } from './scenario';

const SCAN_INTERVAL_MS = 200;
const SCAN_BATCH_SIZE = 25;
const PROCESSES = 5;

let run: ChaosRun | undefined;
let other: AppContext | undefined;
afterAll(async () => {
  if (other) await closeContext(other).catch(() => undefined);
  await run?.cleanup();
});

test('two scanners and three workers at once: each due job fires once, each record is sent once', async () => {
  const tasksWanted = Number(process.env.CHAOS_MESSAGES ?? 200);
  run = await ChaosRun.start({
    scenario: '7 scanners and workers',
    messages: tasksWanted,
    channelFormat: 'card',
    env: { SCAN_INTERVAL_MS: String(SCAN_INTERVAL_MS), SCAN_BATCH_SIZE: String(SCAN_BATCH_SIZE) },
  });
  const r = run;
  const runId = randomBytes(3).toString('hex');
  const titleOf = (i: number) => `Scan chaos ${runId} t-${i}`;
  const markerRe = new RegExp(`Scan chaos ${runId} t-(\\d+)\\b`);

  // Working hours all day, so a free slot exists whenever the test runs (as in the e2e test).
  await Promise.all(
    r.userIds.map(async (userId) => {
      const res = await call(r.api.baseUrl, 'PUT', '/api/v1/me/settings', {
        auth: await asUser(userId),
        body: { timeZone: 'Asia/Shanghai', workingHours: { start: '00:00', end: '23:59' }, language: 'en' },
      });
      if (res.status !== 200) throw new Error(`settings of ${userId}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    }),
  );

  await Promise.all(Array.from({ length: PROCESSES }, () => r.startWorker()));
  r.log(
    `${PROCESSES} worker processes started (SCAN_INTERVAL_MS ${SCAN_INTERVAL_MS}, SCAN_BATCH_SIZE ${SCAN_BATCH_SIZE}, WORKER_CONCURRENCY ${r.workerConcurrency})`,
  );

  // One threshold for all tasks, a few seconds after the last is expected to be created.
  r.submittedAt = Date.now();
  const thresholdAt = new Date(r.submittedAt + 8000 + tasksWanted * 60);
  const taskIds: string[] = [];
  const auths = await Promise.all(r.userIds.map((u) => asUser(u)));
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < tasksWanted) {
        const i = next++;
        const u = i % r.userIds.length;
        const res = await call(r.api.baseUrl, 'POST', '/api/v1/tasks', {
          auth: auths[u],
          body: {
            title: titleOf(i),
            priority: 1,
            estimatedMinutes: 30,
            deadline: new Date(Date.now() + 20 * 3600_000).toISOString(),
            urgencyThresholdAt: thresholdAt.toISOString(),
          },
        });
        if (res.status !== 201) throw new Error(`task t-${i}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
        taskIds[i] = res.body.id;
      }
    }),
  );
  const createdAt = Date.now();
  r.log(
    `created ${tasksWanted} tasks in ${((createdAt - r.submittedAt) / 1000).toFixed(1)} s; threshold ${thresholdAt.toISOString()} is ${((thresholdAt.getTime() - createdAt) / 1000).toFixed(1)} s after the last`,
  );

  // The test's two scanners: from just before the threshold until scans find nothing more to claim.
  other = await createContext(r.api.config, createLogger('silent'));
  const testScanners = [r.api.ctx, other].map(async (ctx) => {
    const totals = { runs: 0, claimed: 0, enqueued: 0, reclaimed: 0, errors: 0 };
    await sleep(Math.max(0, thresholdAt.getTime() - 200 - Date.now()));
    let idle = 0;
    while (idle < 5 && Date.now() < thresholdAt.getTime() + 120_000) {
      const res = await scanDueJobs(ctx).catch((err) => {
        totals.errors += 1;
        r.log(`test scanner error: ${(err as Error).message}`);
        return undefined;
      });
      totals.runs += 1;
      if (res) {
        totals.claimed += res.claimed;
        totals.enqueued += res.enqueued;
        totals.reclaimed += res.reclaimed;
      }
      idle = Date.now() > thresholdAt.getTime() && res && res.claimed === 0 ? idle + 1 : 0;
      await sleep(50);
    }
    return totals;
  });

  // Markers received: copies per task, and messages naming no task of this run.
  const received = () => {
    const counts = new Map<number, number>();
    let unmatched = 0;
    for (const m of r.feishu.messages) {
      const hit = markerRe.exec(JSON.stringify(m.body));
      if (!hit) {
        unmatched += 1;
        continue;
      }
      counts.set(Number(hit[1]), (counts.get(Number(hit[1])) ?? 0) + 1);
    }
    return { counts, unmatched };
  };
  const dueJobStatuses = async () =>
    Object.fromEntries(
      (
        await r.api.ctx.models.dueJobs.aggregate<{ _id: string; n: number }>([
          { $match: { taskId: { $in: taskIds } } },
          { $group: { _id: '$status', n: { $sum: 1 } } },
        ])
      ).map((x) => [x._id, x.n]),
    ) as Record<string, number>;

  const deadline = Date.now() + 360_000;
  let dueStatuses: Record<string, number> = {};
  let recordStatuses: Record<string, number> = {};
  let lastProgress = Date.now();
  for (;;) {
    await sleep(2000);
    dueStatuses = await dueJobStatuses().catch(() => dueStatuses);
    recordStatuses = await r.statuses().catch(() => recordStatuses);
    const arrived = received().counts.size;
    if (dueStatuses.triggered === tasksWanted && recordStatuses.sent === tasksWanted && arrived === tasksWanted) break;
    if (r.crashed().length) break;
    if (Date.now() > deadline) {
      r.log(
        `timed out: due jobs ${JSON.stringify(dueStatuses)}, records ${JSON.stringify(recordStatuses)}, ${arrived} of ${tasksWanted} tasks' cards received`,
      );
      await r.diagnose();
      break;
    }
    if (Date.now() - lastProgress > 15_000) {
      lastProgress = Date.now();
      r.log(`waiting: due jobs ${JSON.stringify(dueStatuses)}, records ${JSON.stringify(recordStatuses)}, ${arrived} of ${tasksWanted} cards`);
    }
  }
  const seconds = Math.round((Date.now() - r.submittedAt) / 100) / 10;
  const fromThreshold = Math.round((Date.now() - thresholdAt.getTime()) / 100) / 10;
  const scanners = await Promise.all(testScanners);
  await sleep(3000); // a straggling second copy, trigger or record would still count

  // What happened, from the database, the Feishu-compatible server and the processes' logs.
  const { counts, unmatched } = received();
  let duplicates = 0;
  for (const c of counts.values()) duplicates += c - 1;
  const lost = tasksWanted - counts.size;
  const dueJobs = await r.api.ctx.models.dueJobs.find({ taskId: { $in: taskIds } }).lean();
  const triggers = await r.api.ctx.models.triggers.find({ userId: { $in: r.userIds } }).lean();
  const records = await r.Records.find({ userId: { $in: r.userIds } }).lean();
  const triggersPerDueJob = new Map<string, number>();
  for (const t of triggers) triggersPerDueJob.set(String(t.dueJobId), (triggersPerDueJob.get(String(t.dueJobId)) ?? 0) + 1);
  const recordsPerTask = new Map<string, number>();
  for (const rec of records) recordsPerTask.set(rec.target.id, (recordsPerTask.get(rec.target.id) ?? 0) + 1);

  const parsed = (lines: string[]) =>
    lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, any>];
      } catch {
        return [];
      }
    });
  const processScans = r.procs.map((p) =>
    parsed(p.output)
      .filter((l) => l.msg === 'due jobs scanned')
      .reduce((acc, l) => ({ runs: acc.runs + 1, claimed: acc.claimed + (l.claimed ?? 0) }), { runs: 0, claimed: 0 }),
  );
  const fired = r.procs.map((p) => p.output.filter((l) => l.includes('"preview generated"')).length);
  const scannersThatClaimed = processScans.filter((s) => s.claimed > 0).length + scanners.filter((s) => s.claimed > 0).length;
  const claims = processScans.reduce((n, s) => n + s.claimed, 0) + scanners.reduce((n, s) => n + s.claimed, 0);
  const attemptCounts: Record<string, number> = {};
  for (const rec of records) attemptCounts[String(rec.attemptCount)] = (attemptCounts[String(rec.attemptCount)] ?? 0) + 1;

  const fault = `2 scanners + 3 workers (${PROCESSES} worker processes, scan every ${SCAN_INTERVAL_MS} ms, plus 2 scanners in the test)`;
  const line = `7 scanners and workers: messages ${tasksWanted}, fault: ${fault}, lost ${lost}, duplicates ${duplicates}, ${seconds} s (${fromThreshold} s after the threshold)`;
  const detail = {
    dueJobs: dueStatuses,
    records: recordStatuses,
    attemptCounts,
    triggers: triggers.length,
    claims,
    scannersThatClaimed,
    processScans,
    testScans: scanners,
    previewsPerProcess: fired,
    unmatchedMessages: unmatched,
  };
  process.stderr.write(`\nCHAOS ${line}\n      ${JSON.stringify(detail)}\n      job errors: ${JSON.stringify(r.jobErrors())}\n\n`);
  fs.appendFileSync(
    RESULTS_FILE,
    `${JSON.stringify({
      scenario: '7 scanners and workers',
      fault,
      messages: tasksWanted,
      lost,
      duplicates,
      seconds,
      ...detail,
      crashed: r.crashed().length,
      jobErrors: r.jobErrors(),
      finishedAt: new Date().toISOString(),
    })}\n`,
  );

  expect(r.crashed()).toHaveLength(0);
  // Each due job fired once: triggered, with exactly one trigger.
  expect(dueJobs).toHaveLength(tasksWanted);
  expect(
    dueJobs.filter((j) => j.status !== 'triggered').map((j) => ({ taskId: j.taskId, status: j.status, reason: j.reason, lastError: j.lastError })),
  ).toEqual([]);
  expect(triggers).toHaveLength(tasksWanted);
  expect([...triggersPerDueJob.values()].filter((n) => n !== 1)).toEqual([]);
  expect(new Set(dueJobs.map((j) => String(j._id)))).toEqual(new Set(triggersPerDueJob.keys()));
  // One record per task, sent at the first attempt.
  expect(records).toHaveLength(tasksWanted);
  expect([...recordsPerTask.values()].filter((n) => n !== 1)).toEqual([]);
  expect(new Set(recordsPerTask.keys())).toEqual(new Set(taskIds));
  expect(
    records
      .filter((rec) => rec.status !== 'sent' || rec.attemptCount !== 1)
      .map((rec) => ({ id: String(rec._id), status: rec.status, attemptCount: rec.attemptCount })),
  ).toEqual([]);
  // Exactly one card per task reached Feishu, and nothing else.
  expect(lost).toBe(0);
  expect(duplicates).toBe(0);
  expect(unmatched).toBe(0);
  expect(r.feishu.messages.filter((m) => m.body.msg_type !== 'interactive')).toHaveLength(0);
});
