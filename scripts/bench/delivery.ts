/**
 * Measurement 1, delivery throughput: N notifications requested → all `sent`, end to end, beside a
 * raw BullMQ baseline posting the same bodies to the same server; and the store's bound: the
 * record writes of one delivery alone, without Redis or HTTP.
 *
 * dueflow: U users, each with a signed feishu_bot channel (card) on its own webhook of the
 * Feishu-compatible server. The bench process requests the N notifications with
 * requestNotification (what dueflow's workflows and POST /api/v1/notifications call), 16 at a time,
 * while one real worker process (`node dist/processors/main.js`, worker mode, defaults) delivers them.
 * Time: from the first request to the Feishu server accepting the last message.
 */
import type { Types } from 'mongoose';
import path from 'node:path';
import { buildFeishuBotBody } from '../../src/providers/feishuBot';
import { maskWebhookUrl } from '../../src/providers/mask';
import type { ProviderOutcome } from '../../src/providers/types';
import { requestNotification } from '../../src/notifications/request';
import * as t from '../../src/notifications/transitions';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { BenchEnv, BenchProcess, ProcStats, RunSpace, Store } from './common';
import {
  clearSpace,
  closeContext,
  commandCounter,
  lanes,
  log,
  probeSnapshot,
  producerContext,
  readJson,
  root,
  round,
  runSpace,
  sleep,
  spawnNode,
  startDueflowWorker,
  waitUntil,
  WORKER_SETTLE_MS,
} from './common';
import { diffProbe, summarizeProbe, type ProbeSummary } from './profile';
import type { ProbeReport } from './probe';
import type { AppContext } from '../../src/context';

export interface DeliveryResult {
  store: string;
  n: number;
  users: number;
  concurrency: number;
  dueflow?: DueflowDelivery;
  /** Extra worker settings of this run (e.g. WORKER_CONCURRENCY, STORE_GUARDED_UPDATES) or its purpose (cpu-prof, events) */
  variant?: string;
  baseline?: { seconds: number; perSecond: number; proc: ProcStats; cpu?: CpuWindow; redisPerJob?: number };
  ratio?: number;
  /** The store's ceiling: the record writes of one delivery from the bench process, no Redis, no HTTP */
  writesAlone?: {
    n: number;
    guardedPerSecond: number;
    requestPerSecond: number;
    /** This process's CPU per message for the worker's two writes alone (the guarded claim and `sent`), ms */
    workerWritesCpuMs?: number;
    busyRetries?: number;
  };
  error?: string;
}

/** A worker's CPU (utime + stime from /proc) from ready and idle, before the first request, to the last message accepted. */
export interface CpuWindow {
  seconds: number;
  msPerMessage: number;
  /** The same worker idle (the scan and other timers; no message), before the first request: ms of CPU per second */
  idleMsPerSecond?: number;
}

export interface DueflowDelivery {
  seconds: number;
  perSecond: number;
  requestSeconds: number;
  proc: ProcStats;
  sent: number;
  refused: number;
  duplicates: number;
  /** Worker probe, per message: from before the first request to all records sent and their outboxes relayed (window: true), else the whole process */
  probe?: ProbeSummary;
  probeWindow?: boolean;
  /** Seconds of that window */
  windowSeconds?: number;
  /** The worker idle, before the first request: MongoDB and Redis commands per second */
  idle?: { mongoPerSecond: number; redisPerSecond: number };
  cpu?: CpuWindow;
  /** MongoDB commands of the requests (in the bench process, command monitoring), per message */
  requests?: { perMessage: number; byCommand: Record<string, number> };
  cpuProfile?: string;
  warnings?: Record<string, number>;
}

/** What a run may add around the delivery (the events step: an endpoint, events awaited, previews confirmed). */
export interface DeliveryHooks {
  /** After the users are seeded, before the worker starts */
  beforeWorker?: (ctx: AppContext, space: RunSpace) => Promise<void>;
  /** After every record is sent, before the run's last probe snapshot (what it waits for counts in the window) */
  afterSent?: (ctx: AppContext, t0: number) => Promise<void>;
  /** After the last snapshot, the worker still running (what it does is not in the window) */
  beforeStop?: (ctx: AppContext, space: RunSpace) => Promise<void>;
}

const REQUEST_CONCURRENCY = 16;

export function benchMessage(i: number) {
  return {
    title: `Bench notification ${i}`,
    summary: `Task "quarterly report ${i}" is due today at 18:00 and is not in your schedule yet. Open dueflow to plan it.`,
    actionText: 'Open dueflow',
    actionUrl: `https://dueflow.example.com/app/notifications/${i}`,
  };
}

/** U users with a signed bot channel each, registered on the Feishu server; returns each user's webhook URL. */
export async function seedBotUsers(ctx: AppContext, bench: BenchEnv, tokenPrefix: string, users: number): Promise<string[]> {
  const urls: string[] = [];
  const docs: Record<string, unknown>[] = [];
  for (let u = 0; u < users; u++) {
    const token = `${tokenPrefix}~${u}x${Math.random().toString(36).slice(2, 10)}`;
    const secret = `bench-secret-${u}-${Math.random().toString(36).slice(2)}`;
    bench.feishu.server.registerBot(token, { secret });
    const url = bench.feishu.server.botUrl(token);
    urls.push(url);
    docs.push({
      userId: `bench-user-${u}`,
      channel: 'feishu_bot',
      enabled: true,
      format: 'card',
      webhookUrlSealed: ctx.secrets.seal(url),
      webhookUrlMasked: maskWebhookUrl(url),
      signingSecretSealed: ctx.secrets.seal(secret),
      createdAt: new Date(),
      updatedAt: new Date(),
    });
  }
  for (let i = 0; i < docs.length; i += 2000) await ctx.models.notificationChannels.collection.insertMany(docs.slice(i, i + 2000));
  return urls;
}

export async function benchDelivery(
  bench: BenchEnv,
  store: Store,
  n: number,
  opts: { baseline?: boolean; writesAlone?: boolean; writesN?: number; variant?: string; hooks?: DeliveryHooks } = {},
): Promise<DeliveryResult> {
  const users = Math.max(1, Math.min(1000, Math.ceil(n / 10)));
  const result: DeliveryResult = {
    store: store.label,
    n,
    users,
    concurrency: Number(runSpace(bench, store, 'x').config.WORKER_CONCURRENCY),
    ...(opts.variant ? { variant: opts.variant } : {}),
  };
  try {
    result.dueflow = await runDueflow(bench, store, n, users, opts.variant, opts.hooks);
  } catch (err) {
    result.error = `dueflow: ${(err as Error).message.split('\n')[0]}`;
    log(`  ${result.error}`);
  }
  if (opts.baseline !== false) {
    result.baseline = await runBaseline(bench, store, n, users, result.concurrency);
    if (result.dueflow) result.ratio = round(result.dueflow.perSecond / result.baseline.perSecond, 3);
  }
  if (opts.writesAlone !== false) {
    // The bench's own 50 writers can outlast SQLite's busy timeout on a loaded machine: report it, keep going.
    try {
      result.writesAlone = await recordWritesAlone(bench, store, opts.writesN ?? Math.min(n, 5000));
    } catch (err) {
      const error = `record writes alone: ${(err as Error).message.split('\n')[0]}`;
      result.error = result.error ? `${result.error}; ${error}` : error;
      log(`  ${error}`);
    }
  }
  return result;
}

/** Polls until `check` holds or `ms` passed; answers whether it held. A check the store leaves unanswered for 30 s counts as false (and says so). */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      check(),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), 30_000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (answered === 'timeout') log(`  ${what}: the store did not answer within 30 s`);
    else if (answered) return true;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

async function runDueflow(bench: BenchEnv, store: Store, n: number, users: number, variant?: string, hooks: DeliveryHooks = {}): Promise<DueflowDelivery> {
  const tag = variant ? `_${variant.replace(/[^A-Za-z0-9]+/g, '_')}` : '';
  const space = runSpace(bench, store, `delivery_${n}${tag}`);
  await clearSpace(bench, store, space);
  const ctx = await producerContext(space);
  const counter = await commandCounter(space);
  const tokenPrefix = `dlv${n}${tag ? `v${Date.now() % 100000}` : ''}`;
  const probeOut = bench.probe ? path.join(bench.outDir, `probe-delivery-${store.kind}-${n}${tag}.json`) : undefined;
  const cpuProfDir = bench.cpuProf ? path.join(bench.outDir, `cpuprof-delivery-${store.kind}-${n}${tag}`) : undefined;
  let worker: BenchProcess | undefined;
  try {
    log(`delivery [${store.label}]${variant ? ` (${variant})` : ''}: ${users} users with signed bot channels; starting a worker`);
    await seedBotUsers(ctx, bench, tokenPrefix, users);
    await hooks.beforeWorker?.(ctx, space);
    worker = await startDueflowWorker(space, { probeOut, cpuProfDir });
    const w = worker;
    // Ready and idle: what it does once at start is over; then 2 s of it idle (its timers alone).
    await sleep(WORKER_SETTLE_MS);
    const idle0 = { cpu: w.cpuNow(), at: Date.now(), probe: await probeSnapshot(w, probeOut) };
    await sleep(IDLE_MS);
    const before = { cpu: w.cpuNow(), at: Date.now(), probe: await probeSnapshot(w, probeOut) };
    const idleS = (before.at - idle0.at) / 1000;
    const idleProbe = before.probe && idle0.probe ? diffProbe(before.probe, idle0.probe) : undefined;

    const refusedBefore = bench.feishu.refused();
    const seen = new Uint8Array(n);
    let duplicates = 0;
    let unique = 0;
    let cpuAtLast = NaN;
    bench.feishu.expect(tokenPrefix, (m) => {
      const i = Number(/Bench notification (\d+)/.exec(JSON.stringify(m.body))?.[1]);
      if (!Number.isInteger(i) || i < 0 || i >= n) return;
      if (seen[i]) duplicates += 1;
      else if (++unique === n) cpuAtLast = w.cpuNow();
      seen[i] = 1;
    });

    log(`delivery [${store.label}]: requesting ${n} notifications`);
    // The requests' MongoDB commands: these models are on a connection with command monitoring.
    const requestCtx = { ...ctx, models: counter.models };
    counter.start();
    const t0 = Date.now();
    await lanes(n, REQUEST_CONCURRENCY, async (i) => {
      await requestNotification(requestCtx, {
        userId: `bench-user-${i % users}`,
        dedupeKey: `bench-${i}`,
        triggerType: 'important_urgent_task',
        target: { type: 'task', id: `bench-task-${i}` },
        message: benchMessage(i),
      });
    });
    const requestSeconds = (Date.now() - t0) / 1000;
    const requests = counter.counts();
    log(`delivery [${store.label}]: requested in ${requestSeconds.toFixed(1)} s; waiting for Feishu to accept all`);
    try {
      await waitUntil('delivered', () => bench.feishu.count(tokenPrefix), n);
    } catch (err) {
      const warnings = Object.entries(w.warningSummary());
      if (warnings.length) log(`  worker warnings: ${warnings.map(([k, v]) => `${k} ×${v}`).join('; ')}`);
      throw err;
    }
    const seconds = (bench.feishu.lastReceivedAt(tokenPrefix) - t0) / 1000;
    if (!Number.isFinite(cpuAtLast)) cpuAtLast = w.cpuNow();
    // Every record must say sent (the write after the request), not only Feishu have it; and the
    // relay must have moved their outboxes (notification.sent) into the event log: the window counts both.
    let sent = 0;
    await within(300_000, 'records sent', async () => (sent = await ctx.models.notificationRecords.countDocuments({ status: 'sent' })) >= n);
    if (sent < n) log(`delivery [${store.label}]: ${sent}/${n} records \`sent\` 300 s after the last message`);
    const relayed = await within(
      60_000,
      'outboxes relayed',
      async () => (await ctx.models.notificationRecords.countDocuments({ outboxCount: { $gt: 0 } })) === 0,
    );
    if (!relayed) log(`delivery [${store.label}]: outboxes not all relayed 60 s after the last record was sent`);
    await hooks.afterSent?.(ctx, t0);
    const after = { at: Date.now(), probe: await probeSnapshot(w, probeOut) };
    await hooks.beforeStop?.(ctx, space);
    const warnings = w.warningSummary();
    const proc = await w.stop();
    worker = undefined;
    const windowProbe = after.probe && before.probe ? diffProbe(after.probe, before.probe) : undefined;
    const whole = probeOut ? readJson<ProbeReport>(probeOut) : undefined;
    const cpuSeconds = cpuAtLast - before.cpu;
    const out: DueflowDelivery = {
      seconds: round(seconds, 2),
      perSecond: round(n / seconds, 1),
      requestSeconds: round(requestSeconds, 2),
      proc,
      sent,
      refused: bench.feishu.refused() - refusedBefore,
      duplicates,
      ...(windowProbe ? { probe: summarizeProbe(windowProbe, n), probeWindow: true } : whole ? { probe: summarizeProbe(whole, n) } : {}),
      windowSeconds: round((after.at - before.at) / 1000, 1),
      ...(idleProbe
        ? {
            idle: {
              mongoPerSecond: round(sumN(idleProbe.mongo) / idleS, 1),
              redisPerSecond: round(sumN(idleProbe.redis, (k) => !k.includes('(blocking)')) / idleS, 1),
            },
          }
        : {}),
      cpu: {
        seconds: round(cpuSeconds, 2),
        msPerMessage: round((cpuSeconds * 1000) / n, 2),
        idleMsPerSecond: round(((before.cpu - idle0.cpu) * 1000) / idleS, 1),
      },
      requests: { perMessage: round(requests.total / n, 2), byCommand: requests.byCommand },
      cpuProfile: cpuProfDir,
      warnings,
    };
    log(
      `delivery [${store.label}]: dueflow ${n} sent in ${out.seconds} s = ${out.perSecond}/s; worker CPU ${out.cpu!.msPerMessage} ms/message (idle ${out.cpu!.idleMsPerSecond} ms/s); MongoDB per message: requests ${out.requests!.perMessage} + worker ${out.probe?.mongoPerMessage ?? '?'}; Redis ${out.probe?.redisPerMessage ?? '?'}; peak RSS ${proc.peakRssMiB} MiB`,
    );
    return out;
  } finally {
    if (worker) await worker.stop();
    await counter.close();
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}

const IDLE_MS = 2000;

const sumN = (o: Record<string, { n: number }>, keep: (k: string) => boolean = () => true) =>
  Object.entries(o).reduce((a, [k, v]) => a + (keep(k) ? v.n : 0), 0);

async function runBaseline(bench: BenchEnv, store: Store, n: number, users: number, concurrency: number): Promise<NonNullable<DeliveryResult['baseline']>> {
  const prefix = `{bench-baseline-${n}}`;
  const tokenPrefix = `base${n}`;
  const urls: string[] = [];
  for (let u = 0; u < users; u++) {
    const token = `${tokenPrefix}~${u}`;
    bench.feishu.server.registerBot(token);
    urls.push(bench.feishu.server.botUrl(token));
  }
  const redis = new Redis(bench.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('baseline', { connection: redis, prefix });
  // The same probe as dueflow's workers: its Redis commands per job.
  const probeOut = bench.probe ? path.join(bench.outDir, `probe-baseline-${store.kind}-${n}.json`) : undefined;
  const worker = spawnNode(
    path.join(root, 'dist/scripts/bench/baselineWorker.js'),
    { REDIS_URL: bench.redisUrl, QUEUE_PREFIX: prefix, WORKER_CONCURRENCY: String(concurrency), ...(probeOut ? { BENCH_PROBE_OUT: probeOut } : {}) },
    probeOut ? ['-r', path.join(root, 'dist/scripts/bench/probe.js')] : [],
  );
  try {
    await worker.waitForLine(/^ready$/);
    // The same card dueflow builds for the same message, without timestamp and sign.
    const bodies = Array.from({ length: n }, (_, i) =>
      JSON.stringify(
        buildFeishuBotBody(
          { kind: 'feishu_bot', webhookUrl: urls[i % users], format: 'card' },
          {
            notificationId: String(i),
            userId: `bench-user-${i % users}`,
            triggerType: 'important_urgent_task',
            target: { type: 'task', id: `bench-task-${i}` },
            message: benchMessage(i),
          },
        ),
      ),
    );
    // Ready and idle, as the dueflow worker is measured: CPU from here to the last message.
    await sleep(WORKER_SETTLE_MS);
    const idle0 = { cpu: worker.cpuNow(), at: Date.now() };
    await sleep(IDLE_MS);
    const cpuBefore = worker.cpuNow();
    const probeBefore = await probeSnapshot(worker, probeOut);
    const idleMsPerSecond = ((cpuBefore - idle0.cpu) * 1000) / ((Date.now() - idle0.at) / 1000);
    let received = 0;
    let cpuAtLast = NaN;
    bench.feishu.expect(tokenPrefix, () => {
      if (++received === n) cpuAtLast = worker.cpuNow();
    });
    log(`delivery [${store.label}]: raw BullMQ baseline, ${n} jobs, concurrency ${concurrency}`);
    const keep = { age: 7 * 86_400 };
    const t0 = Date.now();
    for (let i = 0; i < n; i += 1000) {
      await queue.addBulk(
        bodies.slice(i, i + 1000).map((body, j) => ({
          name: 'post',
          data: { url: urls[(i + j) % users], body },
          opts: { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keep, removeOnFail: keep },
        })),
      );
    }
    await waitUntil('baseline delivered', () => bench.feishu.count(tokenPrefix), n);
    const seconds = (bench.feishu.lastReceivedAt(tokenPrefix) - t0) / 1000;
    if (!Number.isFinite(cpuAtLast)) cpuAtLast = worker.cpuNow();
    const probeAfter = await probeSnapshot(worker, probeOut);
    const proc = await worker.stop();
    const cpuSeconds = cpuAtLast - cpuBefore;
    const redisPerJob = probeAfter && probeBefore ? round(sumN(diffProbe(probeAfter, probeBefore).redis, (k) => !k.includes('(blocking)')) / n, 2) : undefined;
    const cpu = { seconds: round(cpuSeconds, 2), msPerMessage: round((cpuSeconds * 1000) / n, 2), idleMsPerSecond: round(idleMsPerSecond, 1) };
    log(
      `delivery [${store.label}]: baseline ${n} in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(1)}/s; CPU ${cpu.msPerMessage} ms/job; peak RSS ${proc.peakRssMiB} MiB`,
    );
    return { seconds: round(seconds, 2), perSecond: round(n / seconds, 1), proc, cpu, redisPerJob };
  } finally {
    await worker.stop();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
  }
}

const fakeOutcome = (i: number): ProviderOutcome => ({
  kind: 'sent',
  code: 'ok',
  rateLimited: false,
  httpStatus: 200,
  providerCode: 0,
  durationMs: 2,
  request: {
    url: 'http://127.0.0.1/open-apis/bot/v2/hook/abcd…wxyz',
    body: { msg_type: 'interactive', card: { header: { title: { content: benchMessage(i).title } } } },
  },
  response: { status: 200, body: { code: 0, msg: 'success', data: {} } },
});

/**
 * The store's share: per message, the MongoDB work of one delivery done from this process at
 * concurrency 50 with no Redis and no HTTP, as dueflow does it (the insert, which the unique
 * (channel, dedupeKey) index checks; the guarded claim that answers the record; guarded markSent):
 * the ceiling of delivery on this store. And the requests alone (the insert).
 */
async function recordWritesAlone(bench: BenchEnv, store: Store, n: number): Promise<NonNullable<DeliveryResult['writesAlone']>> {
  const space = runSpace(bench, store, `writes_${n}`);
  await clearSpace(bench, store, space);
  const ctx = await producerContext(space);
  const Records = ctx.models.notificationRecords;
  const record = (key: string, i: number, history: object[]) => ({
    userId: `bench-user-${i % 100}`,
    channel: 'feishu_bot' as const,
    dedupeKey: key,
    triggerType: 'important_urgent_task',
    target: { type: 'task', id: String(i) },
    message: benchMessage(i),
    status: 'pending' as const,
    attemptCount: 0,
    maxAttempts: 5,
    history,
  });
  // 50 writers of this process can outlast SQLite's busy timeout on a loaded machine: a write SQLite
  // refused (SQLITE_BUSY, not applied) is tried again, up to 5 times, and counted.
  let busyRetries = 0;
  const busy = async <T>(write: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (attempt >= 5 || !/SQLITE_BUSY|database is locked/.test((err as Error).message)) throw err;
        busyRetries += 1;
      }
    }
  };
  try {
    const timed = async (fn: (i: number) => Promise<void>): Promise<number> => {
      await Records.deleteMany({});
      const t0 = Date.now();
      await lanes(n, 50, fn);
      return n / ((Date.now() - t0) / 1000);
    };
    // As deliver.ts does it: the guarded claim answers the record (no read before it), then `sent`.
    const claimAndSend = async (id: Types.ObjectId, i: number, now: Date) => {
      await busy(() => t.claimUnreadForSending(Records, id, now));
      await busy(() => t.markSent(Records, id, now, 1, fakeOutcome(i)));
    };
    log(`delivery [${store.label}]: the record writes alone, ${n} messages`);
    const guarded = await timed(async (i) => {
      const now = new Date();
      const rec = await busy(() => Records.create(record(`guarded-${i}`, i, [{ at: now, event: 'requested' }])));
      await claimAndSend(rec._id, i, now);
    });
    const req = await timed(async (i) => void (await busy(() => Records.create(record(`req-${i}`, i, [])))));
    // The worker's share of those writes, in client CPU: the records are there (the pass above), only the claim and `sent` are measured.
    const ids = (await Records.find({}, { _id: 1 }).lean()).map((d) => d._id);
    const cpu0 = process.cpuUsage();
    await lanes(ids.length, 50, (i) => claimAndSend(ids[i], i, new Date()));
    const cpu = process.cpuUsage(cpu0);
    const workerWritesCpuMs = (cpu.user + cpu.system) / 1000 / Math.max(1, ids.length);
    log(
      `delivery [${store.label}]: record writes alone ${guarded.toFixed(0)}/s as dueflow does them; requests alone ${req.toFixed(0)}/s${busyRetries ? ` (${busyRetries} writes tried again after SQLITE_BUSY)` : ''}`,
    );
    return {
      n,
      guardedPerSecond: round(guarded, 1),
      requestPerSecond: round(req, 1),
      workerWritesCpuMs: round(workerWritesCpuMs, 2),
      ...(busyRetries ? { busyRetries } : {}),
    };
  } finally {
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}
