/** schedule_blocks: a slot in the user's plan, optionally for a task. Overlaps may exist (an anomaly). */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

export const blockStatuses = ['planned', 'done', 'unfinished'] as const;

const blockSchema = new Schema(
  {
    userId: { type: String, required: true },
    taskId: { type: String },
    title: { type: String, required: true },
    start: { type: Date, required: true },
    end: { type: Date, required: true },
    status: { type: String, enum: blockStatuses, required: true, default: 'planned' },
    /** Set when the block was created by confirming a preview (confirming twice finds it). */
    previewId: { type: String },
    /** The host product's id of it, when it was synced by one (external_ids maps it here; no index: views only). */
    externalId: { type: String },
  },
  { collection: 'schedule_blocks', timestamps: true },
);
blockSchema.index({ userId: 1, start: 1 });
blockSchema.index({ userId: 1, taskId: 1, start: 1 });
blockSchema.index({ status: 1, end: 1 });

export type ScheduleBlockDoc = InferSchemaType<typeof blockSchema> & { _id: Types.ObjectId };
export const scheduleBlockModel = (conn: Connection) => conn.model('ScheduleBlock', blockSchema);
