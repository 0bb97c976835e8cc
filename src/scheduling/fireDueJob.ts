/**
 * Fires one claimed due job (the `due-job` processor calls this): a reminder's occurrence goes to
 * reminders/fire.ts; for a task, reads the task again and applies the rules in order. Every
 * outcome is a guarded update from this claim; a job that is not claimed (already fired, moved by a
 * task write, taken back) is left alone and its state returned.
 *
 * The scanner claims ahead and BullMQ runs the job at triggerAt, so two more checks come first:
 * a BullMQ job for another occurrence than the due job's current one (the task or reminder moved
 * after the claim, and the new time was claimed again) is `superseded` and does nothing; and a job
 * run before triggerAt by this host's clock is not fired but answers `notBefore`.
 *
 * The `due-job` processor fires with fireDueJobForWorkflow: the trigger it creates is its own to
 * run (inserted claimed, no workflow job), with the task and blocks read here.
 *
 * Errors do not escape: the attempt counts, and the job is pending again after a backoff
 * (30 s doubling, up to 30 min) for the scanner to pick up, or `failed` with lastError after
 * dueJobMaxAttempts. Only when even that write fails does it throw (the processor's retries and
 * the claim lease take over).
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import type { TriggerDoc } from '../db/trigger';
import { createTrigger } from '../triggers/create';
import { fireReminderOccurrence } from '../reminders/fire';
import { planningTaskFields, readPlanningBlocks, WINDOW_MS, type PlanningReads, type PlanningTask } from '../workflow/context';
import { finishDueJob, postponeDueJob, retryOrFailDueJob } from './transitions';
import { outcomeOf, type FireOutcome } from './fireOutcome';

export type { FireOutcome };

/** The window in which a planned or done block of the task means it is already scheduled: the one planning reads. */
export const scheduledWindowMs = WINDOW_MS;

/** A trigger this firing inserted claimed, and what it read for it: its workflow is the caller's to run, now. */
export interface FiredTrigger {
  trigger: TriggerDoc;
  planning: PlanningReads;
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
 * task and blocks read here, so the workflow does not read them again.
 */
export function fireDueJobForWorkflow(
  ctx: AppContext,
  dueJobId: string,
  now: Date,
  claimedFor?: Date,
): Promise<{ outcome: FireOutcome; fired?: FiredTrigger }> {
  return fire(ctx, { dueJobId, now, claimedFor, handOff: true });
}

async function fire(
  ctx: AppContext,
  { dueJobId, now, claimedFor, handOff }: { dueJobId: string; now: Date; claimedFor?: Date; handOff: boolean },
): Promise<{ outcome: FireOutcome; fired?: FiredTrigger }> {
  const DueJobs = ctx.models.dueJobs;
  const answer = (outcome: FireOutcome) => ({ outcome });
  if (!isValidObjectId(dueJobId)) return answer({ status: 'missing' });
  const job = await DueJobs.findById(dueJobId).lean<DueJobDoc>();
  if (job && claimedFor && job.triggerAt.getTime() !== claimedFor.getTime()) return answer({ status: 'superseded' });
  if (!job || job.status !== 'claimed') return answer(outcomeOf(job));
  // Claimed ahead and run early: fire at triggerAt, never before (the rules below read "now").
  if (claimedFor && job.triggerAt.getTime() > now.getTime()) return answer({ status: 'claimed', notBefore: job.triggerAt.toISOString() });
  // A reminder's occurrence has its own rules (src/reminders/fire.ts); below is a task's.
  if (job.kind === 'reminder') return answer(await fireReminderOccurrence(ctx, job, now));

  /** A guarded transition; null (someone moved the job first) answers with its current state. */
  const settle = async (moved: Promise<DueJobDoc | null>) => outcomeOf((await moved) ?? (await DueJobs.findById(dueJobId).lean<DueJobDoc>()));
  // Set once the trigger is in: whatever happens to the due job then, its workflow must run.
  let fired: FiredTrigger | undefined;

  try {
    const task = isValidObjectId(job.taskId) ? await ctx.models.tasks.findById(job.taskId, planningTaskFields).lean<PlanningTask>() : null;
    if (!task) return answer(await settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_found' })));
    if (task.status === 'done') return answer(await settle(finishDueJob(DueJobs, job, 'canceled', { reason: 'task_completed' })));
    const threshold = task.urgencyThresholdAt;
    if (!threshold) return answer(await settle(finishDueJob(DueJobs, job, 'canceled', { reason: 'threshold_removed' })));
    const occurrence = job.thresholdAt ?? job.triggerAt;
    if (threshold.getTime() > occurrence.getTime() && threshold.getTime() > now.getTime()) {
      const moved = await postponeDueJob(DueJobs, job, threshold);
      return answer(moved ? { status: moved.status, reason: 'threshold_moved' } : await settle(Promise.resolve(null)));
    }
    if (task.priority !== 1 && task.priority !== 2) return answer(await settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_important' })));

    // The window's blocks, as the workflow plans with them: a planned or done one of the task means it is scheduled.
    const blocks = await readPlanningBlocks(ctx, task.userId, now);
    const taskId = String(task._id);
    const scheduled = blocks.some((b) => b.taskId === taskId && (b.status === 'planned' || b.status === 'done'));
    if (scheduled) return answer(await settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_already_scheduled' })));

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
    return { outcome: await settle(finishDueJob(DueJobs, job, 'triggered', { triggerId: String(trigger._id), reason: undefined })), fired };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.logger.warn({ dueJobId, taskId: job.taskId, attempts: (job.attempts ?? 0) + 1, err: message }, 'firing due job failed');
    return { outcome: await settle(retryOrFailDueJob(DueJobs, job, now, message.slice(0, 500))), fired };
  }
}
