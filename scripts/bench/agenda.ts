/**
 * Measurement 4, against Agenda on the same MongoDB-compatible server: N jobs due at T, each
 * posting one message (the same card body) to the Feishu-compatible server; the time from T to
 * the last message accepted. dueflow's figure is its burst run of the same N (measurement 2),
 * which does much more per job (task rules, trigger, plan, preview, record, signature).
 */
import path from 'node:path';
import { Agenda } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { buildFeishuBotBody } from '../../src/providers/feishuBot';
import type { BenchEnv, ProcStats, Store } from './common';
import { lanes, log, percentile, round, root, sleep, spawnNode, waitUntil } from './common';
import { benchMessage } from './delivery';
import type { Lateness } from './firing';

export interface AgendaRun {
  store: string;
  n: number;
  concurrency: number;
  seconds?: number;
  jobsPerSecond?: number;
  lateness?: Lateness;
  proc?: ProcStats;
  seedSeconds?: number;
  seedOverrunS?: number;
  /** Messages of jobs that had already run: Agenda's lock (findOneAndUpdate) is not atomic on FerretDB v1 */
  duplicates?: number;
  error?: string;
}

export async function benchAgenda(bench: BenchEnv, store: Store, n: number, concurrency = 50): Promise<AgendaRun> {
  const run: AgendaRun = { store: store.label, n, concurrency };
  const dbName = `bench_agenda_${n}`;
  const uri = `${store.uri.replace(/\/?$/, '/')}${dbName}`;
  const { MongoClient } = await import('mongodb');
  const admin = new MongoClient(store.uri, { retryWrites: false });
  await admin.connect();
  await admin.db(dbName).dropDatabase();
  const tokenPrefix = `agenda${n}`;
  const users = Math.max(1, Math.ceil(n / 5));
  const urls = Array.from({ length: users }, (_, u) => {
    const token = `${tokenPrefix}~${u}`;
    bench.feishu.server.registerBot(token);
    return bench.feishu.server.botUrl(token);
  });
  const producer = new Agenda({ backend: new MongoBackend({ address: uri, options: { retryWrites: false } }) });
  const worker = spawnNode(path.join(root, 'dist/scripts/bench/agendaWorker.js'), {
    MONGODB_URI: uri,
    PROCESS_EVERY_MS: String(bench.scanIntervalMs),
    CONCURRENCY: String(concurrency),
  });
  try {
    log(`agenda [${store.label}]: starting an Agenda worker (processEvery ${bench.scanIntervalMs} ms, concurrency ${concurrency})`);
    await producer.ready;
    await worker.waitForLine(/^ready$/);
    // T after the seeding: Agenda saves jobs one by one; estimate from the first 200.
    const body = (i: number) =>
      JSON.stringify(
        buildFeishuBotBody(
          { kind: 'feishu_bot', webhookUrl: urls[i % users], format: 'card' },
          {
            notificationId: String(i),
            userId: `u${i % users}`,
            triggerType: 'important_urgent_task',
            target: { type: 'task', id: `bench-task-${i}` },
            message: { ...benchMessage(i), title: `bench-task-${i}` },
          },
        ),
      );
    const calib = Math.min(200, n);
    const far = new Date(Date.now() + 3_600_000);
    const c0 = Date.now();
    const calibJobs = await Promise.all(
      Array.from({ length: calib }, (_, i) =>
        producer
          .create('post-message', { url: urls[i % users], body: body(i) })
          .schedule(far)
          .save(),
      ),
    );
    const perJobMs = (Date.now() - c0) / calib;
    const leadMs = Math.max(3000, Math.ceil(perJobMs * (n - calib) * 1.6) + 3000);
    const T = Date.now() + leadMs;
    log(`agenda [${store.label}]: seeding ${n} jobs due at T (in ${(leadMs / 1000).toFixed(1)} s)`);
    const seed0 = Date.now();
    await lanes(calibJobs.length, 20, async (i) => {
      calibJobs[i].schedule(new Date(T));
      await calibJobs[i].save();
    });
    await lanes(n - calib, 20, async (k) => {
      const i = calib + k;
      await producer
        .create('post-message', { url: urls[i % users], body: body(i) })
        .schedule(new Date(T))
        .save();
    });
    run.seedSeconds = round((Date.now() - seed0) / 1000, 1);
    if (Date.now() > T) run.seedOverrunS = round((Date.now() - T) / 1000, 2);

    const lateness: number[] = [];
    const seen = new Uint8Array(n);
    let distinct = 0;
    let duplicates = 0;
    let last = 0;
    bench.feishu.expect(tokenPrefix, (m) => {
      const i = Number(/bench-task-(\d+)/.exec(JSON.stringify(m.body))?.[1]);
      if (!Number.isInteger(i) || i < 0 || i >= n) return;
      if (seen[i]) {
        duplicates += 1;
        return;
      }
      seen[i] = 1;
      distinct += 1;
      last = m.receivedAt;
      lateness.push((m.receivedAt - T) / 1000);
    });
    if (Date.now() < T) await sleep(T - Date.now());
    log(`agenda [${store.label}]: T reached; waiting for ${n} messages`);
    await waitUntil('agenda fired (distinct jobs)', () => distinct, n);
    const seconds = (last - T) / 1000;
    run.duplicates = duplicates;
    run.proc = await worker.stop();
    lateness.sort((a, b) => a - b);
    Object.assign(run, {
      seconds: round(seconds, 2),
      jobsPerSecond: round(n / seconds, 1),
      lateness: {
        p50: round(percentile(lateness, 50), 2),
        p95: round(percentile(lateness, 95), 2),
        p99: round(percentile(lateness, 99), 2),
        max: round(lateness[lateness.length - 1], 2),
      },
    });
    log(`agenda [${store.label}]: ${n} in ${run.seconds} s = ${run.jobsPerSecond}/s (${duplicates} duplicate messages); peak RSS ${run.proc!.peakRssMiB} MiB`);
    return run;
  } catch (err) {
    run.error = (err as Error).message.split('\n')[0];
    run.duplicates = undefined;
    const tail = worker.tail.slice(-5).join(' | ').slice(0, 500);
    if (tail) run.error += ` (Agenda worker said: ${tail})`;
    log(`agenda [${store.label}]: ${run.error}`);
    return run;
  } finally {
    await worker.stop();
    await producer.stop(true).catch(() => undefined);
    await admin
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined);
    await admin.close();
  }
}
