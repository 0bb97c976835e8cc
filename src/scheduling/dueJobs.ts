/**
 * A task's due job (active_schedule_jobs, one per task) follows the task: a todo task with an
 * urgency threshold has a job pending at that threshold; a done task, a task without threshold
 * or a deleted task has its job canceled. Called in the request that wrote the task.
 *
 * An "occurrence" is one threshold: `thresholdAt` says which; `triggerAt` starts equal to it and
 * moves later only on retries. Moving the threshold starts a new occurrence, whatever state the
 * previous one reached (triggered, skipped, canceled, failed).
 */
import type { AppContext } from '../context';
import { taskDueJobKey, type DueJobDoc } from '../db/dueJob';
import type { TaskDoc } from '../db/task';
import { newOccurrence } from './transitions';
import { isDuplicateKey } from '../db/errors';

type Ctx = Pick<AppContext, 'models'>;

/** States in which an occurrence is still to be looked at; a task that no longer wants it cancels it. */
const openStatuses: DueJobDoc['status'][] = ['pending', 'claimed', 'failed'];

export type TaskForSync = Pick<TaskDoc, '_id' | 'userId' | 'status'> & { urgencyThresholdAt?: Date | null; deleted?: boolean };

function cancelReason(task: TaskForSync): string | undefined {
  if (task.deleted) return 'task_deleted';
  if (task.status === 'done') return 'task_completed';
  if (!task.urgencyThresholdAt) return 'threshold_removed';
  return undefined;
}

/**
 * Creates, moves or cancels the task's due job. Returns the due job as it now is (null: the task
 * never needed one). Safe to call twice: a second call with the same task changes nothing.
 */
export async function syncDueJobForTask(ctx: Ctx, task: TaskForSync, now = new Date()): Promise<DueJobDoc | null> {
  const DueJobs = ctx.models.dueJobs;
  const taskId = String(task._id);
  const key = taskDueJobKey(taskId);
  const existing = await DueJobs.findOne({ key }).lean<DueJobDoc>();
  const reason = cancelReason(task);

  if (reason) {
    if (!existing || !openStatuses.includes(existing.status)) return existing;
    return DueJobs.findOneAndUpdate(
      { _id: existing._id, status: { $in: openStatuses } },
      { $set: { status: 'canceled', reason }, $unset: { claimedAt: '', leaseUntil: '' } },
      { returnDocument: 'after' },
    ).lean<DueJobDoc>();
  }

  const threshold = task.urgencyThresholdAt!;
  if (!existing) {
    try {
      const created = await DueJobs.create({
        userId: task.userId,
        key,
        taskId,
        kind: 'task_urgency',
        triggerAt: threshold,
        thresholdAt: threshold,
        status: 'pending',
      });
      return created.toObject() as DueJobDoc;
    } catch (err) {
      // Two writes of one task at once: the other created it; fall through as an update.
      if (!isDuplicateKey(err)) throw err;
      return syncDueJobForTask(ctx, task, now);
    }
  }

  const occurrence = (existing.thresholdAt ?? existing.triggerAt).getTime();
  // Same threshold, and not canceled by an earlier state of the task: nothing to do.
  if (occurrence === threshold.getTime() && existing.status !== 'canceled') return existing;
  // A new threshold, or the task wants its canceled occurrence back (reopened, threshold restored).
  return DueJobs.findOneAndUpdate({ _id: existing._id }, newOccurrence(threshold), { returnDocument: 'after' }).lean<DueJobDoc>();
}
