/**
 * active_schedule_jobs ("due jobs"): something that must be looked at at `triggerAt`.
 * The scanner claims pending ones whose time has come with a guarded update and a lease, so two
 * workers never fire one job, and a claim whose holder died is taken back when the lease ends.
 * Reminders reuse the same collection and claim (kind `reminder`, one rolling due job each).
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

export const dueJobStatuses = ['pending', 'claimed', 'triggered', 'skipped', 'canceled', 'failed'] as const;
export const dueJobKinds = ['task_urgency', 'reminder'] as const;

/** One due job per thing that has one: its unique `key`. */
export const taskDueJobKey = (taskId: string) => `task:${taskId}`;
export const reminderDueJobKey = (reminderId: string) => `reminder:${reminderId}`;

const dueJobSchema = new Schema(
  {
    userId: { type: String, required: true },
    kind: { type: String, enum: dueJobKinds, required: true, default: 'task_urgency' },
    /**
     * `task:<taskId>` or `reminder:<reminderId>`, unique: one due job per task (moved or canceled as
     * the task changes) and one per reminder (rolled forward to each next occurrence). A unique
     * index on taskId alone would count every reminder's missing taskId as one null value, and
     * FerretDB v1 has no partial indexes.
     */
    key: { type: String, required: true },
    /** The task (task_urgency). */
    taskId: String,
    /** The reminder (reminder). */
    reminderId: String,
    triggerAt: { type: Date, required: true },
    /** The occurrence this is for (a task's threshold, a reminder's occurrence); triggerAt moves later on retries, this does not. */
    thresholdAt: Date,
    status: { type: String, enum: dueJobStatuses, required: true, default: 'pending' },
    /** Why it ended (task_not_found, task_completed, task_not_important, ...). */
    reason: String,
    /** Claim lease: a claimed job whose lease ran out is pending again. */
    claimedAt: Date,
    leaseUntil: Date,
    /** The scan batch that made the last claim (random): a batch reads back by it which claims were its own. */
    claimToken: String,
    attempts: { type: Number, required: true, default: 0 },
    lastError: String,
    triggerId: String,
  },
  // Indexes are built by prepareDueJobs, after the migration from the taskId index (not automatically).
  { collection: 'active_schedule_jobs', timestamps: true, autoIndex: false },
);
dueJobSchema.index({ key: 1 }, { unique: true });
// The scanner's query: pending and due, oldest first; claimed with an expired lease.
dueJobSchema.index({ status: 1, triggerAt: 1 });
dueJobSchema.index({ status: 1, leaseUntil: 1 });

export type DueJobDoc = InferSchemaType<typeof dueJobSchema> & { _id: Types.ObjectId };
export const dueJobModel = (conn: Connection) => conn.model('DueJob', dueJobSchema);

/** MongoDB's IndexNotFound and NamespaceNotFound: nothing to drop. */
const nothingToDrop = (err: unknown) =>
  [26, 27].includes((err as { code?: number } | null)?.code ?? -1) || /index not found|ns not found/i.test(String((err as Error)?.message));

/**
 * Databases written before reminders hold a unique `taskId_1` index and due jobs without `key`:
 * drop the index, give those jobs their key (`task:<taskId>`), then build the indexes. Safe to run
 * again and from several processes at once.
 */
export async function prepareDueJobs(DueJobs: ReturnType<typeof dueJobModel>): Promise<void> {
  await DueJobs.collection.dropIndex('taskId_1').catch((err) => {
    if (!nothingToDrop(err)) throw err;
  });
  for (;;) {
    const legacy = await DueJobs.find({ key: { $exists: false } }, { _id: 1, taskId: 1 })
      .limit(500)
      .lean();
    if (!legacy.length) break;
    await Promise.all(
      legacy.map((j) => DueJobs.updateOne({ _id: j._id, key: { $exists: false } }, { $set: { key: taskDueJobKey(String(j.taskId)), kind: 'task_urgency' } })),
    );
  }
  await DueJobs.createIndexes();
}
