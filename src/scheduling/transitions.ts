/**
 * The due job's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved the job first):
 *
 *   pending ──claim──► claimed ──fire──► triggered | skipped | canceled
 *      ▲                  │ └──────────► pending (threshold moved later, or a reminder's next occurrence: a new occurrence)
 *      └──retry (attempts+1, triggerAt later)──┤   (an error, or a lease that ran out)
 *                         └──────────► failed (after dueJobMaxAttempts; lastError says why)
 *
 * What the job is for moves it from outside the claim too: inserted pending; an open one (pending,
 * claimed, failed) → canceled when its task no longer wants it; any → pending as a new occurrence
 * (the task's threshold moved); failed → pending at a reminder's next occurrence.
 *
 * Every writer of a due job holds its lock, `due-job:<id>`, where the store needs one
 * (db/guarded.ts; scheduling/dueJobs.ts onDueJob): FerretDB v1 writes back the whole document.
 *
 * A claim can be made ahead of time (the scanner claims what falls due before its next run and
 * hands BullMQ a delayed job for triggerAt): its lease then runs from triggerAt, not from the claim.
 * Transitions out of `claimed` given the claim itself (`_id` and `claimedAt`) match only that
 * claim, so a stale firing cannot settle a later claim of the same job.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import { isDuplicateKey } from '../db/errors';
import { retryDelayMs } from '../notifications/backoff';

type DueJobs = AppContext['models']['dueJobs'];

/** Why a due job ended without firing, or failed (stored in `reason`). */
export type DueJobReason =
  | 'task_not_found'
  | 'task_completed'
  | 'task_deleted'
  | 'threshold_removed'
  | 'task_not_important'
  | 'task_already_scheduled'
  | 'reminder_not_found'
  | 'reminder_canceled'
  | 'reminder_completed'
  | 'missed_beyond_catchup'
  | 'attempts_exhausted';
type Id = Types.ObjectId | string;
/** A claim to move: the job's id (any claim of it), or the claim as read (that claim only). */
export type ClaimRef = Id | { _id: Id; claimedAt?: Date | null };

/** A due job that failed this many times (errors or expired claims) is `failed` for good. */
export const dueJobMaxAttempts = 5;
/** Retry delays: 30 s doubling, capped at 30 min (±20% jitter). */
export const dueJobRetryDelayMs = (failedAttempts: number) => retryDelayMs(failedAttempts, 30_000, 1_800_000);

const after = { returnDocument: 'after' as const };

/** The guard of a transition out of `claimed`: that job claimed, by the given claim when there is one. */
function claimedFilter(ref: ClaimRef): Record<string, unknown> {
  if (typeof ref === 'string' || ref instanceof Types.ObjectId) return { _id: ref, status: 'claimed' };
  return ref.claimedAt ? { _id: ref._id, status: 'claimed', claimedAt: ref.claimedAt } : { _id: ref._id, status: 'claimed' };
}

/**
 * pending → claimed, a batch, in one update and one read back of what it claimed (two commands
 * whatever the batch's size; a statement per job would be one command per job on some stores).
 * Guard: among `ids`, pending and due by `until` (the scan's horizon: a job moved since the scan's
 * read is claimed where it is now, if still within it). Lease: until `until` + leaseMs, so a claim
 * made ahead covers its wait until its triggerAt, which is at the latest `until`.
 * Returns the claims this call made (read back by its random claim token), as stored now.
 */
export async function claimDueJobs<P extends keyof DueJobDoc>(
  DueJobs: DueJobs,
  { ids, now, until, leaseMs, fields }: { ids: Id[]; now: Date; until: Date; leaseMs: number; fields: readonly P[] },
): Promise<Array<Pick<DueJobDoc, P | '_id' | 'triggerAt' | 'claimedAt'>>> {
  if (!ids.length) return [];
  const claimToken = randomUUID();
  await DueJobs.updateMany(
    { _id: { $in: ids }, status: 'pending', triggerAt: { $lte: until } },
    { $set: { status: 'claimed', claimedAt: now, leaseUntil: new Date(until.getTime() + leaseMs), claimToken } },
  );
  const projection = Object.fromEntries(['_id', 'triggerAt', 'claimedAt', ...fields].map((f) => [f, 1]));
  return DueJobs.find({ _id: { $in: ids }, status: 'claimed', claimToken }, projection)
    .sort({ triggerAt: 1 })
    .lean<Array<Pick<DueJobDoc, P | '_id' | 'triggerAt' | 'claimedAt'>>>();
}

/**
 * claimed → pending, nothing else changed: the claim was never handed on (enqueueing failed).
 * Guard: claimed by this claim (claimedAt). Returns the pending job, or null.
 */
export function releaseDueJobClaim(DueJobs: DueJobs, id: Id, claimedAt: Date) {
  return DueJobs.findOneAndUpdate(
    { _id: id, status: 'claimed', claimedAt },
    { $set: { status: 'pending' }, $unset: { claimedAt: '', leaseUntil: '' } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * claimed → claimed until now + leaseMs: its job is still queued or running.
 * Guard: claimed with the lease run out (leaseUntil < now). Returns the job, or null.
 */
export function extendDueJobLease(DueJobs: DueJobs, id: Id, now: Date, leaseMs: number) {
  return DueJobs.findOneAndUpdate(
    { _id: id, status: 'claimed', leaseUntil: { $lt: now } },
    { $set: { leaseUntil: new Date(now.getTime() + leaseMs) } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * claimed → pending at now + backoff with attempts + 1 (a failed attempt), or → failed for good
 * once attempts reach dueJobMaxAttempts. Guard: claimed (by this claim when `job` carries
 * claimedAt). Returns the job as written, or null.
 */
export function retryOrFailDueJob(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'attempts'> & { claimedAt?: Date | null }, now: Date, error: string) {
  const attempts = (job.attempts ?? 0) + 1;
  const update =
    attempts >= dueJobMaxAttempts
      ? { $set: { status: 'failed', attempts, lastError: error, reason: 'attempts_exhausted' }, $unset: { claimedAt: '', leaseUntil: '' } }
      : {
          $set: { status: 'pending', attempts, lastError: error, triggerAt: new Date(now.getTime() + dueJobRetryDelayMs(attempts)) },
          $unset: { claimedAt: '', leaseUntil: '' },
        };
  return DueJobs.findOneAndUpdate(claimedFilter(job), update, after).lean<DueJobDoc>();
}

/**
 * claimed → pending, still due (the same scan claims it again), attempts + 1; → failed for good
 * once attempts reach dueJobMaxAttempts (a job whose every run dies stops there).
 * Guard: claimed with the lease run out (leaseUntil < now). Returns the job as written, or null.
 */
export function takeBackExpiredClaim(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'attempts'>, now: Date, error: string) {
  const attempts = (job.attempts ?? 0) + 1;
  const set =
    attempts >= dueJobMaxAttempts
      ? { status: 'failed', attempts, lastError: error, reason: 'attempts_exhausted' }
      : { status: 'pending', attempts, lastError: error };
  return DueJobs.findOneAndUpdate(
    { _id: job._id, status: 'claimed', leaseUntil: { $lt: now } },
    { $set: set, $unset: { claimedAt: '', leaseUntil: '' } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * claimed → pending at `until`, attempts unchanged: the job could not be looked at now (its
 * reminder is being written). A later triggerAt gives its next claim a new BullMQ job id.
 * Guard: claimed by this claim (claimedAt). Returns the pending job, or null.
 */
export function deferDueJob(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'claimedAt'>, until: Date) {
  return DueJobs.findOneAndUpdate(
    { _id: job._id, status: 'claimed', claimedAt: job.claimedAt },
    { $set: { status: 'pending', triggerAt: until }, $unset: { claimedAt: '', leaseUntil: '' } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * claimed → triggered | skipped | canceled, with why (and the trigger it created; an undefined
 * field is removed). Guard: claimed (by this claim when given one). Returns the job, or null.
 */
export function finishDueJob(
  DueJobs: DueJobs,
  claim: ClaimRef,
  status: 'triggered' | 'skipped' | 'canceled',
  fields: { reason?: DueJobReason; triggerId?: string },
) {
  const set: Record<string, unknown> = { status };
  const unset: Record<string, ''> = { claimedAt: '', leaseUntil: '' };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) unset[k] = '';
    else set[k] = v;
  }
  return DueJobs.findOneAndUpdate(claimedFilter(claim), { $set: set, $unset: unset }, after).lean<DueJobDoc>();
}

/** States in which an occurrence is still to be looked at; what no longer wants it cancels it. */
export const openDueJobStatuses: DueJobDoc['status'][] = ['pending', 'claimed', 'failed'];

/** A new due job's fields (its state is the insert's: pending at `at`, a first occurrence). */
export type NewDueJob = Pick<DueJobDoc, 'userId' | 'key' | 'kind'> & Partial<Pick<DueJobDoc, 'taskId' | 'reminderId'>>;

/**
 * → pending at `at`, a first occurrence. Guard: the unique key (a new job has no other writer to
 * lock out; two inserts of one key are decided by the index). Returns the job inserted, or null
 * when one with that key exists.
 */
export async function insertDueJob(DueJobs: DueJobs, fields: NewDueJob, at: Date): Promise<DueJobDoc | null> {
  try {
    return (await DueJobs.create({ ...fields, triggerAt: at, thresholdAt: at, status: 'pending' })).toObject() as DueJobDoc;
  } catch (err) {
    if (isDuplicateKey(err)) return null;
    throw err;
  }
}

/**
 * pending | claimed | failed → canceled, with why (a claim's lease removed): what it was for no
 * longer wants it (task done, deleted, threshold removed). Guard: still open. Returns the
 * canceled job, or null.
 */
export function cancelDueJob(DueJobs: DueJobs, id: Id, reason: DueJobReason) {
  return DueJobs.findOneAndUpdate(
    { _id: id, status: { $in: openDueJobStatuses } },
    { $set: { status: 'canceled', reason }, $unset: { claimedAt: '', leaseUntil: '' } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * any state → pending at `at` as a new occurrence: the task's threshold moved, or it wants its
 * canceled occurrence back. Guard: the id only (the task decides, whatever the job's state).
 * Returns the pending job, or null when it is gone.
 */
export function restartDueJob(DueJobs: DueJobs, id: Id, at: Date) {
  return DueJobs.findOneAndUpdate({ _id: id }, newOccurrence(at), after).lean<DueJobDoc>();
}

/**
 * failed → pending at `at` as a new occurrence: a reminder's occurrence that every claim failed
 * is given up and the reminder rolls on. Guard: failed. Returns the pending job, or null.
 */
export function restartFailedDueJob(DueJobs: DueJobs, id: Id, at: Date) {
  return DueJobs.findOneAndUpdate({ _id: id, status: 'failed' }, newOccurrence(at), after).lean<DueJobDoc>();
}

/** The update that starts a fresh occurrence at `at` (pending, no attempts, nothing left of the last one). */
function newOccurrence(at: Date) {
  return {
    $set: { status: 'pending', triggerAt: at, thresholdAt: at, attempts: 0 },
    $unset: { reason: '', claimedAt: '', leaseUntil: '', lastError: '', triggerId: '' },
  };
}

/**
 * claimed → pending at `at` as a new occurrence (the task's threshold or the reminder moved).
 * Guard: claimed (by this claim when given one). Returns the pending job, or null.
 */
export function postponeDueJob(DueJobs: DueJobs, claim: ClaimRef, at: Date) {
  return DueJobs.findOneAndUpdate(claimedFilter(claim), newOccurrence(at), after).lean<DueJobDoc>();
}
