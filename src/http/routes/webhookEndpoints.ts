/**
 * Webhook endpoints of the host product (service), their deliveries, and the events API: what
 * dueflow tells the host product, pushed (Standard Webhooks) or pulled (GET /api/v1/events).
 */
import { z } from 'zod';
import type { AppContext } from '../../context';
import { createEndpointSlots } from '../../events/endpointSlots';
import { createEndpoint, findEndpoint, listEndpoints, removeEndpoint, rotateSecret, updateEndpoint } from '../../events/endpoints';
import { listDeliveries, resolveDeliveryId, retryDelivery } from '../../events/deliveries';
import { sendingLeaseMs } from '../../events/deliver';
import { listEvents } from '../../events/pull';
import {
  createdEndpointView,
  deliveryListQuery,
  deliveryParams,
  deliveryView,
  endpointBodySchemas,
  endpointParams,
  endpointView,
  eventListQuery,
  eventListView,
  rotatedSecretView,
  testResultView,
} from '../../events/schemas';
import { createEventSender } from '../../events/send';
import { sendTestEvent } from '../../events/testSend';
import { toEndpointView } from '../../events/views';
import { HttpError } from '../errors';
import { defineRoute } from '../route';

const tag = 'webhook endpoints';
const base = '/api/v1/webhook-endpoints';
const missing = (id: string) => new HttpError(404, 'not_found', `no webhook endpoint ${id.slice(0, 100)}; list them with GET ${base}`);

export function webhookEndpointRoutes(ctx: AppContext) {
  const bodies = endpointBodySchemas(ctx.config);
  // The test send goes out from the API process, through the same guard and limits as the worker's.
  const deps = {
    sender: createEventSender({ allowLoopback: ctx.config.WEBHOOK_ALLOW_LOOPBACK, timeoutMs: ctx.config.EVENT_TIMEOUT_MS }),
    slots: createEndpointSlots(ctx.redis, {
      prefix: ctx.config.QUEUE_PREFIX,
      limit: ctx.config.EVENT_ENDPOINT_CONCURRENCY,
      holdMs: sendingLeaseMs(ctx.config),
    }),
  };
  const existing = async (id: string) => {
    const endpoint = await findEndpoint(ctx, id);
    if (!endpoint) throw missing(id);
    return endpoint;
  };

  return [
    defineRoute({
      method: 'post',
      path: base,
      tag,
      auth: 'service',
      body: bodies.create,
      summary: 'Add an endpoint for events; the answer shows its signing secret, once',
      responses: { 201: { description: 'Created; keep the secret: it is never shown again', schema: createdEndpointView } },
      handler: async ({ body }) => ({ status: 201, body: await createEndpoint(ctx, body) }),
    }),
    defineRoute({
      method: 'get',
      path: base,
      tag,
      auth: 'service',
      summary: 'The webhook endpoints (no secrets)',
      responses: { 200: { description: 'Oldest first', schema: z.object({ items: z.array(endpointView) }) } },
      handler: async () => ({ status: 200, body: { items: await listEndpoints(ctx) } }),
    }),
    defineRoute({
      method: 'get',
      path: `${base}/:id`,
      tag,
      auth: 'service',
      params: endpointParams,
      summary: 'One webhook endpoint (no secret)',
      responses: { 200: { description: 'The endpoint', schema: endpointView }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => ({ status: 200, body: toEndpointView(await existing(params.id)) }),
    }),
    defineRoute({
      method: 'patch',
      path: `${base}/:id`,
      tag,
      auth: 'service',
      params: endpointParams,
      body: bodies.update,
      summary: 'Change the URL, the events, enabled or the description; deliveries already made keep going to the endpoint as it is when they are sent',
      responses: { 200: { description: 'The endpoint after', schema: endpointView }, 404: { description: 'No such endpoint' } },
      handler: async ({ params, body }) => {
        const updated = await updateEndpoint(ctx, params.id, body);
        if (!updated) throw missing(params.id);
        return { status: 200, body: updated };
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${base}/:id`,
      tag,
      auth: 'service',
      params: endpointParams,
      summary: 'Remove an endpoint; its deliveries not yet made end dead (endpoint_missing)',
      responses: { 204: { description: 'Removed' }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => {
        if (!(await removeEndpoint(ctx, params.id))) throw missing(params.id);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/:id/test`,
      tag,
      auth: 'service',
      params: endpointParams,
      summary: 'Send a webhook.test event to this endpoint now and answer what it replied (retried like any event if it fails)',
      responses: {
        200: { description: 'The endpoint was asked; ok says whether it answered 2xx', schema: testResultView },
        404: { description: 'No such endpoint' },
        409: { description: 'The endpoint is disabled' },
      },
      handler: async ({ params }) => {
        const endpoint = await existing(params.id);
        if (!endpoint.enabled)
          throw new HttpError(409, 'endpoint_disabled', `webhook endpoint ${params.id} is disabled; enable it (PATCH with enabled: true) to test it`);
        return { status: 200, body: await sendTestEvent(ctx, params.id, deps) };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/:id/rotate-secret`,
      tag,
      auth: 'service',
      params: endpointParams,
      summary: 'Replace the signing secret; the answer shows the new one, once. Events sent from now on are signed with it only',
      responses: { 200: { description: 'The new secret', schema: rotatedSecretView }, 404: { description: 'No such endpoint' } },
      handler: async ({ params }) => {
        const rotated = await rotateSecret(ctx, params.id);
        if (!rotated) throw missing(params.id);
        return { status: 200, body: rotated };
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/:id/deliveries`,
      tag,
      auth: 'service',
      params: endpointParams,
      query: deliveryListQuery,
      summary: "The endpoint's deliveries, newest first, each with its attempts (status, duration, the first 1 KB of the answer)",
      responses: { 200: { description: 'Deliveries', schema: z.object({ items: z.array(deliveryView) }) }, 404: { description: 'No such endpoint' } },
      handler: async ({ params, query }) => {
        await existing(params.id);
        return { status: 200, body: { items: await listDeliveries(ctx, params.id, query) } };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/:id/deliveries/:deliveryId/retry`,
      tag,
      auth: 'service',
      params: deliveryParams,
      summary: 'Replay a dead delivery: a new round of EVENT_ATTEMPTS attempts, with the same webhook-id',
      responses: {
        202: { description: 'Queued again', schema: deliveryView },
        404: { description: 'No such endpoint or delivery' },
        409: { description: 'The delivery is not dead' },
      },
      handler: async ({ params }) => {
        await existing(params.id);
        const deliveryId = resolveDeliveryId(params.id, params.deliveryId);
        if (!deliveryId) throw new HttpError(404, 'not_found', `no delivery ${params.deliveryId.slice(0, 100)} of webhook endpoint ${params.id}`);
        const outcome = await retryDelivery(ctx, params.id, deliveryId);
        if (outcome.kind === 'not_found') throw new HttpError(404, 'not_found', `no delivery ${deliveryId} of webhook endpoint ${params.id}`);
        if (outcome.kind === 'not_dead')
          throw new HttpError(409, 'not_dead', `delivery ${deliveryId} is ${outcome.delivery.status}; only a dead delivery is replayed`, {
            status: outcome.delivery.status,
          });
        return { status: 202, body: outcome.delivery };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/events',
      tag: 'events',
      auth: 'service',
      query: eventListQuery,
      summary: `Every event, oldest first, from a cursor (the pull alternative to webhooks); kept ${ctx.config.EVENT_RETENTION_DAYS} days`,
      responses: { 200: { description: 'A page of events', schema: eventListView } },
      handler: async ({ query }) => ({ status: 200, body: await listEvents(ctx, query) }),
    }),
  ];
}
