/** The shapes of a notification request and of a delivery job: one zod schema each. */
import { z } from 'zod';
import { channelKinds, recordStatuses, type ReplyKind } from '../db/notificationRecord';

export const messageSchema = z.object({
  title: z.string().trim().min(1).max(200),
  summary: z.string().trim().min(1).max(20_000),
  actionText: z.string().trim().min(1).max(40).optional(),
  actionUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .max(2048)
    .optional(),
});

export const notificationRequestSchema = z.object({
  userId: z.string().min(1).max(128),
  /** Else the user's enabled channel. */
  channel: z.enum(channelKinds).optional(),
  /** Unique per channel: a second request with the same key reuses the record and sends nothing. */
  dedupeKey: z.string().min(1).max(256),
  triggerType: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'lowercase letters, digits, _ . - (like important_urgent_task)'),
  target: z.object({ type: z.string().min(1).max(64), id: z.string().min(1).max(128) }),
  message: messageSchema,
  traceId: z.string().min(1).max(128).optional(),
  triggerId: z.string().min(1).max(128).optional(),
  previewId: z.string().min(1).max(128).optional(),
  urgent: z.boolean().optional().meta({ description: "true: sent even in the user's quiet hours (critical alerts only)" }),
});
export type NotificationRequest = z.infer<typeof notificationRequestSchema> & {
  /** dueflow's own anomaly messages: may be grouped into a digest when the user gets many (notifications/digest.ts). */
  digestible?: boolean;
  /** The answers its card offers on the app channel (dueflow's own messages). */
  replyKind?: ReplyKind;
  /** An anomaly's severity (the card's colour). */
  severity?: string;
  /** Not sent before this (a snoozed reminder). */
  notBefore?: Date;
};

export const requestResultSchema = z.object({
  id: z.string(),
  status: z.enum(recordStatuses),
  /** true when the dedupe key already had a record: nothing new is sent. */
  reused: z.boolean(),
});
export type RequestResult = z.infer<typeof requestResultSchema>;

/** Delivery job payload. The version lets old jobs in Redis be recognised after a deploy. */
export const deliveryJobSchema = z.object({
  v: z.literal(1),
  recordId: z.string().regex(/^[0-9a-f]{24}$/),
});
export type DeliveryJob = z.infer<typeof deliveryJobSchema>;

/** BullMQ job ids must not contain ':' nor be all digits. */
export const deliveryJobId = (recordId: string) => `notification-${recordId}`;
