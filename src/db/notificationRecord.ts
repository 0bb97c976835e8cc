/**
 * notification_records: one per (channel, dedupeKey). The unique index on that pair, not memory,
 * is the dedupe; every delivery attempt is appended to `history`.
 */
import type { Connection, InferSchemaType } from 'mongoose';
import { Schema } from 'mongoose';

/** `digested`: final; the message went out inside the digest record named by `digestId`. */
export const recordStatuses = ['pending', 'sending', 'sent', 'skipped', 'failed', 'dead', 'digested'] as const;
/** held: waiting to be sent alone or grouped; alone: sent by itself; member: carried by a digest; digest: the digest record. */
export const digestStates = ['held', 'alone', 'member', 'digest'] as const;
export type RecordStatus = (typeof recordStatuses)[number];
export const channelKinds = ['feishu', 'feishu_bot', 'feishu_app'] as const;
export type ChannelKind = (typeof channelKinds)[number];
/** Kinds configured by a webhook URL (the app channel is configured by a receive id instead). */
export const webhookChannelKinds = ['feishu', 'feishu_bot'] as const;
export type WebhookChannelKind = (typeof webhookChannelKinds)[number];
/** What the person can answer on the card: a suggestion, a reminder, an anomaly. */
export const replyKinds = ['preview', 'reminder', 'anomaly'] as const;
export type ReplyKind = (typeof replyKinds)[number];
/** A reminder card's answer. */
export const reminderReplies = ['done', 'snoozed'] as const;

const historyEntry = new Schema(
  {
    at: { type: Date, required: true },
    /** requested | attempt | deferred | rate_limited | skipped | replay | dead | repaired */
    event: { type: String, required: true },
    attempt: Number,
    /** For attempts: sent | temporary | permanent */
    outcome: String,
    code: String,
    httpStatus: Number,
    providerCode: Number,
    durationMs: Number,
    detail: String,
    until: Date,
  },
  { _id: false },
);

const recordSchema = new Schema(
  {
    userId: { type: String, required: true },
    channel: { type: String, enum: channelKinds, required: true },
    dedupeKey: { type: String, required: true },
    triggerType: { type: String, required: true },
    target: { type: new Schema({ type: { type: String, required: true }, id: { type: String, required: true } }, { _id: false }), required: true },
    triggerId: String,
    previewId: String,
    message: {
      type: new Schema(
        { title: { type: String, required: true }, summary: { type: String, required: true }, actionText: String, actionUrl: String },
        { _id: false },
      ),
      required: true,
    },
    traceId: String,
    /** Sent through quiet hours (a critical anomaly). */
    urgent: { type: Boolean, default: false },
    /** The buttons its card offers (app channel): set by the workflow that requested it. */
    replyKind: { type: String, enum: replyKinds },
    /** An anomaly's severity, for the card's colour. */
    severity: String,
    /** When the anomaly it told about was acknowledged (the trigger holds the truth; this is for lists). */
    acknowledgedAt: Date,
    /** A reminder card's answer (Done, Snooze): once per record. */
    reply: {
      type: new Schema(
        { kind: { type: String, enum: reminderReplies, required: true }, at: { type: Date, required: true }, until: Date, snoozeRecordId: String },
        { _id: false },
      ),
      default: undefined,
    },
    status: { type: String, enum: recordStatuses, required: true, default: 'pending' },
    /** Why a record is skipped or dead: recipient_missing, user_opted_out, attempts_exhausted, a provider code... */
    statusReason: String,
    attemptCount: { type: Number, required: true, default: 0 },
    maxAttempts: { type: Number, required: true },
    nextRetryAt: Date,
    deferredUntil: Date,
    /** When the current `sending` began: a lease, so a crashed sender's record can be taken over. */
    sendingSince: Date,
    lastErrorCode: String,
    lastError: String,
    providerMessageId: String,
    /**
     * The last request and response, with secrets removed, for audit. Kept as JSON text: Feishu's
     * bodies hold nested arrays (post content) that FerretDB v1 cannot store as documents.
     */
    providerRequest: String,
    providerResponse: String,
    sentAt: Date,
    /** Grouping of anomaly messages (notifications/digest.ts); unset on records that are never grouped. */
    digestState: { type: String, enum: digestStates },
    /** When it was decided to send it alone, to put it in a digest, or the digest was made. */
    digestDecidedAt: Date,
    /** On a member: the digest record that carried it. */
    digestId: String,
    /** On a digest: its members' record ids (written before the members are marked, so a crash in between is repaired). */
    digestOf: { type: [String], default: undefined },
    history: { type: [historyEntry], default: [] },
    /**
     * Events of this record's end (notification.sent, .skipped, .dead) written in the same update
     * as the end itself, so a crash between the two cannot lose one; relayed into the event log by
     * notifications/outbox.ts. `outboxCount` is what the relay's clearing update is guarded on.
     */
    outbox: {
      type: [
        new Schema(
          { type: { type: String, required: true }, key: { type: String, required: true }, at: { type: Date, required: true }, reason: String },
          { _id: false },
        ),
      ],
      default: undefined,
    },
    outboxCount: Number,
  },
  { collection: 'notification_records', timestamps: true, minimize: false },
);

recordSchema.index({ channel: 1, dedupeKey: 1 }, { unique: true });
recordSchema.index({ userId: 1, _id: -1 });
recordSchema.index({ userId: 1, status: 1, _id: -1 });
recordSchema.index({ status: 1, updatedAt: 1 });
recordSchema.index({ userId: 1, digestState: 1, digestDecidedAt: -1 });
/** A card callback names the message it came from. */
recordSchema.index({ providerMessageId: 1 });
/** The cards of one preview, to redraw them when it is answered elsewhere. */
recordSchema.index({ previewId: 1 });
recordSchema.index({ triggerId: 1 });
recordSchema.index({ outboxCount: 1 });

export type NotificationRecord = InferSchemaType<typeof recordSchema> & { _id: import('mongoose').Types.ObjectId };
export type HistoryEntry = InferSchemaType<typeof historyEntry>;

export function notificationRecordModel(conn: Connection) {
  return conn.model('NotificationRecord', recordSchema);
}
