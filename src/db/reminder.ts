/**
 * reminders: a message the user wants at a time (`at`), or again and again by a cron expression
 * (`cron`, in `timeZone`) until `endAt` or `count` messages. Each occurrence is the reminder's one
 * due job (key `reminder:<id>`), rolled forward after it fires. `nextAt` is the occurrence its due
 * job waits for (null once finished); a canceled reminder (DELETE) is kept, invisible to the API.
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

export const reminderStatuses = ['active', 'completed', 'canceled'] as const;
export const occurrenceOutcomes = ['sent', 'skipped'] as const;

const reminderSchema = new Schema(
  {
    userId: { type: String, required: true },
    message: {
      type: new Schema({ title: { type: String, required: true }, summary: { type: String, required: true } }, { _id: false }),
      required: true,
    },
    /** A one-off reminder's time. Exactly one of at and cron is set. */
    at: Date,
    /** A recurring reminder's cron expression (5 fields, or 6 with seconds), read in timeZone. */
    cron: String,
    /** The user's time zone when the reminder was last written (created or changed): later settings changes do not move it. */
    timeZone: { type: String, required: true },
    /** Recurring only: no occurrence after this. */
    endAt: Date,
    /** Recurring only: at most this many messages (occurrences sent; missed ones caught up count once). */
    count: Number,
    /** Occurrences sent so far. */
    firedCount: { type: Number, required: true, default: 0 },
    /** The next occurrence (the due job's occurrence); null when there is none left. */
    nextAt: { type: Date, default: null },
    status: { type: String, enum: reminderStatuses, required: true, default: 'active' },
    /** What the last occurrence came to: sent (with its trigger), or skipped with why (missed_beyond_catchup, ...). */
    lastOccurrence: {
      type: new Schema(
        {
          at: { type: Date, required: true },
          outcome: { type: String, enum: occurrenceOutcomes, required: true },
          reason: String,
          triggerId: String,
          firedAt: Date,
        },
        { _id: false },
      ),
      required: false,
    },
    canceledAt: Date,
  },
  { collection: 'reminders', timestamps: true },
);
reminderSchema.index({ userId: 1, _id: -1 });

export type ReminderDoc = InferSchemaType<typeof reminderSchema> & { _id: Types.ObjectId; createdAt?: Date; updatedAt?: Date };
export const reminderModel = (conn: Connection) => conn.model('Reminder', reminderSchema);
