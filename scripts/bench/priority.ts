/**
 * Priority on the app channel: N non-urgent reminders queued for N/10 people on the host product's
 * Feishu app (the `feishu_app` channel), delivered under the app's real limits (50/s, 1000/min,
 * 5/s per person, enforced by the Feishu-compatible server, which answers 99991400 past them);
 * while that burst drains, 20 critical anomalies are posted, ~0.75 s apart, one per extra person.
 * Measured: for each anomaly, the time from its POST to the server accepting its card (`sentAt`);
 * the bulk messages the server accepted per second meanwhile; and the 99991400 it answered (0
 * when dueflow's limiter holds). Target: p99 ≤ 2 s.
 *
 * Real processes of the compiled build: one api (`DUEFLOW_MODE=api`, HTTP on 127.0.0.1) for
 * everything the bench asks (linking people, POST /api/v1/notifications, POST /api/v1/anomalies),
 * and one worker (worker mode, defaults) started once the N reminders are queued (real records,
 * real BullMQ jobs with `bulkPriority`). The step stops once every anomaly's card arrived (or after
 * a bounded wait) and the burst ran at least MIN_BURST_S: it does not drain the whole backlog.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { deliveryJobId } from '../../src/notifications/schemas';
import { startFeishuServer, type AppMessage, type FeishuServer } from '../../test/support/feishuServer';
import { freePort } from '../services';
import type { BenchEnv, ProcStats, Store } from './common';
import {
  clearSpace,
  closeContext,
  lanes,
  log,
  percentile,
  producerContext,
  readJson,
  root,
  round,
  runSpace,
  sleep,
  spawnNode,
  startDueflowWorker,
  type BenchProcess,
} from './common';
import { benchMessage } from './delivery';
import { summarizeProbe, type ProbeSummary } from './profile';
import type { ProbeReport } from './probe';

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface PriorityRun {
  store: string;
  /** Reminders queued */
  n: number;
  users: number;
  anomalies: number;
  concurrency: number;
  variant?: string;
  /** Queuing the N reminders through POST /api/v1/notifications (worker not yet started) */
  queueSeconds?: number;
  /** Reminders not yet accepted by the server when the first / last anomaly was posted */
  backlogAtFirstAnomaly?: number;
  backlogAtLastAnomaly?: number;
  /** Seconds from each anomaly's POST to its card's sentAt, in posting order (undefined: never arrived) */
  latencies?: Array<number | null>;
  latency?: LatencySummary;
  /** Cards of the anomalies that arrived */
  delivered?: number;
  /** Where an anomaly's time went (medians, seconds): see stage() below */
  stages?: { api: number; workflow: number; queue: number; delivery: number; maxQueue: number };
  /** The same stages of the slowest anomaly (seconds) */
  slowest?: { latency: number; api: number; workflow: number; queue: number; delivery: number };
  bulk?: {
    /** Reminders accepted from the first one to the end of the measurement */
    accepted: number;
    seconds: number;
    perSecond: number;
    /** Reminders accepted while the anomalies were in flight (first POST → last card), per second */
    duringAnomaliesPerSecond?: number;
    /** Most app messages (bulk + urgent) the server accepted in any rolling 1 s / 60 s */
    maxPerSecond: number;
    maxPerMinute: number;
  };
  /** Answers of the server's app limit (must be 0) and of its per-person limit */
  refused99991400?: number;
  refused230020?: number;
  otherRefusals?: number;
  targetMet?: boolean;
  /** Answers of POST /api/v1/anomalies other than 202 (retried up to 3 times) */
  apiErrors?: string[];
  worker?: ProcStats;
  workerProbe?: ProbeSummary;
  warnings?: Record<string, number>;
  note?: string;
  /** 1-minute load average when the anomalies were posted and at the end (the machine is shared: read rates with it) */
  loadAvg?: [number, number];
  error?: string;
}

const APP = { appId: 'cli_bench_priority', appSecret: 'bench-priority-app-secret-0123' };
const ANOMALIES = 20;
const ANOMALY_SPACING_MS = 750;
/** The anomalies go out once this many reminders were accepted (delivery is flowing). */
const FLOWING_AT = 200;
/** The burst must last at least this long, so the limit matters. */
const MIN_BURST_S = 20;
const TARGET_P99_S = 2;

function summarize(values: number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(s, 50), 3), p95: round(percentile(s, 95), 3), p99: round(percentile(s, 99), 3), max: round(s[s.length - 1] ?? NaN, 3) };
}

/** Most items of sorted `times` inside any window of `ms`. */
function maxInWindow(times: number[], ms: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

async function http(baseUrl: string, token: string, method: string, p: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${baseUrl}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

async function expectStatus(what: string, r: Promise<{ status: number; body: any }>, ok: number[]): Promise<any> {
  const res = await r;
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function benchPriority(bench: BenchEnv, store: Store, n: number, opts: { variant?: string } = {}): Promise<PriorityRun> {
  const users = Math.max(1, Math.ceil(n / 10));
  const tag = opts.variant ? `_${opts.variant.replace(/[^A-Za-z0-9]+/g, '_')}` : '';
  const label = `priority [${store.label}${opts.variant ? `, ${opts.variant}` : ''}]`;
  let feishu: FeishuServer | undefined;
  let api: BenchProcess | undefined;
  let worker: BenchProcess | undefined;
  let ctx: Awaited<ReturnType<typeof producerContext>> | undefined;
  const run: PriorityRun = { store: store.label, n, users, anomalies: ANOMALIES, concurrency: 0, ...(opts.variant ? { variant: opts.variant } : {}) };
  try {
    feishu = await startFeishuServer({ host: '127.0.0.1', app: { ...APP, autoRegisterUsers: true } }); // its real limits: 50/s, 1000/min, 5/s per person
    const space = runSpace(bench, store, `priority_${n}${tag}`, { FEISHU_APP_ID: APP.appId, FEISHU_APP_SECRET: APP.appSecret, FEISHU_API_BASE: feishu.url });
    run.concurrency = Number(space.config.WORKER_CONCURRENCY);
    await clearSpace(bench, store, space);
    ctx = await producerContext(space);
    const token = space.config.SERVICE_TOKEN;
    const port = await freePort();
    api = spawnNode(path.join(root, 'dist/processors/main.js'), { ...space.env, DUEFLOW_MODE: 'api', PORT: String(port) });
    await api.waitForLine(/"msg":"dueflow started"/, 60_000);
    const baseUrl = `http://127.0.0.1:${port}`;

    // People: `users` for the reminders, one more per anomaly; each linked to the app by open_id.
    const bulkOpenIds = new Set<string>();
    const openIdOf = (who: string) => `ou_bench${who.replace(/[^a-z0-9]/g, '')}`;
    const people = [...Array.from({ length: users }, (_, u) => `prio-user-${u}`), ...Array.from({ length: ANOMALIES }, (_, k) => `prio-anomaly-${k}`)];
    log(`${label}: linking ${people.length} people to the app; queuing ${n} reminders through the API`);
    await lanes(people.length, 8, async (i) => {
      const userId = people[i];
      await expectStatus(
        `link ${userId}`,
        http(baseUrl, token, 'PUT', `/api/v1/users/${userId}/notification/channels/feishu_app`, {
          enabled: true,
          receiveIdType: 'open_id',
          receiveId: openIdOf(userId),
        }),
        [200],
      );
      if (i < users) bulkOpenIds.add(openIdOf(userId));
    });

    const q0 = Date.now();
    await lanes(n, 16, async (i) => {
      await expectStatus(
        `reminder ${i}`,
        http(baseUrl, token, 'POST', '/api/v1/notifications', {
          userId: `prio-user-${i % users}`,
          dedupeKey: `prio-${i}`,
          triggerType: 'reminder',
          target: { type: 'reminder', id: `bench-reminder-${i}` },
          message: benchMessage(i),
        }),
        [202],
      );
    });
    run.queueSeconds = round((Date.now() - q0) / 1000, 1);
    const counts = await ctx.queues.notifications.getJobCounts('prioritized', 'wait', 'active', 'delayed');
    log(`${label}: ${n} reminders queued in ${run.queueSeconds} s (jobs: ${JSON.stringify(counts)}); starting the worker`);

    // The server's view, read live: bulk messages accepted so far.
    const msgs = feishu.app.messages;
    let bulkSeen = 0;
    let scanned = 0;
    const bulkCount = () => {
      for (; scanned < msgs.length; scanned++) if (bulkOpenIds.has(msgs[scanned].receiveId)) bulkSeen++;
      return bulkSeen;
    };

    const probeOut = path.join(bench.outDir, `probe-priority-${store.kind}-${n}${tag}.json`);
    worker = await startDueflowWorker(space, { probeOut: bench.probe ? probeOut : undefined });
    const w0 = Date.now();
    const flowing = Math.min(FLOWING_AT, Math.floor(n / 5));
    for (let last = 0, lastMove = Date.now(); bulkCount() < flowing;) {
      if (Date.now() - w0 > 600_000) throw new Error(`delivery never reached ${flowing} accepted (${bulkCount()} after 600 s)`);
      if (bulkCount() !== last) {
        last = bulkCount();
        lastMove = Date.now();
      }
      if (Date.now() - lastMove > 180_000) throw new Error(`delivery stalled at ${last} accepted`);
      await sleep(50);
    }
    log(
      `${label}: ${bulkCount()} reminders accepted ${((Date.now() - w0) / 1000).toFixed(1)} s after the worker started; posting ${ANOMALIES} critical anomalies, ${ANOMALY_SPACING_MS} ms apart`,
    );

    // The anomalies, each at its scheduled moment (a slow answer does not push the next one back).
    const postedAt: number[] = [];
    const apiErrors: string[] = [];
    const triggerIds: Array<string | undefined> = [];
    const posts: Array<Promise<void>> = [];
    const a0 = Date.now();
    run.backlogAtFirstAnomaly = n - bulkCount();
    const loadAtAnomalies = round(os.loadavg()[0], 1);
    for (let k = 0; k < ANOMALIES; k++) {
      const wait = a0 + k * ANOMALY_SPACING_MS - Date.now();
      if (wait > 0) await delay(wait);
      if (k === ANOMALIES - 1) run.backlogAtLastAnomaly = n - bulkCount();
      postedAt[k] = Date.now();
      const body = {
        userId: `prio-anomaly-${k}`,
        type: 'disk_almost_full',
        severity: 'critical',
        targetType: 'server',
        targetId: `bench-db-${k}`,
        title: `db-${k} disk almost full`,
        detail: 'Disk 97% full.',
        occurredAt: new Date().toISOString(),
        idempotencyKey: `bench-priority-${k}-${a0}`,
      };
      // As a reporting service would: a 5xx is retried (same key and body), the latency still counts from the first POST.
      posts.push(
        (async () => {
          for (let attempt = 1; ; attempt++) {
            const res = await http(baseUrl, token, 'POST', '/api/v1/anomalies', body);
            if (res.status === 202 || res.status === 200) {
              triggerIds[k] = res.body?.id;
              return;
            }
            const requestId = res.body?.error?.details?.requestId;
            const line = requestId ? api!.tail.find((l) => l.includes(requestId) && /"level":(40|50)/.test(l)) : undefined;
            const why = line ? (/"message":"([^"]{0,300})/.exec(line)?.[1] ?? line.slice(0, 300)) : JSON.stringify(res.body).slice(0, 200);
            apiErrors.push(`anomaly ${k}, attempt ${attempt}: HTTP ${res.status} ${why}`);
            log(`${label}: anomaly ${k}: HTTP ${res.status} (${why})${attempt < 3 ? '; retrying' : ''}`);
            if (res.status < 500 || attempt >= 3) return;
            await delay(200);
          }
        })(),
      );
    }
    await Promise.all(posts);
    if (apiErrors.length) run.apiErrors = apiErrors;

    // Until every card arrived (at most 120 s after the last POST) and the burst lasted MIN_BURST_S.
    const anomalyMsg = (k: number): AppMessage | undefined => feishu!.app.messagesTo(openIdOf(`prio-anomaly-${k}`))[0];
    const firstBulkAt = () => msgs.find((m) => bulkOpenIds.has(m.receiveId))?.sentAt ?? w0;
    const lastPost = postedAt[ANOMALIES - 1];
    for (;;) {
      const arrived = Array.from({ length: ANOMALIES }, (_, k) => anomalyMsg(k)).filter(Boolean).length;
      const burstS = (Date.now() - firstBulkAt()) / 1000;
      if ((arrived === ANOMALIES || Date.now() - lastPost > 120_000) && (burstS >= MIN_BURST_S || bulkCount() >= n)) break;
      await sleep(100);
    }
    const end = Date.now();
    bulkCount();
    run.loadAvg = [loadAtAnomalies, round(os.loadavg()[0], 1)];

    // Results, from the server's own records.
    const lat = Array.from({ length: ANOMALIES }, (_, k) => {
      const m = anomalyMsg(k);
      return m ? (m.sentAt - postedAt[k]) / 1000 : null;
    });
    run.latencies = lat.map((v) => (v === null ? null : round(v, 3)));
    const got = lat.filter((v): v is number => v !== null);
    run.delivered = got.length;
    if (got.length) run.latency = summarize(got);
    const start = firstBulkAt();
    const bulkTimes = msgs.filter((m) => bulkOpenIds.has(m.receiveId) && m.sentAt <= end).map((m) => m.sentAt);
    const allTimes = msgs
      .filter((m) => m.sentAt <= end)
      .map((m) => m.sentAt)
      .sort((a, b) => a - b);
    const lastCard = Math.max(...Array.from({ length: ANOMALIES }, (_, k) => anomalyMsg(k)?.sentAt ?? 0));
    const during = lastCard > postedAt[0] ? bulkTimes.filter((t) => t >= postedAt[0] && t <= lastCard).length / ((lastCard - postedAt[0]) / 1000) : undefined;
    run.bulk = {
      accepted: bulkTimes.length,
      seconds: round((end - start) / 1000, 1),
      perSecond: round(bulkTimes.length / ((end - start) / 1000), 1),
      duringAnomaliesPerSecond: during === undefined ? undefined : round(during, 1),
      maxPerSecond: maxInWindow(allTimes, 1000),
      maxPerMinute: maxInWindow(allTimes, 60_000),
    };
    const appRequests = feishu.requests.filter((r) => r.kind === 'app' && r.path === '/open-apis/im/v1/messages');
    run.refused99991400 = appRequests.filter((r) => r.code === 99991400).length;
    run.refused230020 = appRequests.filter((r) => r.code === 230020).length;
    run.otherRefusals = appRequests.filter((r) => r.code !== 0 && r.code !== 99991400 && r.code !== 230020).length;
    run.targetMet = got.length === ANOMALIES && run.latency!.p99 <= TARGET_P99_S && run.refused99991400 === 0;

    // Where each anomaly's time went: POST → trigger stored (api), → record stored (workflow job),
    // → its delivery job taken by the worker (the notification queue: what priority decides), → card at the server.
    const stages: Array<{ latency: number; api: number; workflow: number; queue: number; delivery: number }> = [];
    for (let k = 0; k < ANOMALIES; k++) {
      const m = anomalyMsg(k);
      if (!m || !triggerIds[k]) continue;
      const trigger = await ctx.models.triggers.findById(triggerIds[k]).lean<{ createdAt?: Date; notificationId?: string }>();
      const record = trigger?.notificationId ? await ctx.models.notificationRecords.findById(trigger.notificationId).lean<{ createdAt?: Date }>() : null;
      const job = trigger?.notificationId ? await ctx.queues.notifications.getJob(deliveryJobId(trigger.notificationId)) : undefined;
      if (!trigger?.createdAt || !record?.createdAt || !job?.processedOn) continue;
      stages.push({
        latency: m.sentAt - postedAt[k],
        api: trigger.createdAt.getTime() - postedAt[k],
        workflow: record.createdAt.getTime() - trigger.createdAt.getTime(),
        queue: job.processedOn - record.createdAt.getTime(),
        delivery: m.sentAt - job.processedOn,
      });
    }
    if (stages.length) {
      const med = (key: keyof (typeof stages)[0]) =>
        round(
          percentile(
            stages.map((s) => s[key]).sort((a, b) => a - b),
            50,
          ) / 1000,
          3,
        );
      run.stages = {
        api: med('api'),
        workflow: med('workflow'),
        queue: med('queue'),
        delivery: med('delivery'),
        maxQueue: round(Math.max(...stages.map((s) => s.queue)) / 1000, 3),
      };
      const worst = stages.reduce((a, b) => (b.latency > a.latency ? b : a));
      run.slowest = {
        latency: round(worst.latency / 1000, 3),
        api: round(worst.api / 1000, 3),
        workflow: round(worst.workflow / 1000, 3),
        queue: round(worst.queue / 1000, 3),
        delivery: round(worst.delivery / 1000, 3),
      };
    }
    log(
      `${label}: anomalies p50 ${run.latency?.p50} s, p95 ${run.latency?.p95} s, p99 ${run.latency?.p99} s, max ${run.latency?.max} s (${got.length}/${ANOMALIES} arrived); stages (median s) ${JSON.stringify(run.stages)}, slowest ${JSON.stringify(run.slowest)}; bulk ${run.bulk.accepted} accepted in ${run.bulk.seconds} s = ${run.bulk.perSecond}/s (${run.bulk.duringAnomaliesPerSecond}/s during the anomalies; max ${run.bulk.maxPerSecond} in 1 s, ${run.bulk.maxPerMinute} in 60 s); 99991400 ×${run.refused99991400}, 230020 ×${run.refused230020}; target ${run.targetMet ? 'met' : 'missed'}; load average ${run.loadAvg.join(' → ')} on ${os.cpus().length} cores`,
    );

    run.warnings = worker.warningSummary();
    run.worker = await worker.stop();
    worker = undefined;
    const probe = readJson<ProbeReport>(probeOut);
    if (probe) run.workerProbe = summarizeProbe(probe, Math.max(1, bulkTimes.length + got.length));
    if (bulkTimes.length < n)
      run.note = `stopped with ${n - bulkTimes.length} of ${n} reminders still queued (the step measures the anomalies during the burst, it does not drain it)`;
    return run;
  } catch (err) {
    run.error = (err as Error).message.split('\n')[0];
    log(`${label}: ${run.error}`);
    return run;
  } finally {
    if (worker) await worker.stop();
    if (api) await api.stop();
    if (ctx) {
      const space = runSpace(bench, store, `priority_${n}${tag}`);
      await closeContext(ctx).catch(() => undefined);
      await clearSpace(bench, store, space).catch(() => undefined);
    }
    await feishu?.close();
  }
}
