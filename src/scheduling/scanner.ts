/**
 * The due-job scan: take back claims whose lease ran out, claim what falls due before the next
 * scan (pending and triggerAt <= now + lookahead, oldest first, in batches; the first batch's
 * query finds the expired claims too, so a scan with little to do is one query), and hand each claim
 * to the active-schedule-triggered queue as one `due-job` job, delayed until its triggerAt, whose
 * id names the occurrence, so a claim is enqueued once. A job thus fires at its time, not up to
 * one SCAN_INTERVAL_MS later; what changed meanwhile is checked when it runs (fireDueJob).
 *
 * Queries touch only what is due (indexes {status, triggerAt} and {status, leaseUntil}). A
 * batch is claimed in one guarded update (and one read back of its claims), under a per-job Redis lock
 * where the store needs one (db/guarded.ts guardedMany: FerretDB v1's guarded updates are not
 * atomic), so two scanners never claim one job; each job carries its claim, so its firing does not
 * read the due job again; taking back an expired claim holds the lock on every store, as it also removes
 * the claim's BullMQ job, which no guard covers. A claim is leased until the scan's horizon +
 * DUE_JOB_LEASE_MS: if its delayed job is lost (Redis flushed), a scan after that takes it back
 * and it fires then.
 */
import type { JobsOptions } from 'bullmq';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import { exclusively, guardedMany, StoreBusyError } from '../db/guarded';
import type { DueJobPayload } from './schemas';
import { dueJobJobId, dueJobJobName } from './schemas';
import { claimDueJobs, extendDueJobLease, releaseDueJobClaim, takeBackExpiredClaim } from './transitions';
import { dueJobLockName, onDueJob } from './dueJobs';
import { giveUpReminderOccurrence } from '../reminders/fire';

export interface ScanResult {
  /** pending → claimed by this run */
  claimed: number;
  /** of those, claimed ahead of their triggerAt (their jobs wait in BullMQ as delayed jobs) */
  ahead: number;
  /** claimed with an expired lease → pending (or failed after too many attempts) */
  reclaimed: number;
  /** `due-job` jobs added */
  enqueued: number;
  /** expired leases renewed because their job was still queued or running */
  leaseExtended: number;
}

/** A run stops after this many full batches; the next run (SCAN_INTERVAL_MS later) goes on. */
const maxBatchesPerRun = 10;
/** Take-backs in flight at once. */
const parallelUpdates = 8;
/** BullMQ states in which the claim's job will still run: its lease is renewed, not taken back. */
const liveJobStates = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

type Ctx = Pick<AppContext, 'models' | 'queues' | 'redis' | 'config' | 'logger' | 'store'>;

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

/** The claim filter: pending and due by `until`, oldest first (exported so tests can explain it). */
export const dueFilter = (until: Date) => ({ status: 'pending' as const, triggerAt: { $lte: until } });
export const expiredClaimFilter = (now: Date) => ({ status: 'claimed' as const, leaseUntil: { $lt: now } });
/** A scan's first query: what is due by `until`, and the claims whose lease ran out. */
export const firstScanFilter = (now: Date, until: Date) => ({ $or: [dueFilter(until), expiredClaimFilter(now)] });

/**
 * How far ahead a scan claims: the next scan is one interval later, and half an interval more
 * covers one that starts late (a long scan before it, a busy scanner worker), so no job falls
 * between two scans' horizons and fires late.
 */
export const scanLookaheadMs = (config: Pick<Ctx['config'], 'SCAN_INTERVAL_MS'>) => Math.ceil(config.SCAN_INTERVAL_MS * 1.5);

export async function scanDueJobs(ctx: Ctx, now = new Date()): Promise<ScanResult> {
  const result: ScanResult = { claimed: 0, ahead: 0, reclaimed: 0, enqueued: 0, leaseExtended: 0 };
  const DueJobs = ctx.models.dueJobs;
  const batchSize = ctx.config.SCAN_BATCH_SIZE;
  const horizon = new Date(now.getTime() + scanLookaheadMs(ctx.config));
  // The first query finds the claims whose lease ran out too: one query a scan when little is due.
  const first = await DueJobs.find(firstScanFilter(now, horizon)).sort({ triggerAt: 1 }).limit(batchSize).lean<DueJobDoc[]>();
  // Taken back and still due: this scan claims them again.
  const takenBack = await takeBackExpiredClaims(
    ctx,
    first.filter((j) => j.status === 'claimed'),
    now,
    result,
  );
  for (let batch = 0; batch < maxBatchesPerRun; batch++) {
    const candidates =
      batch === 0
        ? [...first.filter((j) => j.status === 'pending'), ...takenBack.filter((j) => j.status === 'pending' && j.triggerAt.getTime() <= horizon.getTime())]
        : await DueJobs.find(dueFilter(horizon), { _id: 1, triggerAt: 1 }).sort({ triggerAt: 1 }).limit(batchSize).lean<Candidate[]>();
    if (!candidates.length) break;
    const claimed = await claimBatch(ctx, candidates, now, horizon);
    result.claimed += claimed.length;
    result.ahead += claimed.filter((j) => j.triggerAt.getTime() > now.getTime()).length;
    result.enqueued += await enqueueClaims(ctx, claimed);
    // Fewer than a batch: that was all. None claimed: another scanner holds them.
    if ((batch === 0 ? first.length : candidates.length) < batchSize || !claimed.length) break;
  }
  if (result.claimed || result.reclaimed) ctx.logger.info({ ...result }, 'due jobs scanned');
  return result;
}

/** What a claim's job carries, so that its firing need not read the due job again. */
const claimFields = ['kind', 'taskId', 'reminderId', 'thresholdAt', 'attempts'] as const;
type Candidate = Pick<DueJobDoc, '_id' | 'triggerAt'>;
type Claim = Pick<DueJobDoc, '_id' | 'triggerAt' | 'claimedAt' | (typeof claimFields)[number]>;

async function claimBatch(ctx: Ctx, candidates: Candidate[], now: Date, until: Date): Promise<Claim[]> {
  const byLock = new Map(candidates.map((c) => [dueJobLockName(String(c._id)), c]));
  return guardedMany(ctx, [...byLock.keys()], (names) =>
    claimDueJobs(ctx.models.dueJobs, {
      ids: names.map((name) => byLock.get(name)!._id),
      now,
      until,
      leaseMs: ctx.config.DUE_JOB_LEASE_MS,
      fields: claimFields,
    }),
  );
}

function payloadOf(job: Claim): DueJobPayload {
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : undefined);
  return {
    v: 1,
    dueJobId: String(job._id),
    triggerAt: job.triggerAt.toISOString(),
    claim: {
      claimedAt: job.claimedAt!.toISOString(),
      kind: job.kind ?? 'task_urgency',
      taskId: job.taskId ?? undefined,
      reminderId: job.reminderId ?? undefined,
      thresholdAt: iso(job.thresholdAt),
      attempts: job.attempts ?? 0,
    },
  };
}

/**
 * One `due-job` job per claim, delayed until its triggerAt (none for one already due); if Redis
 * refuses them, the claims are given back at once.
 */
async function enqueueClaims(ctx: Ctx, claims: Claim[]): Promise<number> {
  if (!claims.length) return 0;
  const retention = ctx.config.JOB_RETENTION_SECONDS;
  const opts: JobsOptions = {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: retention },
    removeOnFail: { age: retention },
  };
  // BullMQ times a delay from when it adds the job, on this clock: read it as late as possible.
  const clock = Date.now();
  try {
    await ctx.queues['active-schedule-triggered'].addBulk(
      claims.map((job) => ({
        name: dueJobJobName,
        data: payloadOf(job),
        opts: { ...opts, jobId: dueJobJobId(String(job._id), job.triggerAt), delay: Math.max(0, job.triggerAt.getTime() - clock) },
      })),
    );
  } catch (err) {
    // The batch's locks are gone by now: each release takes its job's lock again (one it cannot get is taken back when its lease ends).
    const release = (job: Claim) => onDueJob(ctx, job._id, () => releaseDueJobClaim(ctx.models.dueJobs, job._id, job.claimedAt!));
    await Promise.all(claims.map((job) => release(job).catch(() => null)));
    throw err;
  }
  return claims.length;
}

/**
 * Claims whose lease ran out. If the claim's job is still queued or running (a backlog longer
 * than the lease) the lease is renewed; otherwise the job is gone or finished without moving the
 * due job, so its BullMQ job is removed (its id can be used again) and the due job is pending again.
 * Returns the jobs taken back, as they now are.
 */
async function takeBackExpiredClaims(ctx: Ctx, expired: DueJobDoc[], now: Date, result: ScanResult): Promise<DueJobDoc[]> {
  const back = await inParallel(expired, parallelUpdates, async (job) => {
    const id = String(job._id);
    // Under the job's lock on every store: it spans the BullMQ job's removal too, which no guard covers
    // (a second scan taking back the same claim could remove the job of its new claim). A busy one waits for the next scan.
    const taken = await exclusively(ctx, dueJobLockName(id), () => takeBack(ctx, job, now, result), 0).catch((err) => {
      if (!(err instanceof StoreBusyError)) throw err;
      return null;
    });
    // A reminder outlives one occurrence that could never be fired: it rolls on to the next. Only now, the due job's
    // lock released: giving up takes the reminder's lock, then the due job's, the order every writer of both takes them in.
    if (taken?.status !== 'failed' || taken.kind !== 'reminder') return taken;
    // A due job still busy after the reminder rolled on stays failed: the reconcile puts it back (repairStuckReminderJobs).
    return giveUpReminderOccurrence(ctx, taken, now).catch((err) => {
      if (err instanceof StoreBusyError) return taken;
      throw err;
    });
  });
  return back.filter((j): j is DueJobDoc => j !== null);
}

async function takeBack(ctx: Ctx, job: DueJobDoc, now: Date, result: ScanResult): Promise<DueJobDoc | null> {
  const DueJobs = ctx.models.dueJobs;
  const id = String(job._id);
  const queued = await ctx.queues['active-schedule-triggered'].getJob(dueJobJobId(id, job.triggerAt));
  const state = queued ? await queued.getState() : 'missing';
  if (liveJobStates.has(state)) {
    if (await extendDueJobLease(DueJobs, id, now, ctx.config.DUE_JOB_LEASE_MS)) result.leaseExtended += 1;
    return null;
  }
  if (queued) await queued.remove().catch(() => undefined);
  const back = await takeBackExpiredClaim(DueJobs, job, now, `claim lease expired; its job was ${state}`);
  if (back) {
    result.reclaimed += 1;
    ctx.logger.warn({ dueJobId: id, jobState: state, attempts: back.attempts, status: back.status }, 'due job claim expired; taken back');
  }
  return back;
}
