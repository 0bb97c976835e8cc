/** tasks: what the user plans to do. Priority 1 important+urgent, 2 important, 3 urgent, 4 neither. */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

export const taskStatuses = ['todo', 'done'] as const;

const taskSchema = new Schema(
  {
    userId: { type: String, required: true },
    title: { type: String, required: true },
    priority: { type: Number, required: true, min: 1, max: 4 },
    deadline: Date,
    /** When the task becomes urgent: its active schedule job fires then. */
    urgencyThresholdAt: Date,
    estimatedMinutes: Number,
    status: { type: String, enum: taskStatuses, required: true, default: 'todo' },
    completedAt: Date,
    /** The host product's id of it, when it was synced by one (external_ids maps it here; no index: views only). */
    externalId: String,
  },
  { collection: 'tasks', timestamps: true },
);
taskSchema.index({ userId: 1, _id: -1 });
taskSchema.index({ userId: 1, status: 1, deadline: 1 });
// The deadline-risk detector: todo tasks due within its horizon, across users.
taskSchema.index({ status: 1, deadline: 1 });

export type TaskDoc = InferSchemaType<typeof taskSchema> & { _id: Types.ObjectId };
export const taskModel = (conn: Connection) => conn.model('Task', taskSchema);
