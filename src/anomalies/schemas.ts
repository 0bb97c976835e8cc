/** Anomaly shapes: the intake body (validation + type + OpenAPI) and the view. One zod schema each. */
import { z } from 'zod';
import { anomalySeverities, triggerStatuses, triggerTypePattern, triggerTypes } from '../db/trigger';
import { recordStatuses } from '../db/notificationRecord';

/** How far ahead of our clock occurredAt may be (the reporter's clock may run a little fast). */
export const futureSkewMs = 5 * 60_000;

export const anomalyBody = z.strictObject({
  userId: z.string().min(1).max(128).meta({ description: 'The user to notify' }),
  type: z
    .string()
    .regex(triggerTypePattern, 'must be lowercase letters, digits and _, starting with a letter, at most 64 (like disk_almost_full)')
    // Their dedupe keys would meet dueflow's own triggers of the same target and window.
    .refine((t) => !(triggerTypes as readonly string[]).includes(t), `must not be one of dueflow's own trigger types (${triggerTypes.join(', ')})`)
    .meta({ description: 'The kind of anomaly, e.g. disk_almost_full; also the type users can opt out of' }),
  severity: z.enum(anomalySeverities, { message: "must be 'info', 'warning' or 'critical'" }).meta({ description: 'critical is sent even in quiet hours' }),
  targetType: z.string().trim().min(1).max(64).meta({ description: 'What the anomaly is about, e.g. server, task' }),
  targetId: z.string().trim().min(1).max(128),
  title: z.string().trim().min(1).max(150),
  detail: z.string().trim().min(1).max(4000),
  occurredAt: z.iso
    .datetime({ offset: true, message: 'must be an ISO 8601 date-time, like 2026-11-26T08:00:00Z' })
    .refine((s) => Date.parse(s) <= Date.now() + futureSkewMs, 'must not be in the future')
    .meta({ description: 'When it happened; with type and target it decides the 30-minute dedupe window' }),
  idempotencyKey: z.string().min(1).max(200).meta({ description: 'A repeat with the same key and body answers the same anomaly; another body is 422' }),
  actionUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .max(2048)
    .optional(),
});
export type AnomalyBody = z.infer<typeof anomalyBody>;

export const anomalyAccepted = z.object({
  id: z.string().meta({ description: 'The trigger id' }),
  status: z.enum(triggerStatuses),
  created: z.boolean().meta({ description: 'false: an existing anomaly (same idempotency key, or same user, type, target and 30-minute window)' }),
});

export const anomalyView = z.object({
  id: z.string(),
  /** The notification's status once there is one, else the trigger's. */
  status: z.string().meta({ description: "The notification's status once requested (pending, sent, ...), else the trigger's (pending, processing, failed)" }),
  trigger: z.object({
    id: z.string(),
    userId: z.string(),
    type: z.string(),
    source: z.string(),
    target: z.object({ type: z.string(), id: z.string() }),
    status: z.enum(triggerStatuses),
    reason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
  anomaly: z.object({ severity: z.enum(anomalySeverities), title: z.string(), detail: z.string(), occurredAt: z.string(), actionUrl: z.string().nullable() }),
  notification: z
    .object({
      id: z.string(),
      status: z.enum(recordStatuses),
      attemptCount: z.number(),
      sentAt: z.string().nullable(),
      deferredUntil: z.string().nullable(),
      urgent: z.boolean(),
      digest: z
        .object({ id: z.string(), status: z.enum(recordStatuses), sentAt: z.string().nullable() })
        .nullable()
        .meta({ description: 'When the message went out grouped with others (status digested): the digest record that carried it' }),
    })
    .nullable(),
});
export type AnomalyView = z.infer<typeof anomalyView>;
