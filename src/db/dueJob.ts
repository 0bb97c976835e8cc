/**
 * active_schedule_jobs ("due jobs"): something that must be looked at at `triggerAt`.
 * The scanner claims pending ones whose time has come with a guarded update and a lease, so two
 * workers never fire one job, and a claim whose holder died is taken back when the lease ends.
 * Later kinds (reminders, detectors) reuse the same collection and claim.
 */
import { Connection, InferSchemaType, Schema, Types } from 'mongoose';

export const dueJobStatuses = ['pending', 'claimed', 'triggered', 'skipped', 'canceled', 'failed'] as const;
export const dueJobKinds = ['task_urgency'] as const;

const dueJobSchema = new Schema(
  {
    userId: { type: String, required: true },
    kind: { type: String, enum: dueJobKinds, required: true, default: 'task_urgency' },
    /** The task (for task_urgency). One due job per task: moved or canceled as the task changes. */
    taskId: { type: String, required: true },
    triggerAt: { type: Date, required: true },
    /** The task's threshold this occurrence is for; triggerAt moves later on retries, this does not. */
    thresholdAt: Date,
    status: { type: String, enum: dueJobStatuses, required: true, default: 'pending' },
    /** Why it ended (task_not_found, task_completed, task_not_important, ...). */
    reason: String,
    /** Claim lease: a claimed job whose lease ran out is pending again. */
    claimedAt: Date,
    leaseUntil: Date,
    attempts: { type: Number, required: true, default: 0 },
    lastError: String,
    triggerId: String,
  },
  { collection: 'active_schedule_jobs', timestamps: true },
);
dueJobSchema.index({ taskId: 1 }, { unique: true });
// The scanner's query: pending and due, oldest first; claimed with an expired lease.
dueJobSchema.index({ status: 1, triggerAt: 1 });
dueJobSchema.index({ status: 1, leaseUntil: 1 });

export type DueJobDoc = InferSchemaType<typeof dueJobSchema> & { _id: Types.ObjectId };
export const dueJobModel = (conn: Connection) => conn.model('DueJob', dueJobSchema);
