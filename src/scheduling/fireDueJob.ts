/**
 * Fires one claimed due job (the `due-job` processor calls this): a reminder's occurrence goes to
 * reminders/fire.ts; for a task, reads the task again and applies the rules in order. Every
 * outcome is a guarded update from this claim; a job that is not claimed (already fired, moved by a
 * task write, taken back) is left alone and its state returned.
 *
 * The scanner claims ahead and BullMQ runs the job at triggerAt, so two more checks come in: a
 * BullMQ job for another occurrence than the due job's current one (the task or reminder moved
 * after the claim, and the new time was claimed again) is `superseded` and does nothing; and a job
 * run before triggerAt by this host's clock is not fired but answers `notBefore`. A job that brings
 * its claim (the scanner's payload) is not read again first: every write from it is guarded by
 * that claim, a duplicate trigger is stopped by its dedupe key, and only a task that names another
 * occurrence than the claim's (the one case where firing would notify a moved occurrence) has the
 * due job read before a trigger is created.
 *
 * The `due-job` processor fires with fireDueJobForWorkflow: the trigger it creates is its own to
 * run (inserted claimed, no workflow job), with the task and blocks read here.
 *
 * Errors do not escape: the attempt counts, and the job is pending again after a backoff
 * (30 s doubling, up to 30 min) for the scanner to pick up, or `failed` with lastError after
 * dueJobMaxAttempts. Only when even that write fails does it throw (the processor's retries and
 * the claim lease take over). Every write holds the due job's lock (dueJobs.ts onDueJob), as the
 * scanner's and a task's sync do; one that stays taken is such an error (StoreBusyError).
 */
import { isValidObjectId, Types } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import type { TriggerDoc } from '../db/trigger';
import { createTrigger } from '../triggers/create';
import { fireReminderOccurrence } from '../reminders/fire';
import { planningTaskFields, readPlanningBlocks, WINDOW_MS, type PlanningReads, type PlanningTask } from '../workflow/context';
import { finishDueJob, postponeDueJob, retryOrFailDueJob } from './transitions';
import { onDueJob } from './dueJobs';
import { outcomeOf, type FireOutcome } from './fireOutcome';
import type { DueJobPayload } from './schemas';

export type { FireOutcome };

/** The window in which a planned or done block of the task means it is already scheduled: the one planning reads. */
export const scheduledWindowMs = WINDOW_MS;

/** A trigger this firing inserted claimed, and what it read for it: its workflow is the caller's to run, now. */
export interface FiredTrigger {
  trigger: TriggerDoc;
  planning: PlanningReads;
}

/** The claim a firing starts from: as the scanner made it (the job's payload), or as read. */
export type DueJobClaim = Pick<DueJobDoc, '_id' | 'kind' | 'taskId' | 'reminderId' | 'triggerAt' | 'thresholdAt' | 'claimedAt' | 'attempts'>;

/** A payload's claim as the firing uses it (dates parsed). */
export function claimFromPayload(payload: DueJobPayload): DueJobClaim | undefined {
  const c = payload.claim;
  if (!c) return undefined;
  return {
    _id: new Types.ObjectId(payload.dueJobId),
    kind: c.kind,
    taskId: c.taskId,
    reminderId: c.reminderId,
    triggerAt: new Date(payload.triggerAt),
    thresholdAt: c.thresholdAt ? new Date(c.thresholdAt) : undefined,
    claimedAt: new Date(c.claimedAt),
    attempts: c.attempts,
  };
}

/**
 * `claimedFor`: the triggerAt the BullMQ job was made for (its payload). Without it (a hand-run,
 * tests) both checks of the BullMQ job are skipped: whatever is claimed now is fired now.
 */
export async function fireDueJob(ctx: AppContext, dueJobId: string, now = new Date(), claimedFor?: Date): Promise<FireOutcome> {
  return (await fire(ctx, { dueJobId, now, claimedFor, handOff: false })).outcome;
}

/**
 * The same, for the `due-job` processor, which runs the workflow of the trigger it creates at
 * once: the trigger is inserted claimed (no job, no claim of its own) and handed back with the
 * task and blocks read here, so the workflow does not read them again. Given the scanner's
 * `claim` (the job's payload), the due job is not read again unless the task names another
 * occurrence than the claim's.
 */
export function fireDueJobForWorkflow(
  ctx: AppContext,
  job: { dueJobId: string; now: Date; claimedFor?: Date; claim?: DueJobClaim },
): Promise<{ outcome: FireOutcome; fired?: FiredTrigger }> {
  return fire(ctx, { ...job, handOff: true });
}

type Checked = { job: DueJobDoc } | { outcome: FireOutcome };

/** The due job as stored, if it still holds the claim (`claimedAt` when known) for `claimedFor`; else what to answer. */
async function readClaim(
  DueJobs: AppContext['models']['dueJobs'],
  dueJobId: string,
  expected: { claimedFor?: Date; claimedAt?: Date | null },
): Promise<Checked> {
  const job = await DueJobs.findById(dueJobId).lean<DueJobDoc>();
  if (job && expected.claimedFor && job.triggerAt.getTime() !== expected.claimedFor.getTime()) return { outcome: { status: 'superseded' } };
  if (!job || job.status !== 'claimed') return { outcome: outcomeOf(job) };
  if (expected.claimedAt && job.claimedAt?.getTime() !== expected.claimedAt.getTime()) return { outcome: { status: 'superseded' } };
  return { job };
}

async function fire(
  ctx: AppContext,
  { dueJobId, now, claimedFor, claim, handOff }: { dueJobId: string; now: Date; claimedFor?: Date; claim?: DueJobClaim; handOff: boolean },
): Promise<{ outcome: FireOutcome; fired?: FiredTrigger }> {
  const DueJobs = ctx.models.dueJobs;
  const answer = (outcome: FireOutcome) => ({ outcome });
  if (!isValidObjectId(dueJobId)) return answer({ status: 'missing' });
  // Read only when the job did not bring its claim; a claim brought is checked below, before firing, where it could be stale.
  const read = claim ? undefined : await readClaim(DueJobs, dueJobId, { claimedFor });
  if (read && 'outcome' in read) return answer(read.outcome);
  const job: DueJobClaim = claim ?? (read as { job: DueJobDoc }).job;
  // Claimed ahead and run early: fire at triggerAt, never before (the rules below read "now").
  if (claimedFor && job.triggerAt.getTime() > now.getTime()) return answer({ status: 'claimed', notBefore: job.triggerAt.toISOString() });
  // A reminder's occurrence has its own rules, and reads its claim again under the reminder's lock (src/reminders/fire.ts); below is a task's.
  if (job.kind === 'reminder') return answer(await fireReminderOccurrence(ctx, job, now));

  // Every write under the due job's lock, which the scanner and a task's sync take too (a busy one throws: see the catch).
  const write = (transition: () => Promise<DueJobDoc | null>) => onDueJob(ctx, job._id, transition);
  /** The job's current state (someone moved it first), `superseded` if at another time. */
  const current = async () => {
    const read = await readClaim(DueJobs, dueJobId, { claimedFor });
    return 'outcome' in read ? read.outcome : outcomeOf(read.job);
  };
  /** A guarded transition, answered with what it wrote, or the current state when it matched nothing. */
  const settle = async (transition: () => Promise<DueJobDoc | null>) => {
    const written = await write(transition);
    return written ? outcomeOf(written) : current();
  };
  // Set once the trigger is in: whatever happens to the due job then, its workflow must run.
  let fired: FiredTrigger | undefined;

  try {
    const task = isValidObjectId(job.taskId) ? await ctx.models.tasks.findById(job.taskId, planningTaskFields).lean<PlanningTask>() : null;
    if (!task) return answer(await settle(() => finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_found' })));
    if (task.status === 'done') return answer(await settle(() => finishDueJob(DueJobs, job, 'canceled', { reason: 'task_completed' })));
    const threshold = task.urgencyThresholdAt;
    if (!threshold) return answer(await settle(() => finishDueJob(DueJobs, job, 'canceled', { reason: 'threshold_removed' })));
    const occurrence = job.thresholdAt ?? job.triggerAt;
    if (threshold.getTime() > occurrence.getTime() && threshold.getTime() > now.getTime()) {
      const moved = await write(() => postponeDueJob(DueJobs, job, threshold));
      return answer(moved ? { status: moved.status, reason: 'threshold_moved' } : await current());
    }
    // The task names another occurrence (it moved; its due job may have moved with it): fire only a claim the due job still holds.
    if (claim && threshold.getTime() !== occurrence.getTime()) {
      const still = await readClaim(DueJobs, dueJobId, { claimedFor: claim.triggerAt, claimedAt: claim.claimedAt });
      if ('outcome' in still) return answer(still.outcome);
    }
    if (task.priority !== 1 && task.priority !== 2) return answer(await settle(() => finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_important' })));

    // The window's blocks, as the workflow plans with them: a planned or done one of the task means it is scheduled.
    const blocks = await readPlanningBlocks(ctx, task.userId, now);
    const taskId = String(task._id);
    const scheduled = blocks.some((b) => b.taskId === taskId && (b.status === 'planned' || b.status === 'done'));
    if (scheduled) return answer(await settle(() => finishDueJob(DueJobs, job, 'skipped', { reason: 'task_already_scheduled' })));

    // No idempotency key: the dedupe key names this occurrence already (user, type, task, occurrence).
    const { trigger, created } = await createTrigger(ctx, {
      userId: task.userId,
      type: 'important_urgent_task',
      source: 'worker_due_job',
      target: { type: 'task', id: taskId },
      // The occurrence's time, not the retry's: a retry after a half-done attempt finds the same trigger.
      at: occurrence,
      dueJobId,
      ...(handOff ? { claimedAt: now } : {}),
    });
    if (handOff && created) fired = { trigger, planning: { now, task, blocks } };
    return { outcome: await settle(() => finishDueJob(DueJobs, job, 'triggered', { triggerId: String(trigger._id), reason: undefined })), fired };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.logger.warn({ dueJobId, taskId: job.taskId, attempts: (job.attempts ?? 0) + 1, err: message }, 'firing due job failed');
    // A busy lock lands here too: the attempt counts; if even this write finds it busy, it throws and BullMQ retries the job.
    return { outcome: await settle(() => retryOrFailDueJob(DueJobs, job, now, message.slice(0, 500))), fired };
  }
}
