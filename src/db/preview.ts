/** active_schedule_previews: the chosen candidate fix, waiting for the user to confirm (expires in 1 h). */
import { Connection, InferSchemaType, Schema, Types } from 'mongoose';

export const previewStatuses = ['ready', 'confirmed', 'expired', 'rejected'] as const;
export const candidateKinds = ['add_task_to_schedule', 'create_makeup_block', 'ask_user', 'notify_only'] as const;

const previewSchema = new Schema(
  {
    userId: { type: String, required: true },
    triggerId: { type: String, required: true },
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
    expiresAt: { type: Date, required: true },
    confirmedAt: Date,
    blockId: String,
  },
  { collection: 'active_schedule_previews', timestamps: true },
);
previewSchema.index({ userId: 1, _id: -1 });
previewSchema.index({ triggerId: 1 }, { unique: true });

export type PreviewDoc = InferSchemaType<typeof previewSchema> & { _id: Types.ObjectId };
export const previewModel = (conn: Connection) => conn.model('Preview', previewSchema);
