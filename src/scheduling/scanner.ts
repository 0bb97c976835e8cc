/**
 * The due-job scan: take back claims whose lease ran out, claim what is due (pending and
 * triggerAt <= now, oldest first, in batches), and hand each claim to the active-schedule-triggered
 * queue as one `due-job` job whose id names the occurrence, so a claim is enqueued once.
 *
 * Queries touch only what is due (indexes {status, triggerAt} and {status, leaseUntil}). Each
 * claim is a guarded update under a short per-job Redis lock (see db/guardLock.ts: FerretDB v1's
 * guarded updates are not atomic), so two scanners never claim one job.
 */
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import { lockMany } from '../db/guardLock';
import { DueJobPayload, dueJobJobId, dueJobJobName } from './schemas';
import { claimDueJob, extendDueJobLease, releaseDueJobClaim, takeBackExpiredClaim } from './transitions';
import { giveUpReminderOccurrence } from '../reminders/fire';

export interface ScanResult {
  /** pending → claimed by this run */
  claimed: number;
  /** claimed with an expired lease → pending (or failed after too many attempts) */
  reclaimed: number;
  /** `due-job` jobs added */
  enqueued: number;
  /** expired leases renewed because their job was still queued or running */
  leaseExtended: number;
}

/** A run stops after this many full batches; the next run (SCAN_INTERVAL_MS later) goes on. */
const maxBatchesPerRun = 10;
/** Guarded updates in flight at once within a batch. */
const parallelUpdates = 8;
/** BullMQ states in which the claim's job will still run: its lease is renewed, not taken back. */
const liveJobStates = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

type Ctx = Pick<AppContext, 'models' | 'queues' | 'redis' | 'config' | 'logger'>;

/** Runs fn over items, at most `limit` at a time; results in order. */
async function inParallel<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** The claim filter: pending and due, oldest first (exported so tests can explain it). */
export const dueFilter = (now: Date) => ({ status: 'pending' as const, triggerAt: { $lte: now } });
export const expiredClaimFilter = (now: Date) => ({ status: 'claimed' as const, leaseUntil: { $lt: now } });

export async function scanDueJobs(ctx: Ctx, now = new Date()): Promise<ScanResult> {
  const result: ScanResult = { claimed: 0, reclaimed: 0, enqueued: 0, leaseExtended: 0 };
  await takeBackExpiredClaims(ctx, now, result);

  const batchSize = ctx.config.SCAN_BATCH_SIZE;
  for (let batch = 0; batch < maxBatchesPerRun; batch++) {
    const candidates = await ctx.models.dueJobs.find(dueFilter(now), { _id: 1 }).sort({ triggerAt: 1 }).limit(batchSize).lean();
    if (!candidates.length) break;
    const claimed = await claimBatch(ctx, candidates.map((c) => String(c._id)), now);
    result.claimed += claimed.length;
    result.enqueued += await enqueueClaims(ctx, claimed);
    // Fewer than a batch: that was all. None claimed: another scanner holds them.
    if (candidates.length < batchSize || !claimed.length) break;
  }
  if (result.claimed || result.reclaimed) ctx.logger.info({ ...result }, 'due jobs scanned');
  return result;
}

const dueJobLockName = (id: string) => `due-job:${id}`;
const idOfLock = (name: string) => name.slice('due-job:'.length);

async function claimBatch(ctx: Ctx, ids: string[], now: Date): Promise<DueJobDoc[]> {
  const { locked, release } = await lockMany(ctx, ids.map(dueJobLockName));
  try {
    const claims = await inParallel(locked.map(idOfLock), parallelUpdates, (id) => claimDueJob(ctx.models.dueJobs, id, now, ctx.config.DUE_JOB_LEASE_MS));
    return claims.filter((c): c is DueJobDoc => c !== null);
  } finally {
    await release();
  }
}

/** One `due-job` job per claim; if Redis refuses them, the claims are given back at once. */
async function enqueueClaims(ctx: Ctx, claims: DueJobDoc[]): Promise<number> {
  if (!claims.length) return 0;
  const retention = ctx.config.JOB_RETENTION_SECONDS;
  const opts: JobsOptions = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: retention }, removeOnFail: { age: retention } };
  try {
    await ctx.queues['active-schedule-triggered'].addBulk(
      claims.map((job) => ({
        name: dueJobJobName,
        data: { v: 1, dueJobId: String(job._id), triggerAt: job.triggerAt.toISOString() } satisfies DueJobPayload,
        opts: { ...opts, jobId: dueJobJobId(String(job._id), job.triggerAt) },
      })),
    );
  } catch (err) {
    await Promise.all(claims.map((job) => releaseDueJobClaim(ctx.models.dueJobs, job._id, job.claimedAt!).catch(() => null)));
    throw err;
  }
  return claims.length;
}

/**
 * Claims whose lease ran out. If the claim's job is still queued or running (a backlog longer
 * than the lease) the lease is renewed; otherwise the job is gone or finished without moving the
 * due job, so its BullMQ job is removed (its id can be used again) and the due job is pending again.
 */
async function takeBackExpiredClaims(ctx: Ctx, now: Date, result: ScanResult): Promise<void> {
  const DueJobs = ctx.models.dueJobs;
  const expired = await DueJobs.find(expiredClaimFilter(now)).sort({ leaseUntil: 1 }).limit(ctx.config.SCAN_BATCH_SIZE).lean<DueJobDoc[]>();
  if (!expired.length) return;
  const byId = new Map(expired.map((j) => [String(j._id), j]));
  const { locked, release } = await lockMany(ctx, [...byId.keys()].map(dueJobLockName));
  try {
    await inParallel(locked.map(idOfLock), parallelUpdates, async (id) => {
      const job = byId.get(id)!;
      const queued = await ctx.queues['active-schedule-triggered'].getJob(dueJobJobId(id, job.triggerAt));
      const state = queued ? await queued.getState() : 'missing';
      if (liveJobStates.has(state)) {
        if (await extendDueJobLease(DueJobs, id, now, ctx.config.DUE_JOB_LEASE_MS)) result.leaseExtended += 1;
        return;
      }
      if (queued) await queued.remove().catch(() => undefined);
      let back = await takeBackExpiredClaim(DueJobs, job, now, `claim lease expired; its job was ${state}`);
      // A reminder outlives one occurrence that could never be fired: it rolls on to the next.
      if (back?.status === 'failed' && back.kind === 'reminder') back = await giveUpReminderOccurrence(ctx, back, now);
      if (back) {
        result.reclaimed += 1;
        ctx.logger.warn({ dueJobId: id, jobState: state, attempts: back.attempts, status: back.status }, 'due job claim expired; taken back');
      }
    });
  } finally {
    await release();
  }
}
