/**
 * The events dueflow tells the host product about (Standard Webhooks, and GET /api/v1/events),
 * and the `data` each carries. The schemas document the shapes (OpenAPI); emitEvent accepts
 * any object, so a field added by the domain reaches the host product without a change here.
 */
import { z } from 'zod';

export const eventTypes = [
  'preview.confirmed',
  'preview.rejected',
  'preview.expired',
  'notification.sent',
  'notification.skipped',
  'notification.dead',
  'anomaly.acknowledged',
  'anomaly.escalated',
  'reminder.snoozed',
  'reminder.done',
  'webhook.test',
] as const;
export type EventType = (typeof eventTypes)[number];

const iso = z.iso.datetime();
const answerPlace = z.enum(['app', 'feishu', 'api']).meta({ description: 'Where it was answered: the dueflow page, a Feishu card, the API' });
const taskRef = z
  .object({ id: z.string(), externalId: z.string().nullable().meta({ description: "The host product's id of the task, when it synced it" }) })
  .nullable();

const preview = { previewId: z.string(), userId: z.string(), triggerId: z.string().optional(), task: taskRef };
const notification = {
  recordId: z.string(),
  userId: z.string(),
  channel: z.string(),
  dedupeKey: z.string(),
  triggerType: z.string(),
};
const anomaly = { anomalyId: z.string(), userId: z.string(), type: z.string().optional() };
const reminder = { recordId: z.string(), userId: z.string().optional(), reminderId: z.string().nullable() };

/** `data` per event type. Loose: more fields may come. */
export const eventDataSchemas = {
  'preview.confirmed': z.looseObject({
    ...preview,
    block: z.object({ id: z.string(), start: iso, end: iso }).nullable().meta({ description: 'The block the confirmation put in the schedule' }),
    confirmedVia: answerPlace,
  }),
  'preview.rejected': z.looseObject({ ...preview, rejectedVia: answerPlace }),
  'preview.expired': z.looseObject({ ...preview, expiresAt: iso }),
  'notification.sent': z.looseObject(notification),
  'notification.skipped': z.looseObject({ ...notification, reason: z.string().meta({ description: 'user_opted_out, recipient_missing…' }) }),
  'notification.dead': z.looseObject({
    ...notification,
    code: z.string().meta({ description: 'attempts_exhausted, or the provider code that made it permanent' }),
  }),
  'anomaly.acknowledged': z.looseObject({ ...anomaly, acknowledgedAt: iso.optional(), acknowledgedVia: answerPlace.optional() }),
  'anomaly.escalated': z.looseObject({
    ...anomaly,
    step: z.number().int().meta({ description: '1: the message buzzed; 2: sent to the fallback channel' }),
    action: z.string().optional(),
    outcome: z.string().optional(),
  }),
  'reminder.snoozed': z.looseObject({ ...reminder, until: iso }),
  'reminder.done': z.looseObject(reminder),
  'webhook.test': z.looseObject({ endpointId: z.string(), message: z.string() }),
} satisfies Record<EventType, z.ZodType>;
