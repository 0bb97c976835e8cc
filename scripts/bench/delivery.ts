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
import path from 'node:path';
import { Types } from 'mongoose';
import { buildFeishuBotBody } from '../../src/providers/feishuBot';
import { maskWebhookUrl } from '../../src/providers/mask';
import type { ProviderOutcome } from '../../src/providers/types';
import { requestNotification } from '../../src/notifications/request';
import * as t from '../../src/notifications/transitions';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { BenchEnv, Store, ProcStats } from './common';
import { clearSpace, closeContext, lanes, log, producerContext, readJson, round, runSpace, spawnNode, startDueflowWorker, root, waitUntil } from './common';
import { summarizeProbe, type ProbeSummary } from './profile';
import type { ProbeReport } from './probe';
import type { AppContext } from '../../src/context';

export interface DeliveryResult {
  store: string;
  n: number;
  users: number;
  concurrency: number;
  dueflow?: {
    seconds: number;
    perSecond: number;
    requestSeconds: number;
    proc: ProcStats;
    sent: number;
    refused: number;
    duplicates: number;
    probe?: ProbeSummary;
    cpuProfile?: string;
    warnings?: Record<string, number>;
  };
  /** Extra worker settings of this run (e.g. WORKER_CONCURRENCY) or the what-if */
  variant?: string;
  baseline?: { seconds: number; perSecond: number; proc: ProcStats };
  ratio?: number;
  writesAlone?: { n: number; guardedPerSecond: number; idOnlyPerSecond: number; requestPerSecond: number; requestLookupFirstPerSecond: number };
  error?: string;
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
  opts: { baseline?: boolean; writesAlone?: boolean; writesN?: number; variant?: string } = {},
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
    result.dueflow = await runDueflow(bench, store, n, users, opts.variant);
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

async function runDueflow(bench: BenchEnv, store: Store, n: number, users: number, variant?: string): Promise<NonNullable<DeliveryResult['dueflow']>> {
  const tag = variant ? `_${variant.replace(/[^A-Za-z0-9]+/g, '_')}` : '';
  const space = runSpace(bench, store, `delivery_${n}${tag}`);
  await clearSpace(bench, store, space);
  const ctx = await producerContext(space);
  const tokenPrefix = `dlv${n}${tag ? `v${Date.now() % 100000}` : ''}`;
  const probeOut = path.join(bench.outDir, `probe-delivery-${store.kind}-${n}${tag}.json`);
  const cpuProfDir = bench.cpuProf ? path.join(bench.outDir, `cpuprof-delivery-${store.kind}-${n}${tag}`) : undefined;
  let worker: Awaited<ReturnType<typeof startDueflowWorker>> | undefined;
  try {
    log(`delivery [${store.label}]: ${users} users with signed bot channels; starting a worker`);
    await seedBotUsers(ctx, bench, tokenPrefix, users);
    worker = await startDueflowWorker(space, { probeOut: bench.probe ? probeOut : undefined, cpuProfDir });
    const refusedBefore = bench.feishu.refused();
    const seen = new Uint8Array(n);
    let duplicates = 0;
    bench.feishu.expect(tokenPrefix, (m) => {
      const i = Number(/Bench notification (\d+)/.exec(JSON.stringify(m.body))?.[1]);
      if (!Number.isInteger(i) || i < 0 || i >= n) return;
      if (seen[i]) duplicates += 1;
      seen[i] = 1;
    });

    log(`delivery [${store.label}]: requesting ${n} notifications`);
    const t0 = Date.now();
    await lanes(n, REQUEST_CONCURRENCY, async (i) => {
      await requestNotification(ctx, {
        userId: `bench-user-${i % users}`,
        dedupeKey: `bench-${i}`,
        triggerType: 'important_urgent_task',
        target: { type: 'task', id: `bench-task-${i}` },
        message: benchMessage(i),
      });
    });
    const requestSeconds = (Date.now() - t0) / 1000;
    log(`delivery [${store.label}]: requested in ${requestSeconds.toFixed(1)} s; waiting for Feishu to accept all`);
    await waitUntil('delivered', () => bench.feishu.count(tokenPrefix), n);
    const seconds = (bench.feishu.lastReceivedAt(tokenPrefix) - t0) / 1000;
    // Every record must say sent (the write after the request), not only Feishu have it.
    let sent = 0;
    for (let i = 0; i < 600; i++) {
      sent = await ctx.models.notificationRecords.countDocuments({ status: 'sent' });
      if (sent >= n) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const warnings = worker.warningSummary();
    const proc = await worker.stop();
    worker = undefined;
    const probe = readJson<ProbeReport>(probeOut);
    const out = {
      seconds: round(seconds, 2),
      perSecond: round(n / seconds, 1),
      requestSeconds: round(requestSeconds, 2),
      proc,
      sent,
      refused: bench.feishu.refused() - refusedBefore,
      duplicates,
      probe: probe ? summarizeProbe(probe, n) : undefined,
      cpuProfile: cpuProfDir,
      warnings,
    };
    log(
      `delivery [${store.label}]: dueflow ${n} sent in ${out.seconds} s = ${out.perSecond}/s; worker peak RSS ${proc.peakRssMiB} MiB, CPU ${proc.cpuSeconds} s`,
    );
    return out;
  } finally {
    if (worker) await worker.stop();
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}

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
  const worker = spawnNode(path.join(root, 'dist/scripts/bench/baselineWorker.js'), {
    REDIS_URL: bench.redisUrl,
    QUEUE_PREFIX: prefix,
    WORKER_CONCURRENCY: String(concurrency),
  });
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
    bench.feishu.expect(tokenPrefix);
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
    const proc = await worker.stop();
    log(`delivery [${store.label}]: baseline ${n} in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(1)}/s; peak RSS ${proc.peakRssMiB} MiB`);
    return { seconds: round(seconds, 2), perSecond: round(n / seconds, 1), proc };
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
 * concurrency 50 with no Redis and no HTTP: (a) as dueflow does it (insert, which the unique
 * (channel, dedupeKey) index checks; the guarded claim that answers the record; guarded markSent);
 * (b) the same addressed by _id alone (with a read first), the only filter FerretDB v1/SQLite
 * serves from an index; (c) the requests alone, as now (insert first) and as before (a dedupe
 * lookup, then the insert).
 */
async function recordWritesAlone(bench: BenchEnv, store: Store, n: number): Promise<NonNullable<DeliveryResult['writesAlone']>> {
  const space = runSpace(bench, store, `writes_${n}`);
  await clearSpace(bench, store, space);
  const ctx = await producerContext(space);
  const Records = ctx.models.notificationRecords;
  try {
    const run = async (label: string, idOnly: boolean): Promise<number> => {
      await Records.deleteMany({});
      const t0 = Date.now();
      await lanes(n, 50, async (i) => {
        const now = new Date();
        const key = `${label}-${i}`;
        const rec = await Records.create({
          ...(idOnly ? { _id: new Types.ObjectId() } : {}),
          userId: `bench-user-${i % 100}`,
          channel: 'feishu_bot',
          dedupeKey: key,
          triggerType: 'important_urgent_task',
          target: { type: 'task', id: String(i) },
          message: benchMessage(i),
          status: 'pending',
          attemptCount: 0,
          maxAttempts: 5,
          history: [{ at: now, event: 'requested' }],
        });
        if (idOnly) {
          await Records.findById(rec._id);
          await Records.findOneAndUpdate(
            { _id: rec._id },
            { $set: { status: 'sending', sendingSince: now }, $inc: { attemptCount: 1 } },
            { returnDocument: 'after' },
          );
          await Records.findOneAndUpdate(
            { _id: rec._id },
            {
              $set: { status: 'sent', sentAt: now },
              $unset: { sendingSince: '' },
              $push: { history: { at: now, event: 'attempt', attempt: 1, outcome: 'sent', code: 'ok' } },
            },
            { returnDocument: 'after' },
          );
        } else {
          // As deliver.ts does it: the guarded claim answers the record (no read before it), then `sent`.
          await t.claimUnreadForSending(Records, rec._id, now);
          await t.markSent(Records, rec._id, now, 1, fakeOutcome(i));
        }
      });
      return n / ((Date.now() - t0) / 1000);
    };
    const requestOnly = async (lookupFirst: boolean): Promise<number> => {
      await Records.deleteMany({});
      const t0 = Date.now();
      await lanes(n, 50, async (i) => {
        const key = `req-${i}`;
        if (lookupFirst) await Records.findOne({ channel: 'feishu_bot', dedupeKey: key });
        await Records.create({
          userId: `bench-user-${i % 100}`,
          channel: 'feishu_bot',
          dedupeKey: key,
          triggerType: 'important_urgent_task',
          target: { type: 'task', id: String(i) },
          message: benchMessage(i),
          status: 'pending',
          attemptCount: 0,
          maxAttempts: 5,
          history: [],
        });
      });
      return n / ((Date.now() - t0) / 1000);
    };
    log(`delivery [${store.label}]: the record writes alone, ${n} messages`);
    const guarded = await run('guarded', false);
    const idOnly = await run('idonly', true);
    const req = await requestOnly(false);
    const reqLookupFirst = await requestOnly(true);
    log(
      `delivery [${store.label}]: record writes alone ${guarded.toFixed(0)}/s as dueflow does them; ${idOnly.toFixed(0)}/s by _id only; requests alone ${req.toFixed(0)}/s (${reqLookupFirst.toFixed(0)}/s with a lookup first)`,
    );
    return {
      n,
      guardedPerSecond: round(guarded, 1),
      idOnlyPerSecond: round(idOnly, 1),
      requestPerSecond: round(req, 1),
      requestLookupFirstPerSecond: round(reqLookupFirst, 1),
    };
  } finally {
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}
