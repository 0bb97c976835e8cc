/**
 * The shared shape of a fault test: real worker processes (the compiled build) on one database and
 * queue prefix, an in-process api-mode dueflow to request notifications through the HTTP API, and
 * the Feishu-compatible server in this process. A run requests N notifications spread over many
 * users (one feishu_bot each, so Feishu's per-bot 5/s is not the bottleneck), lets the workers go,
 * and the scenario injects its fault when part of them arrived. At the end it counts what Feishu
 * received against the records: lost, duplicates, and the deliveries in flight at the fault.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asService, asUser, call } from '../support/api';
import { testEnv } from '../support/env';
import type { FeishuServer } from '../support/feishuServer';
import { startFeishuServer } from '../support/feishuServer';
import type { TestDueflow } from '../support/harness';
import { startTestDueflow } from '../support/harness';
import type { DueflowProcess } from '../support/processes';
import { spawnDueflow } from '../support/processes';

export interface ChaosOptions {
  scenario: string;
  /** Notifications requested (all of them before the workers start, so all are in flight). */
  messages?: number;
  users?: number;
  /** The users' feishu_bot format: `text` (default) for the notification scenarios, `card` for active-scheduling cards. */
  channelFormat?: 'card' | 'post' | 'text';
  /** Environment for the workers and the in-process API (REDIS_URL, MONGODB_URI, tunables...). */
  env?: Record<string, string>;
}

export interface InFlight {
  /** Records in `sending` at the moment of the fault. */
  sending: number;
  /** Active notification jobs at the moment of the fault. */
  active: number;
  /** sending + active: the bound the duplicates are held to. */
  total: number;
  /** Deliveries the running workers can have in flight at most (processes x WORKER_CONCURRENCY). */
  concurrencyBound: number;
}

export interface ChaosResult {
  scenario: string;
  fault: string;
  messages: number;
  /** Markers the Feishu-compatible server never received. */
  lost: number;
  /** Records not in the expected final status. */
  notFinal: number;
  /** Messages received more than once, counted as extra copies. */
  duplicates: number;
  inFlight: number;
  concurrencyBound: number;
  seconds: number;
  statuses: Record<string, number>;
  /** Processes that exited without the test asking them to. */
  crashed: number;
  /** Why notification jobs failed (retried or not), by message, from the workers' logs. */
  jobErrors: Record<string, number>;
  finishedAt: string;
}

export const RESULTS_FILE = process.env.CHAOS_RESULTS ?? path.join(os.tmpdir(), 'dueflow-chaos-results.jsonl');

/**
 * Tunables of every run (a scenario may override them):
 * - WORKER_CONCURRENCY 5 per process: FerretDB v1's SQLite backend serialises writes and its
 *   findAndModify (every record transition) scans the collection (~50 ms with 500 records), so
 *   the store does ~15-20 transitions/s whatever the concurrency; 50 concurrent jobs per process
 *   only queue up on SQLite's lock until it answers SQLITE_BUSY (after its 10 s busy timeout).
 * - Backoff 1 s doubling to 8 s, 8 attempts (production: 30 s to 30 min, 5 attempts): the same
 *   exponential shape with jitter, short enough that a run ends in minutes.
 */
export const chaosTunables: Record<string, string> = {
  LOG_LEVEL: 'info',
  WORKER_CONCURRENCY: '5',
  NOTIFY_ATTEMPTS: '8',
  NOTIFY_BACKOFF_MS: '1000',
  NOTIFY_BACKOFF_MAX_MS: '8000',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const markerOf = (body: unknown): number | undefined => {
  const m = /Chaos n-(\d+)\b/.exec(JSON.stringify(body));
  return m ? Number(m[1]) : undefined;
};

export class ChaosRun {
  readonly procs: DueflowProcess[] = [];
  /** Processes the test stopped or killed on purpose: their exit is no crash. */
  private readonly expectedExits = new Set<DueflowProcess>();
  readonly recordIds: string[] = [];
  submittedAt = 0;
  readonly log = (msg: string) => process.stderr.write(`[chaos ${this.opts.scenario}] ${msg}\n`);

  private constructor(
    readonly opts: Required<Omit<ChaosOptions, 'env'>> & { env: Record<string, string> },
    readonly env: Record<string, string>,
    readonly api: TestDueflow,
    readonly feishu: FeishuServer,
    readonly userIds: string[],
  ) {}

  static async start(options: ChaosOptions): Promise<ChaosRun> {
    // CHAOS_MESSAGES shrinks a run for a quick local try; the recorded runs use 500.
    const opts = { messages: Number(process.env.CHAOS_MESSAGES ?? 500), users: 50, channelFormat: 'text' as const, env: {}, ...options };
    const env = testEnv({ ...chaosTunables, ...opts.env });
    const feishu = await startFeishuServer(); // Feishu's own limits on: 5/s and 100/min per bot
    const api = await startTestDueflow('api', { ...env, LOG_LEVEL: 'warn' });
    const runId = randomBytes(3).toString('hex');
    const userIds = Array.from({ length: opts.users }, (_, u) => `chaos-${runId}-u${u}`);
    await Promise.all(
      userIds.map(async (userId, u) => {
        const token = `bot${runId}x${u}`;
        feishu.registerBot(token);
        const res = await call(api.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
          auth: await asUser(userId),
          body: { enabled: true, webhookUrl: feishu.botUrl(token), format: opts.channelFormat },
        });
        if (res.status !== 200) throw new Error(`channel for ${userId}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      }),
    );
    return new ChaosRun(opts, env, api, feishu, userIds);
  }

  get workerConcurrency(): number {
    return Number(this.env.WORKER_CONCURRENCY);
  }

  get Records() {
    return this.api.ctx.models.notificationRecords;
  }

  get queue() {
    return this.api.ctx.queues.notifications;
  }

  /** Requests every notification through the HTTP API (10 at a time), in user order round robin. */
  async submitAll(): Promise<void> {
    this.submittedAt = Date.now();
    const n = this.opts.messages;
    let next = 0;
    const auth = asService();
    const one = async (i: number) => {
      const userId = this.userIds[i % this.userIds.length];
      const body = {
        userId,
        dedupeKey: `chaos-n-${i}`,
        triggerType: 'important_urgent_task',
        target: { type: 'task', id: `task-${i}` },
        message: { title: `Chaos n-${i}`, summary: `fault test message ${i}`, actionText: 'Open', actionUrl: 'http://dueflow.test/app' },
      };
      const res = await call(this.api.baseUrl, 'POST', '/api/v1/notifications', { auth, body });
      if (res.status !== 202) throw new Error(`request n-${i}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      this.recordIds[i] = res.body.id;
    };
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < n) await one(next++);
      }),
    );
    this.log(`requested ${n} notifications in ${((Date.now() - this.submittedAt) / 1000).toFixed(1)} s`);
  }

  /** A worker process on the run's database and queues; resolves once it is started. */
  async startWorker(extra: Record<string, string> = {}): Promise<DueflowProcess> {
    const p = spawnDueflow({ ...this.env, DUEFLOW_MODE: 'worker', ...extra });
    this.procs.push(p);
    await p.waitForLog('dueflow started', 30_000);
    return p;
  }

  /** Says the process's coming exit is the test's doing, not a crash. */
  expectExit(p: DueflowProcess): void {
    this.expectedExits.add(p);
  }

  runningWorkers(): DueflowProcess[] {
    return this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  }

  crashed(): DueflowProcess[] {
    return this.procs.filter((p) => !this.expectedExits.has(p) && (p.child.exitCode !== null || p.child.signalCode !== null));
  }

  /** Parsed JSON log lines of every worker process. */
  workerLogs(): Array<Record<string, any>> {
    return this.procs
      .flatMap((p) => p.output)
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
  }

  /** Failed notification job attempts by error (ids blanked), from the workers' logs. */
  jobErrors(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const l of this.workerLogs()) {
      if (l.msg !== 'notification job failed' || typeof l.err !== 'string') continue;
      const key = l.err
        .replace(/\[[^\]]*\]\s*/g, '')
        .replace(/[0-9a-f]{24}/g, '<id>')
        .slice(0, 100);
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Copies received per marker. */
  received(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const m of this.feishu.messages) {
      const i = markerOf(m.body);
      if (i !== undefined) counts.set(i, (counts.get(i) ?? 0) + 1);
    }
    return counts;
  }

  /** Waits until `fraction` of the messages reached the Feishu-compatible server. */
  async waitForReceived(fraction: number, timeoutMs = 240_000): Promise<void> {
    const want = Math.ceil(this.opts.messages * fraction);
    const deadline = Date.now() + timeoutMs;
    while (this.feishu.messages.length < want) {
      if (Date.now() > deadline) throw new Error(`only ${this.feishu.messages.length} of ${want} messages received within ${timeoutMs} ms`);
      if (this.crashed().length) throw new Error(`a worker exited:\n${this.crashed()[0].output.slice(-30).join('\n')}`);
      await sleep(10);
    }
  }

  /** Deliveries in flight right now: records in `sending` and active jobs. Take it just before the fault. */
  async inFlight(): Promise<InFlight> {
    const [sending, active] = await Promise.all([this.Records.countDocuments({ status: 'sending' }), this.queue.getActiveCount()]);
    return { sending, active, total: sending + active, concurrencyBound: this.runningWorkers().length * this.workerConcurrency };
  }

  async statuses(): Promise<Record<string, number>> {
    const rows = await this.Records.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]);
    return Object.fromEntries(rows.map((r) => [r._id, r.n]));
  }

  /**
   * Waits until every record is final and every marker arrived (or the time is up), then
   * measures. `expected` is the final status every record should reach.
   */
  async finish(fault: string, inFlight: InFlight, opts: { timeoutMs?: number; expected?: string } = {}): Promise<ChaosResult> {
    const n = this.opts.messages;
    const expected = opts.expected ?? 'sent';
    const deadline = Date.now() + (opts.timeoutMs ?? 420_000);
    let statuses: Record<string, number> = {};
    let lastProgress = Date.now();
    for (;;) {
      statuses = await this.statuses().catch(() => statuses);
      const arrived = this.received().size;
      if (statuses[expected] === n && arrived === n) break;
      if (Date.now() > deadline) {
        this.log(`timed out: ${JSON.stringify(statuses)}, ${arrived} of ${n} markers received`);
        await this.diagnose();
        break;
      }
      if (Date.now() - lastProgress > 15_000) {
        lastProgress = Date.now();
        this.log(
          `waiting: ${JSON.stringify(statuses)}, ${arrived} of ${n} markers received, queue ${JSON.stringify(await this.queue.getJobCounts().catch(() => ({})))}`,
        );
      }
      await sleep(2000); // counting statuses scans the collection on FerretDB: not too often
    }
    const seconds = (Date.now() - this.submittedAt) / 1000;
    await sleep(1000); // a straggling copy would still count
    const counts = this.received();
    let duplicates = 0;
    for (const c of counts.values()) duplicates += c - 1;
    const result: ChaosResult = {
      scenario: this.opts.scenario,
      fault,
      messages: n,
      lost: n - counts.size,
      notFinal: n - (statuses[expected] ?? 0),
      duplicates,
      inFlight: inFlight.total,
      concurrencyBound: inFlight.concurrencyBound,
      seconds: Math.round(seconds * 10) / 10,
      statuses,
      crashed: this.crashed().length,
      jobErrors: this.jobErrors(),
      finishedAt: new Date().toISOString(),
    };
    const line = `${result.scenario}: messages ${n}, fault: ${fault}, lost ${result.lost}, not ${expected} ${result.notFinal}, duplicates ${duplicates}, in-flight bound ${inFlight.total} (sending ${inFlight.sending} + active ${inFlight.active}; concurrency ${inFlight.concurrencyBound}), ${result.seconds} s`;
    process.stderr.write(`\nCHAOS ${line}\n      job errors: ${JSON.stringify(result.jobErrors)}\n\n`);
    fs.appendFileSync(RESULTS_FILE, `${JSON.stringify(result)}\n`);
    return result;
  }

  /** What is still unfinished and why, plus the workers' last words. */
  async diagnose(): Promise<void> {
    const stuck = await this.Records.find(
      { status: { $ne: 'sent' } },
      { status: 1, lastErrorCode: 1, attemptCount: 1, sendingSince: 1, nextRetryAt: 1, updatedAt: 1, history: 1 },
    )
      .limit(5)
      .lean()
      .catch((err) => [{ error: String(err) }]);
    this.log(`unfinished records (first 5): ${JSON.stringify(stuck.map((r: any) => ({ ...r, history: r.history?.slice(-4) })))}`);
    for (const r of stuck as any[]) {
      const job = await this.queue.getJob(`notification-${String(r._id)}`).catch(() => undefined);
      this.log(`  job of ${String(r._id)}: ${job ? `${await job.getState()} attemptsMade ${job.attemptsMade} failedReason ${job.failedReason}` : 'missing'}`);
    }
    this.log(`queue: ${JSON.stringify(await this.queue.getJobCounts().catch(() => ({})))}`);
    for (const p of this.procs)
      this.log(
        `worker ${p.child.pid} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}) last lines:\n${p.output
          .filter((l) => !l.includes('"delivery attempt"'))
          .slice(-15)
          .join('\n')}`,
      );
  }

  /** Kills the workers, drops the database, obliterates the queues, closes the Feishu server. */
  async cleanup(): Promise<void> {
    await Promise.all(
      this.procs.map(async (p) => {
        this.expectedExits.add(p);
        if (p.child.exitCode === null && p.child.signalCode === null) {
          p.kill('SIGKILL');
          await p.waitForExit(10_000).catch(() => undefined);
        }
      }),
    );
    await this.api.stop().catch((err) => this.log(`cleanup of database and queues failed: ${(err as Error).message}`));
    await this.feishu.close();
  }
}

/** The assertions every scenario shares. */
export function expectDelivered(result: ChaosResult): void {
  expect(result.crashed).toBe(0);
  expect(result.lost).toBe(0);
  expect(result.notFinal).toBe(0);
  expect(result.statuses.dead ?? 0).toBe(0);
  expect(result.duplicates).toBeLessThanOrEqual(result.inFlight);
}

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `dueflow-chaos-${name}-`));
}

export { sleep };
