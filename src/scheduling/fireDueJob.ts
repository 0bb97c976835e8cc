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
 * Errors do not escape: the attempt counts, and the job is pending again after a backoff
 * (30 s doubling, up to 30 min) for the scanner to pick up, or `failed` with lastError after
 * dueJobMaxAttempts. Only when even that write fails does it throw (the processor's retries and
 * the claim lease take over).
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import type { TaskDoc } from '../db/task';
import { createTrigger } from '../triggers/create';
import { fireReminderOccurrence } from '../reminders/fire';
import { finishDueJob, postponeDueJob, retryOrFailDueJob } from './transitions';
import { outcomeOf, type FireOutcome } from './fireOutcome';

export type { FireOutcome };

/** The window in which a planned or done block of the task means it is already scheduled. */
export const scheduledWindowMs = 24 * 3_600_000;

/**
 * `claimedFor`: the triggerAt the BullMQ job was made for (its payload). Without it (a hand-run,
 * tests) both checks of the BullMQ job are skipped: whatever is claimed now is fired now.
 */
export async function fireDueJob(ctx: AppContext, dueJobId: string, now = new Date(), claimedFor?: Date): Promise<FireOutcome> {
  const DueJobs = ctx.models.dueJobs;
  if (!isValidObjectId(dueJobId)) return { status: 'missing' };
  const job = await DueJobs.findById(dueJobId).lean<DueJobDoc>();
  if (job && claimedFor && job.triggerAt.getTime() !== claimedFor.getTime()) return { status: 'superseded' };
  if (!job || job.status !== 'claimed') return outcomeOf(job);
  // Claimed ahead and run early: fire at triggerAt, never before (the rules below read "now").
  if (claimedFor && job.triggerAt.getTime() > now.getTime()) return { status: 'claimed', notBefore: job.triggerAt.toISOString() };
  // A reminder's occurrence has its own rules (src/reminders/fire.ts); below is a task's.
  if (job.kind === 'reminder') return fireReminderOccurrence(ctx, job, now);

  /** A guarded transition; null (someone moved the job first) answers with its current state. */
  const settle = async (moved: Promise<DueJobDoc | null>) => outcomeOf((await moved) ?? (await DueJobs.findById(dueJobId).lean<DueJobDoc>()));

  try {
    const task = isValidObjectId(job.taskId) ? await ctx.models.tasks.findById(job.taskId).lean<TaskDoc>() : null;
    if (!task) return settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_found' }));
    if (task.status === 'done') return settle(finishDueJob(DueJobs, job, 'canceled', { reason: 'task_completed' }));
    const threshold = task.urgencyThresholdAt;
    if (!threshold) return settle(finishDueJob(DueJobs, job, 'canceled', { reason: 'threshold_removed' }));
    const occurrence = job.thresholdAt ?? job.triggerAt;
    if (threshold.getTime() > occurrence.getTime() && threshold.getTime() > now.getTime()) {
      const moved = await postponeDueJob(DueJobs, job, threshold);
      return moved ? { status: moved.status, reason: 'threshold_moved' } : settle(Promise.resolve(null));
    }
    if (task.priority !== 1 && task.priority !== 2) return settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_not_important' }));

    const scheduled = await ctx.models.scheduleBlocks.exists({
      userId: task.userId,
      taskId: String(task._id),
      status: { $in: ['planned', 'done'] },
      start: { $lt: new Date(now.getTime() + scheduledWindowMs) },
      end: { $gt: now },
    });
    if (scheduled) return settle(finishDueJob(DueJobs, job, 'skipped', { reason: 'task_already_scheduled' }));

    const { trigger } = await createTrigger(ctx, {
      userId: task.userId,
      type: 'important_urgent_task',
      source: 'worker_due_job',
      target: { type: 'task', id: String(task._id) },
      // The occurrence's time, not the retry's: a retry after a half-done attempt finds the same trigger.
      at: occurrence,
      idempotencyKey: `due-job-${dueJobId}-${occurrence.getTime()}`,
      dueJobId,
    });
    return settle(finishDueJob(DueJobs, job, 'triggered', { triggerId: String(trigger._id), reason: undefined }));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.logger.warn({ dueJobId, taskId: job.taskId, attempts: (job.attempts ?? 0) + 1, err: message }, 'firing due job failed');
    return settle(retryOrFailDueJob(DueJobs, job, now, message.slice(0, 500)));
  }
}
