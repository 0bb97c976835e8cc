/**
 * active_schedule_previews: the chosen candidate fix, waiting for the user to confirm (expires after
 * PREVIEW_TTL_MS). Confirming is guarded: ready → confirming (a lease) → confirmed, so two confirms
 * never both create a block; a confirming one whose lease ran out may be taken over.
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';
import { answerPlaces } from './trigger';

export const previewStatuses = ['ready', 'confirming', 'confirmed', 'expired', 'rejected'] as const;
export const candidateKinds = ['add_task_to_schedule', 'create_makeup_block', 'ask_user', 'notify_only'] as const;

const previewSchema = new Schema(
  {
    userId: { type: String, required: true },
    triggerId: { type: String, required: true },
    triggerType: { type: String, required: true },
    /** The message's language and the time zone its times were written in. */
    language: String,
    timeZone: String,
    status: { type: String, enum: previewStatuses, required: true, default: 'ready' },
    candidate: {
      type: new Schema(
        {
          kind: { type: String, enum: candidateKinds, required: true },
          taskId: String,
          title: String,
          start: Date,
          end: Date,
          score: Number,
          reason: String,
        },
        { _id: false },
      ),
      required: true,
    },
    /** The other candidates considered (JSON text). */
    alternatives: String,
    summaryText: { type: String, required: true },
    /** The message sent for it (kept so a retried workflow sends the same text). */
    message: { type: new Schema({ title: String, summary: String, actionText: String, actionUrl: String }, { _id: false }) },
    expiresAt: { type: Date, required: true },
    /** Lease of `confirming`. */
    confirmingSince: Date,
    confirmedAt: Date,
    rejectedAt: Date,
    blockId: String,
    /** Where it was confirmed or rejected: the dueflow page, a Feishu card, the API. */
    answeredVia: { type: String, enum: answerPlaces },
    /** When the one reminder before expiry was requested (renotify.ts); only spares later runs the work, the notification's dedupe key is what makes it once. */
    reminderRequestedAt: Date,
  },
  { collection: 'active_schedule_previews', timestamps: true },
);
previewSchema.index({ userId: 1, _id: -1 });
previewSchema.index({ triggerId: 1 }, { unique: true });
/** The reminder before expiry (renotify.ts) looks up ready previews by expiry. */
previewSchema.index({ status: 1, expiresAt: 1 });

export type PreviewDoc = InferSchemaType<typeof previewSchema> & { _id: Types.ObjectId };
export const previewModel = (conn: Connection) => conn.model('Preview', previewSchema);
