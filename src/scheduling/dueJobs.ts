/**
 * A task's due job (active_schedule_jobs, one per task) follows the task: a todo task with an
 * urgency threshold has a job pending at that threshold; a done task, a task without threshold
 * or a deleted task has its job canceled. Called in the request that wrote the task.
 *
 * An "occurrence" is one threshold: `thresholdAt` says which; `triggerAt` starts equal to it and
 * moves later only on retries. Moving the threshold starts a new occurrence, whatever state the
 * previous one reached (triggered, skipped, canceled, failed).
 *
 * Each write of an existing job holds its lock (onDueJob), as the scanner's and the firing's do:
 * on FerretDB v1 a write between another's read and write-back would be lost.
 */
import type { AppContext } from '../context';
import { taskDueJobKey, type DueJobDoc } from '../db/dueJob';
import type { TaskDoc } from '../db/task';
import { guardedTransition, lockName } from '../db/guarded';
import { cancelDueJob, insertDueJob, openDueJobStatuses, restartDueJob, type DueJobReason } from './transitions';

type LockCtx = Pick<AppContext, 'store' | 'redis' | 'config'>;
type Ctx = Pick<AppContext, 'models'> & LockCtx;

/**
 * Runs one write of the due job `id` under its lock where the store needs one (db/guarded.ts):
 * the scanner takes it, so every other writer of a due job must too. Throws StoreBusyError.
 */
export const onDueJob = <T>(ctx: LockCtx, id: unknown, write: () => Promise<T>, waitMs?: number): Promise<T> =>
  guardedTransition(ctx, dueJobLockName(id), write, waitMs);

/** The name of a due job's lock: the scanner's claim and take-back hold it too. */
export const dueJobLockName = (id: unknown): string => lockName('due-job', String(id));

export type TaskForSync = Pick<TaskDoc, '_id' | 'userId' | 'status'> & { urgencyThresholdAt?: Date | null; deleted?: boolean };

function cancelReason(task: TaskForSync): DueJobReason | undefined {
  if (task.deleted) return 'task_deleted';
  if (task.status === 'done') return 'task_completed';
  if (!task.urgencyThresholdAt) return 'threshold_removed';
  return undefined;
}

/**
 * Creates, moves or cancels the task's due job. Returns the due job as it now is (null: the task
 * never needed one). Safe to call twice: a second call with the same task changes nothing.
 * Throws StoreBusyError when the job's lock stays taken (the API answers 503: send it again).
 */
export async function syncDueJobForTask(ctx: Ctx, task: TaskForSync, now = new Date()): Promise<DueJobDoc | null> {
  const DueJobs = ctx.models.dueJobs;
  const taskId = String(task._id);
  const key = taskDueJobKey(taskId);
  const existing = await DueJobs.findOne({ key }).lean<DueJobDoc>();
  const reason = cancelReason(task);

  if (reason) {
    if (!existing || !openDueJobStatuses.includes(existing.status)) return existing;
    return onDueJob(ctx, existing._id, () => cancelDueJob(DueJobs, existing._id, reason));
  }

  const threshold = task.urgencyThresholdAt!;
  if (!existing) {
    // A new job needs no lock: nobody else can be writing it; two writes of one task at once are decided by its key.
    const created = await insertDueJob(DueJobs, { userId: task.userId, key, taskId, kind: 'task_urgency' }, threshold);
    // The other write created it: go on as an update.
    return created ?? syncDueJobForTask(ctx, task, now);
  }

  const occurrence = (existing.thresholdAt ?? existing.triggerAt).getTime();
  // Same threshold, and not canceled by an earlier state of the task: nothing to do.
  if (occurrence === threshold.getTime() && existing.status !== 'canceled') return existing;
  // A new threshold, or the task wants its canceled occurrence back (reopened, threshold restored).
  return onDueJob(ctx, existing._id, () => restartDueJob(DueJobs, existing._id, threshold));
}
