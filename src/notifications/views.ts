/** What the API shows of a record: everything but internals; secrets were removed by the provider. */
import { z } from 'zod';
import { recordStatuses, channelKinds, replyKinds, reminderReplies } from '../db/notificationRecord';
import { messageSchema } from './schemas';
import { isoOrNull as iso } from '../time/iso';

export const historyEntryView = z.object({
  at: z.iso.datetime(),
  event: z.string(),
  attempt: z.number().optional(),
  outcome: z.string().optional(),
  code: z.string().optional(),
  httpStatus: z.number().optional(),
  providerCode: z.number().optional(),
  durationMs: z.number().optional(),
  detail: z.string().optional(),
  until: z.iso.datetime().optional(),
});

export const recordView = z.object({
  id: z.string(),
  userId: z.string(),
  channel: z.enum(channelKinds),
  dedupeKey: z.string(),
  triggerType: z.string(),
  target: z.object({ type: z.string(), id: z.string() }),
  triggerId: z.string().nullable(),
  previewId: z.string().nullable(),
  message: messageSchema,
  traceId: z.string().nullable(),
  status: z.enum(recordStatuses),
  statusReason: z.string().nullable(),
  attemptCount: z.number(),
  maxAttempts: z.number(),
  nextRetryAt: z.iso.datetime().nullable(),
  deferredUntil: z.iso.datetime().nullable(),
  lastErrorCode: z.string().nullable(),
  lastError: z.string().nullable(),
  providerMessageId: z.string().nullable(),
  sentAt: z.iso.datetime().nullable(),
  digestId: z.string().nullable().meta({ description: 'Status digested: the digest record whose message carried this one' }),
  digestOf: z.array(z.string()).nullable().meta({ description: 'On a digest record: the records it carried' }),
  replyKind: z.enum(replyKinds).nullable().meta({ description: 'What its card lets the user answer: a suggestion, a reminder, an anomaly' }),
  severity: z.string().nullable().meta({ description: "An anomaly's severity" }),
  acknowledgedAt: z.iso.datetime().nullable().meta({ description: 'When the anomaly it told about was acknowledged' }),
  reply: z
    .object({ kind: z.enum(reminderReplies), at: z.iso.datetime(), until: z.iso.datetime().nullable() })
    .nullable()
    .meta({ description: "A reminder card's answer: done, or snoozed until" }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export const recordDetailView = recordView.extend({
  history: z.array(historyEntryView),
  providerRequest: z.unknown().nullable(),
  providerResponse: z.unknown().nullable(),
});
export type RecordView = z.infer<typeof recordView>;

const orNull = <T>(v: T | null | undefined) => (v === undefined || v === null ? null : v);

function withoutNulls<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

export function toRecordView(r: any): RecordView {
  return {
    id: String(r._id),
    userId: r.userId,
    channel: r.channel,
    dedupeKey: r.dedupeKey,
    triggerType: r.triggerType,
    target: { type: r.target.type, id: r.target.id },
    triggerId: orNull(r.triggerId),
    previewId: orNull(r.previewId),
    message: withoutNulls({ title: r.message.title, summary: r.message.summary, actionText: r.message.actionText, actionUrl: r.message.actionUrl }),
    traceId: orNull(r.traceId),
    status: r.status,
    statusReason: orNull(r.statusReason),
    attemptCount: r.attemptCount,
    maxAttempts: r.maxAttempts,
    nextRetryAt: iso(r.nextRetryAt),
    deferredUntil: iso(r.deferredUntil),
    lastErrorCode: orNull(r.lastErrorCode),
    lastError: orNull(r.lastError),
    providerMessageId: orNull(r.providerMessageId),
    sentAt: iso(r.sentAt),
    digestId: orNull(r.digestId),
    digestOf: r.digestOf?.length ? [...r.digestOf] : null,
    replyKind: orNull(r.replyKind),
    severity: orNull(r.severity),
    acknowledgedAt: iso(r.acknowledgedAt),
    reply: r.reply?.kind ? { kind: r.reply.kind, at: iso(r.reply.at)!, until: iso(r.reply.until) } : null,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
  };
}

export function toRecordDetailView(r: any): z.infer<typeof recordDetailView> {
  return {
    ...toRecordView(r),
    history: (r.history ?? []).map((h: any) => withoutNulls({ ...h, at: h.at.toISOString(), until: h.until ? h.until.toISOString() : undefined })),
    providerRequest: r.providerRequest ? JSON.parse(r.providerRequest) : null,
    providerResponse: r.providerResponse ? JSON.parse(r.providerResponse) : null,
  };
}
