/**
 * The due job's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved the job first):
 *
 *   pending ──claim──► claimed ──fire──► triggered | skipped | canceled
 *      ▲                  │ └──────────► pending (threshold moved later, or a reminder's next occurrence: a new occurrence)
 *      └──retry (attempts+1, triggerAt later)──┤   (an error, or a lease that ran out)
 *                         └──────────► failed (after dueJobMaxAttempts; lastError says why)
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import { retryDelayMs } from '../notifications/backoff';

type DueJobs = AppContext['models']['dueJobs'];
type Id = Types.ObjectId | string;

/** A due job that failed this many times (errors or expired claims) is `failed` for good. */
export const dueJobMaxAttempts = 5;
/** Retry delays: 30 s doubling, capped at 30 min (±20% jitter). */
export const dueJobRetryDelayMs = (failedAttempts: number) => retryDelayMs(failedAttempts, 30_000, 1_800_000);

const after = { returnDocument: 'after' as const };

/** pending and due → claimed, leased until now + leaseMs. */
export function claimDueJob(DueJobs: DueJobs, id: Id, now: Date, leaseMs: number) {
  return DueJobs.findOneAndUpdate(
    { _id: id, status: 'pending', triggerAt: { $lte: now } },
    { $set: { status: 'claimed', claimedAt: now, leaseUntil: new Date(now.getTime() + leaseMs) } },
    after,
  ).lean<DueJobDoc>();
}

/** claimed → pending, unchanged otherwise: the claim was never handed on (enqueueing failed). */
export function releaseDueJobClaim(DueJobs: DueJobs, id: Id, claimedAt: Date) {
  return DueJobs.findOneAndUpdate({ _id: id, status: 'claimed', claimedAt }, { $set: { status: 'pending' }, $unset: { claimedAt: '', leaseUntil: '' } }, after).lean<DueJobDoc>();
}

/** claimed with an expired lease → claimed until now + leaseMs: its job is still queued or running. */
export function extendDueJobLease(DueJobs: DueJobs, id: Id, now: Date, leaseMs: number) {
  return DueJobs.findOneAndUpdate(
    { _id: id, status: 'claimed', leaseUntil: { $lt: now } },
    { $set: { leaseUntil: new Date(now.getTime() + leaseMs) } },
    after,
  ).lean<DueJobDoc>();
}

/**
 * A failed attempt: back to pending at now + backoff with attempts + 1, or failed for good once
 * attempts reach dueJobMaxAttempts.
 */
export function retryOrFailDueJob(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'attempts'>, now: Date, error: string) {
  const attempts = (job.attempts ?? 0) + 1;
  const update =
    attempts >= dueJobMaxAttempts
      ? { $set: { status: 'failed', attempts, lastError: error, reason: 'attempts_exhausted' }, $unset: { claimedAt: '', leaseUntil: '' } }
      : { $set: { status: 'pending', attempts, lastError: error, triggerAt: new Date(now.getTime() + dueJobRetryDelayMs(attempts)) }, $unset: { claimedAt: '', leaseUntil: '' } };
  return DueJobs.findOneAndUpdate({ _id: job._id, status: 'claimed' }, update, after).lean<DueJobDoc>();
}

/**
 * claimed whose lease ran out → pending, still due (the same scan claims it again), attempts + 1;
 * failed for good once attempts reach dueJobMaxAttempts (a job whose every run dies stops there).
 */
export function takeBackExpiredClaim(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'attempts'>, now: Date, error: string) {
  const attempts = (job.attempts ?? 0) + 1;
  const set = attempts >= dueJobMaxAttempts ? { status: 'failed', attempts, lastError: error, reason: 'attempts_exhausted' } : { status: 'pending', attempts, lastError: error };
  return DueJobs.findOneAndUpdate({ _id: job._id, status: 'claimed', leaseUntil: { $lt: now } }, { $set: set, $unset: { claimedAt: '', leaseUntil: '' } }, after).lean<DueJobDoc>();
}

/**
 * claimed (this claim) → pending at `until`, attempts unchanged: the job could not be looked at now
 * (its reminder is being written). A later triggerAt gives its next claim a new BullMQ job id.
 */
export function deferDueJob(DueJobs: DueJobs, job: Pick<DueJobDoc, '_id' | 'claimedAt'>, until: Date) {
  return DueJobs.findOneAndUpdate(
    { _id: job._id, status: 'claimed', claimedAt: job.claimedAt },
    { $set: { status: 'pending', triggerAt: until }, $unset: { claimedAt: '', leaseUntil: '' } },
    after,
  ).lean<DueJobDoc>();
}

/** claimed → triggered | skipped | canceled, with why (and the trigger it created). */
export function finishDueJob(DueJobs: DueJobs, id: Id, status: 'triggered' | 'skipped' | 'canceled', fields: { reason?: string; triggerId?: string }) {
  const set: Record<string, unknown> = { status };
  const unset: Record<string, ''> = { claimedAt: '', leaseUntil: '' };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) unset[k] = '';
    else set[k] = v;
  }
  return DueJobs.findOneAndUpdate({ _id: id, status: 'claimed' }, { $set: set, $unset: unset }, after).lean<DueJobDoc>();
}

/** The update that starts a fresh occurrence at `at` (pending, no attempts, nothing left of the last one). */
export function newOccurrence(at: Date) {
  return {
    $set: { status: 'pending', triggerAt: at, thresholdAt: at, attempts: 0 },
    $unset: { reason: '', claimedAt: '', leaseUntil: '', lastError: '', triggerId: '' },
  };
}

/** claimed → pending at the task's new (later) threshold: a new occurrence. */
export function postponeDueJob(DueJobs: DueJobs, id: Id, at: Date) {
  return DueJobs.findOneAndUpdate({ _id: id, status: 'claimed' }, newOccurrence(at), after).lean<DueJobDoc>();
}
