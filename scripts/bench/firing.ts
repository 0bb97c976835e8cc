/**
 * Measurement 2, due-job firing: N due jobs → all triggered and notified (the whole chain: scanner
 * claim → due-job job → trigger → workflow (plan, preview) → notification record → Feishu).
 * Jobs per second, and lateness: from a job's triggerAt to the Feishu server accepting its message.
 *
 * Each due job belongs to an important and urgent task (priority 1, deadline in 20 h) of one of
 * N/5 users, each with a signed bot channel on its own webhook (so Feishu's 5/s per webhook is
 * never what waits). Burst: every triggerAt is the same moment T. Paced: triggerAt_i = T + i/rate.
 * T lies one scan interval after the seeding (estimated from the store's insert rate), and the
 * worker (one real process, defaults, SCAN_INTERVAL_MS as the bench says) is running before T.
 * The scanner claims what falls due before its next run and BullMQ fires it at triggerAt, so a job
 * written at least one interval ahead (as thresholds are) is claimed in time; one written later
 * would wait for the next scan, which is not what this measures.
 */
import path from 'node:path';
import { Types } from 'mongoose';
import type { BenchEnv, ProcStats, Store } from './common';
import {
  clearSpace,
  closeContext,
  log,
  percentile,
  probeSnapshot,
  producerContext,
  readJson,
  round,
  runSpace,
  sleep,
  startDueflowWorker,
  waitUntil,
  WORKER_SETTLE_MS,
} from './common';
import { seedBotUsers } from './delivery';
import { diffProbe, summarizeProbe, type ProbeSummary } from './profile';
import type { ProbeReport } from './probe';

export interface Lateness {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Where a paced run's tail came from: its slowest second, and the background jobs that ran in it. */
export interface LatenessTail {
  /** p99 (s) of the jobs due after the first `warmupS` (a fresh worker's first second or two: cold caches, connections, code) */
  warmP99: number;
  warmupS: number;
  /** The jobs due in the first `warmupS`: p50 / max (s) */
  cold: { n: number; p50: number; max: number };
  /** After the first `warmupS`, the second (from the first triggerAt) whose jobs were latest at p50, and their p50 / max (s) */
  worst: { fromS: number; n: number; p50: number; max: number };
  /** The scans and maintenance jobs that ran during it: start from the first triggerAt (s), duration (s) */
  during: Array<{ job: string; atS: number; tookS: number }>;
}

/** Groups jobs by the second they were due in and names the slowest one, with the background jobs that overlapped it. */
export function latenessTail(a: {
  due: number[];
  lateS: number[];
  jobs: Array<{ job: string; start: number; end: number }>;
  warmupS: number;
}): LatenessTail | undefined {
  if (!a.due.length) return undefined;
  const t0 = Math.min(...a.due);
  const bySecond = new Map<number, number[]>();
  a.due.forEach((t, i) => {
    if (Number.isNaN(a.lateS[i])) return;
    const k = Math.floor((t - t0) / 1000);
    if (!bySecond.has(k)) bySecond.set(k, []);
    bySecond.get(k)!.push(a.lateS[i]);
  });
  let worst: LatenessTail['worst'] | undefined;
  const cold: number[] = [];
  const warm: number[] = [];
  for (const [k, v] of bySecond) {
    if (k < a.warmupS) {
      cold.push(...v);
      continue;
    }
    warm.push(...v);
    const sorted = [...v].sort((x, y) => x - y);
    const p50 = percentile(sorted, 50);
    if (!worst || p50 > worst.p50) worst = { fromS: k, n: v.length, p50: round(p50, 3), max: round(sorted[sorted.length - 1], 3) };
  }
  if (!worst) return undefined;
  const from = t0 + worst.fromS * 1000;
  // A job that ended before the second began but within its jobs' lateness still held them up.
  const to = from + 1000 + worst.max * 1000;
  const during = a.jobs
    .filter((j) => j.start < to && j.end > from - 500)
    .sort((x, y) => x.start - y.start)
    .map((j) => ({ job: j.job, atS: round((j.start - t0) / 1000, 2), tookS: round((j.end - j.start) / 1000, 2) }));
  warm.sort((x, y) => x - y);
  cold.sort((x, y) => x - y);
  return {
    warmP99: round(percentile(warm, 99), 3),
    warmupS: a.warmupS,
    cold: { n: cold.length, p50: round(percentile(cold, 50), 3), max: round(cold[cold.length - 1] ?? NaN, 3) },
    worst,
    during,
  };
}

export interface FiringRun {
  store: string;
  kind: 'burst' | 'paced';
  n: number;
  users: number;
  /** paced: arrivals per second */
  rate?: number;
  /** From the first triggerAt to the last message accepted */
  seconds?: number;
  jobsPerSecond?: number;
  /** seconds */
  lateness?: Lateness;
  /** seconds, from triggerAt to its trigger's creation: the scanner's and the due-job worker's part of the lateness */
  firedLateness?: Lateness;
  /** paced runs: where the tail came from */
  tail?: LatenessTail;
  proc?: ProcStats;
  triggered?: number;
  sent?: number;
  duplicates?: number;
  /** The seeding ended this long after T (lateness then includes it) */
  seedOverrunS?: number;
  seedSeconds?: number;
  /** Worker probe, per job: from the worker ready and idle (before the seeding) to every job triggered and sent and the outboxes relayed (window: true), else the whole process */
  probe?: ProbeSummary;
  probeWindow?: boolean;
  /** Worker CPU (/proc) from the same start to the last message accepted, per job (ms) */
  cpuMsPerJob?: number;
  cpuProfile?: string;
  /** Worker warnings and errors by message */
  warnings?: Record<string, number>;
  /** Extra worker settings of this run (e.g. WORKER_CONCURRENCY) or its purpose (cpu-prof) */
  variant?: string;
  error?: string;
}

const TASK_RE = /bench-task-(\d+)/;

/** Inserts `docs` in chunks through the driver (no mongoose validation: the bench writes what dueflow would). */
async function insertChunks(coll: { insertMany(docs: object[], opts?: object): Promise<unknown> }, docs: object[], chunk = 2000): Promise<void> {
  for (let i = 0; i < docs.length; i += chunk) await coll.insertMany(docs.slice(i, i + chunk), { ordered: false });
}

/** Documents per second this store inserts (a small timed insert). */
async function insertRate(ctx: Awaited<ReturnType<typeof producerContext>>): Promise<number> {
  const coll = ctx.mongo.collection('bench_calibration');
  const docs = Array.from({ length: 2000 }, (_, i) => ({
    userId: `u${i}`,
    title: `calibration ${i}`,
    priority: 1,
    status: 'todo',
    deadline: new Date(),
    urgencyThresholdAt: new Date(),
    createdAt: new Date(),
    updatedAt: new Date(),
  }));
  const t0 = Date.now();
  await insertChunks(coll, docs);
  const rate = 2000 / ((Date.now() - t0) / 1000);
  await coll.drop().catch(() => undefined);
  return rate;
}

export async function benchFiring(
  bench: BenchEnv,
  store: Store,
  n: number,
  mode: { kind: 'burst' } | { kind: 'paced'; rate: number },
  variant?: string,
): Promise<FiringRun> {
  const users = Math.max(1, Math.ceil(n / 5));
  const name = `firing_${mode.kind}_${n}${variant ? `_${variant.replace(/[^A-Za-z0-9]+/g, '_')}` : ''}`;
  const run: FiringRun = {
    store: store.label,
    kind: mode.kind,
    n,
    users,
    ...(mode.kind === 'paced' ? { rate: mode.rate } : {}),
    ...(variant ? { variant } : {}),
  };
  const space = runSpace(bench, store, name);
  await clearSpace(bench, store, space);
  const ctx = await producerContext(space);
  const tokenPrefix = `fire${mode.kind[0]}${n}${variant ? `v${variant.length}${Date.now() % 100000}` : ''}`;
  const probeOut = bench.probe ? path.join(bench.outDir, `probe-${name}-${store.kind}.json`) : undefined;
  const cpuProfDir = bench.cpuProf ? path.join(bench.outDir, `cpuprof-${name}-${store.kind}`) : undefined;
  let worker: Awaited<ReturnType<typeof startDueflowWorker>> | undefined;
  try {
    const what = mode.kind === 'burst' ? `${n} due jobs at once` : `${n} due jobs at ${mode.rate}/s`;
    log(`firing [${store.label}]: ${what}; ${users} users; starting a worker`);
    await seedBotUsers(ctx, bench, tokenPrefix, users);
    worker = await startDueflowWorker(space, { probeOut, cpuProfDir });
    const w = worker;
    // Ready and idle: what it does once at start is not the jobs'.
    await sleep(WORKER_SETTLE_MS);
    const before = { cpu: w.cpuNow(), probe: await probeSnapshot(w, probeOut) };

    // T: after the seeding of 2n documents, with room to spare, and one scan interval more (see above).
    const rate = await insertRate(ctx);
    const leadMs = Math.max(3000, Math.ceil(((2 * n) / rate) * 1000 * 1.6) + 2000) + bench.scanIntervalMs;
    const T = Date.now() + leadMs;
    const triggerAt = new Float64Array(n);
    for (let i = 0; i < n; i++) triggerAt[i] = mode.kind === 'burst' ? T : T + Math.floor((i * 1000) / mode.rate);
    const deadline = new Date(T + 20 * 3_600_000);
    const taskIds = Array.from({ length: n }, () => new Types.ObjectId());
    const seedStart = Date.now();
    log(
      `firing [${store.label}]: seeding ${n} tasks and due jobs (store inserts ~${Math.round(rate)} docs/s); first triggerAt in ${(leadMs / 1000).toFixed(1)} s`,
    );
    const now = new Date();
    await insertChunks(
      ctx.models.tasks.collection,
      taskIds.map((_id, i) => ({
        _id,
        userId: `bench-user-${i % users}`,
        title: `bench-task-${i}`,
        priority: 1,
        status: 'todo',
        deadline,
        urgencyThresholdAt: new Date(triggerAt[i]),
        estimatedMinutes: 30,
        createdAt: now,
        updatedAt: now,
        __v: 0,
      })),
    );
    await insertChunks(
      ctx.models.dueJobs.collection,
      taskIds.map((taskId, i) => ({
        userId: `bench-user-${i % users}`,
        kind: 'task_urgency',
        key: `task:${String(taskId)}`,
        taskId: String(taskId),
        triggerAt: new Date(triggerAt[i]),
        thresholdAt: new Date(triggerAt[i]),
        status: 'pending',
        attempts: 0,
        createdAt: now,
        updatedAt: now,
        __v: 0,
      })),
    );
    const seedEnd = Date.now();
    run.seedSeconds = round((seedEnd - seedStart) / 1000, 1);
    if (seedEnd > T) {
      run.seedOverrunS = round((seedEnd - T) / 1000, 2);
      log(`firing [${store.label}]: seeding ended ${run.seedOverrunS} s after T (counted in the lateness)`);
    } else if (seedEnd > T - bench.scanIntervalMs) {
      log(`firing [${store.label}]: seeding ended less than one scan interval before T: the last jobs may wait for a scan after T`);
    }

    const lateness = new Float64Array(n).fill(NaN);
    let duplicates = 0;
    let unique = 0;
    let cpuAtLast = NaN;
    bench.feishu.expect(tokenPrefix, (m) => {
      const i = Number(TASK_RE.exec(JSON.stringify(m.body))?.[1]);
      if (!Number.isInteger(i) || i < 0 || i >= n) return;
      if (!Number.isNaN(lateness[i])) duplicates += 1;
      else {
        lateness[i] = (m.receivedAt - triggerAt[i]) / 1000;
        if (++unique === n) cpuAtLast = w.cpuNow();
      }
    });
    if (Date.now() < T) await sleep(T - Date.now());
    log(`firing [${store.label}]: T reached; waiting for ${n} messages`);
    await waitUntil('fired and notified', () => bench.feishu.count(tokenPrefix), n);
    const seconds = (bench.feishu.lastReceivedAt(tokenPrefix) - T) / 1000;

    let triggered = 0;
    let sent = 0;
    for (let i = 0; i < 120; i++) {
      triggered = await ctx.models.dueJobs.countDocuments({ status: 'triggered' });
      sent = await ctx.models.notificationRecords.countDocuments({ status: 'sent' });
      if (triggered >= n && sent >= n) break;
      await sleep(500);
    }
    if (!Number.isFinite(cpuAtLast)) cpuAtLast = w.cpuNow();
    // The window ends once the records' outboxes (notification.sent) are relayed too: every job's commands are in it.
    for (let i = 0; i < 240; i++) {
      if ((await ctx.models.notificationRecords.countDocuments({ outboxCount: { $gt: 0 } })) === 0) break;
      await sleep(500);
    }
    const after = await probeSnapshot(w, probeOut);
    run.warnings = w.warningSummary();
    const proc = await w.stop();
    worker = undefined;
    const sorted = Array.from(lateness)
      .filter((v) => !Number.isNaN(v))
      .sort((a, b) => a - b);
    // The trigger's creation: where the scanner's and the due-job worker's part ends (the workflow and delivery follow).
    const indexOf = new Map(taskIds.map((id, i) => [String(id), i]));
    const triggers = await ctx.models.triggers
      .find({ source: 'worker_due_job' }, { 'target.id': 1, createdAt: 1 })
      .lean<Array<{ target: { id: string }; createdAt: Date }>>();
    const fired = triggers
      .flatMap((t) => {
        const i = indexOf.get(t.target.id);
        return i === undefined ? [] : [(t.createdAt.getTime() - triggerAt[i]) / 1000];
      })
      .sort((a, b) => a - b);
    const stats = (v: number[]): Lateness => ({
      p50: round(percentile(v, 50), 3),
      p95: round(percentile(v, 95), 3),
      p99: round(percentile(v, 99), 3),
      max: round(v[v.length - 1], 3),
    });
    const background =
      mode.kind === 'paced'
        ? [
            ...(await ctx.queues.scanner.getJobs(['completed', 'failed'], 0, 500)),
            ...(await ctx.queues.maintenance.getJobs(['completed', 'failed'], 0, 500)),
          ].flatMap((j) => (j.processedOn && j.finishedOn ? [{ job: j.name, start: j.processedOn, end: j.finishedOn }] : []))
        : [];
    const whole = probeOut ? readJson<ProbeReport>(probeOut) : undefined;
    const windowProbe = after && before.probe ? diffProbe(after, before.probe) : undefined;
    Object.assign(run, {
      seconds: round(seconds, 2),
      jobsPerSecond: round(n / seconds, 1),
      lateness: {
        p50: round(percentile(sorted, 50), 2),
        p95: round(percentile(sorted, 95), 2),
        p99: round(percentile(sorted, 99), 2),
        max: round(sorted[sorted.length - 1], 2),
      },
      firedLateness: fired.length ? stats(fired) : undefined,
      tail: mode.kind === 'paced' ? latenessTail({ due: Array.from(triggerAt), lateS: Array.from(lateness), jobs: background, warmupS: 2 }) : undefined,
      proc,
      triggered,
      sent,
      duplicates,
      probe: windowProbe ? summarizeProbe(windowProbe, n) : whole ? summarizeProbe(whole, n) : undefined,
      probeWindow: windowProbe ? true : undefined,
      cpuMsPerJob: round(((cpuAtLast - before.cpu) * 1000) / n, 2),
      cpuProfile: cpuProfDir,
    });
    const firedNote = run.firedLateness ? ` (trigger created: p50 ${run.firedLateness.p50} s, p99 ${run.firedLateness.p99} s)` : '';
    log(
      `firing [${store.label}]: ${n} in ${run.seconds} s = ${run.jobsPerSecond}/s; lateness p50 ${run.lateness!.p50} s, p99 ${run.lateness!.p99} s, max ${run.lateness!.max} s${firedNote}; peak RSS ${proc.peakRssMiB} MiB`,
    );
    return run;
  } catch (err) {
    run.error = (err as Error).message.split('\n')[0];
    if (worker) {
      run.proc = worker.stats();
      run.warnings = worker.warningSummary();
    }
    log(`firing [${store.label}]: ${run.error}`);
    return run;
  } finally {
    if (worker) await worker.stop();
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}
