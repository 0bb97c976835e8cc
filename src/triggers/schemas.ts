/** Trigger shapes: job payloads (versioned), the API body and the view. One zod schema each. */
import { z } from 'zod';
import { triggerSources, triggerStatuses, triggerTypes } from '../db/trigger';

const objectId = z.string().regex(/^[0-9a-f]{24}$/, 'must be a 24-character hex id');

export const triggerJobName = 'trigger';
/** The workflow job: run the triggered workflow for one trigger. */
export const triggerJobSchema = z.object({ v: z.literal(1), triggerId: objectId });
export type TriggerJob = z.infer<typeof triggerJobSchema>;

/** BullMQ job ids must not contain ':' nor be all digits. */
export const triggerJobId = (triggerId: string) => `trigger-${triggerId}`;

export const targetTypes = ['task', 'schedule_block'] as const;

export const createTriggerBody = z.strictObject({
  type: z.enum(triggerTypes),
  target: z.strictObject({
    type: z.enum(targetTypes).meta({ description: 'task for important_urgent_task; schedule_block (or task) for unfinished_feedback' }),
    id: objectId,
  }),
  idempotencyKey: z.string().min(1).max(200).optional().meta({ description: 'A repeat with the same key (and body) answers the same trigger' }),
});
export type CreateTriggerBody = z.infer<typeof createTriggerBody>;

export const triggerView = z.object({
  id: z.string(),
  type: z.string().meta({ description: 'important_urgent_task | unfinished_feedback, or an anomaly type' }),
  source: z.enum(triggerSources),
  target: z.object({ type: z.string(), id: z.string() }),
  status: z.enum(triggerStatuses),
  reason: z.string().nullable(),
  previewId: z.string().nullable(),
  notificationId: z.string().nullable(),
  dueJobId: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const createTriggerResult = triggerView.extend({
  created: z.boolean().meta({ description: 'false: an existing trigger (same idempotency key, or same user, type, target and window)' }),
});

export function toTriggerView(t: {
  _id: unknown;
  type: string;
  source: string;
  target: { type: string; id: string };
  status: string;
  reason?: string | null;
  previewId?: string | null;
  notificationId?: string | null;
  dueJobId?: string | null;
  createdAt?: Date;
  updatedAt?: Date;
}): z.infer<typeof triggerView> {
  return {
    id: String(t._id),
    type: t.type as any,
    source: t.source as any,
    target: { type: t.target.type, id: t.target.id },
    status: t.status as any,
    reason: t.reason ?? null,
    previewId: t.previewId ?? null,
    notificationId: t.notificationId ?? null,
    dueJobId: t.dueJobId ?? null,
    createdAt: (t.createdAt ?? new Date(0)).toISOString(),
    updatedAt: (t.updatedAt ?? new Date(0)).toISOString(),
  };
}
