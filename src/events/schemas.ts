/**
 * The shapes of the events feature: endpoint bodies (built from the URL policy, so the rules are
 * the operator's), the views the API answers, the pull API's query and the job payload.
 */
import { z } from 'zod';
import { deliveryStatuses } from '../db/eventDelivery';
import { endpointUrlProblem, MAX_ENDPOINT_URL_LENGTH, type EndpointUrlPolicy } from './endpointUrl';
import { eventDataSchemas, eventTypes, type EventType } from './types';

/** What an endpoint may subscribe to: every type but webhook.test (sent only by POST /:id/test), or '*'. */
export const subscribableTypes = eventTypes.filter((t) => t !== 'webhook.test') as Exclude<EventType, 'webhook.test'>[];

const eventsField = z
  .array(z.enum(['*', ...subscribableTypes], { message: `must be '*' or one of ${subscribableTypes.join(', ')}` }))
  .min(1, 'must name at least one event type, or ["*"]')
  .max(subscribableTypes.length + 1)
  .refine((list) => !list.includes('*') || list.length === 1, { message: '"*" must be alone: ["*"] is every event' })
  .transform((list) => [...new Set(list)])
  .meta({ description: `The event types it receives, or ["*"] for all: ${subscribableTypes.join(', ')}` });

function urlField(policy: EndpointUrlPolicy) {
  return z
    .string()
    .max(MAX_ENDPOINT_URL_LENGTH)
    .superRefine((raw, c) => {
      const problem = endpointUrlProblem(raw, policy);
      if (problem) c.addIssue({ code: 'custom', message: problem });
    })
    .transform((raw) => new URL(raw).href)
    .meta({ description: 'https URL of a public host (EVENT_ALLOWED_HOSTS when set); redirects are not followed' });
}

const description = z.string().trim().max(500);

export function endpointBodySchemas(policy: EndpointUrlPolicy) {
  const create = z.strictObject({ url: urlField(policy), events: eventsField, description: description.optional() }).meta({ title: 'WebhookEndpointCreate' });
  const update = z
    .strictObject({
      url: urlField(policy).optional(),
      events: eventsField.optional(),
      enabled: z.boolean().optional(),
      description: description.nullable().optional(),
    })
    .refine((b) => Object.keys(b).length > 0, { message: 'name at least one of url, events, enabled, description' })
    .meta({ title: 'WebhookEndpointUpdate' });
  return { create, update };
}
export type EndpointCreateBody = z.output<ReturnType<typeof endpointBodySchemas>['create']>;
export type EndpointUpdateBody = z.output<ReturnType<typeof endpointBodySchemas>['update']>;

export const endpointParams = z.object({ id: z.string().min(1).max(100) });
export const deliveryParams = endpointParams.extend({
  deliveryId: z.string().min(1).max(200).meta({ description: 'The delivery id (<endpointId>|<eventId>, URL-encoded) or the event id alone' }),
});

export const endpointView = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string().nullable(),
    enabled: z.boolean(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ title: 'WebhookEndpoint' });
export type EndpointView = z.infer<typeof endpointView>;

const secretField = z.string().meta({ description: 'whsec_ + base64 of 32 bytes; the signing key is the decoded bytes. Shown only in this answer.' });
export const createdEndpointView = endpointView.extend({ secret: secretField }).meta({ title: 'WebhookEndpointCreated' });
export const rotatedSecretView = z.object({ id: z.string(), secret: secretField, rotatedAt: z.iso.datetime() });

export const attemptView = z.object({
  at: z.iso.datetime(),
  attempt: z.number(),
  outcome: z.enum(['delivered', 'failed']),
  code: z.string().meta({ description: 'ok, non_2xx, redirect, timeout, network_error, address_refused' }),
  httpStatus: z.number().nullable(),
  durationMs: z.number(),
  response: z.string().nullable().meta({ description: "The first 1 KB of the endpoint's answer" }),
  detail: z.string().nullable(),
});

export const deliveryView = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    status: z.enum(deliveryStatuses),
    statusReason: z.string().nullable(),
    attemptCount: z.number(),
    maxAttempts: z.number(),
    nextRetryAt: z.iso.datetime().nullable(),
    deliveredAt: z.iso.datetime().nullable(),
    lastErrorCode: z.string().nullable(),
    lastError: z.string().nullable(),
    attempts: z.array(attemptView),
    history: z
      .array(z.object({ at: z.iso.datetime(), event: z.string(), code: z.string().nullable(), detail: z.string().nullable() }))
      .meta({ description: 'Replays, deaths and repairs, beside the attempts' }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ title: 'EventDelivery' });
export type DeliveryView = z.infer<typeof deliveryView>;

export const deliveryListQuery = z.object({
  status: z.enum(deliveryStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const testResultView = z.object({
  eventId: z.string(),
  deliveryId: z.string(),
  ok: z.boolean().meta({ description: 'The endpoint answered 2xx' }),
  code: z.string().meta({ description: 'ok, non_2xx, redirect, timeout, network_error, address_refused, or endpoint_busy (queued instead)' }),
  httpStatus: z.number().nullable(),
  durationMs: z.number().nullable(),
  body: z.string().nullable().meta({ description: "The first 1 KB of the endpoint's answer" }),
  detail: z.string().nullable(),
});
export type TestResultView = z.infer<typeof testResultView>;

const eventCommon = {
  id: z.string().meta({ description: 'Stable: the webhook-id header of every delivery of it' }),
  timestamp: z.iso.datetime(),
  userId: z.string().nullable(),
  cursor: z.string().meta({ description: 'Pass as ?after= to read the events after this one' }),
};
const eventVariants = eventTypes.map((type) => z.object({ ...eventCommon, type: z.literal(type), data: eventDataSchemas[type] }));
export const eventView = z
  .discriminatedUnion('type', eventVariants as [(typeof eventVariants)[number], ...typeof eventVariants])
  .meta({ title: 'Event', description: 'An event; its data per type (more fields may come)' });
export type EventView = { id: string; type: EventType; timestamp: string; userId: string | null; cursor: string; data: Record<string, unknown> };

export const eventListQuery = z.object({
  after: z
    .string()
    .regex(/^[0-9a-f]{24}$/, 'must be a cursor from a previous answer')
    .optional()
    .meta({ description: 'The cursor of the last event read; absent: from the oldest kept' }),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export const eventListView = z.object({
  items: z.array(eventView),
  nextCursor: z.string().nullable().meta({ description: 'The cursor to ask with next (the last item, or the one given when nothing is new)' }),
  hasMore: z.boolean(),
});

/** The events job payload; the version lets old jobs be recognised after a deploy. */
export const eventJobSchema = z.object({ v: z.literal(1), deliveryId: z.string().regex(/^[0-9a-f]{24}\|evt_[0-9a-f]{24}$/) });
export type EventJob = z.infer<typeof eventJobSchema>;
