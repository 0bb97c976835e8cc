/** Anomaly intake for other services: report one (it becomes a trigger and one notification) and follow it. */
import { isValidObjectId } from 'mongoose';
import { z } from 'zod';
import type { AppContext } from '../../context';
import { anomalyAccepted, anomalyBody, anomalyView } from '../../anomalies/schemas';
import { loadAnomaly, reportAnomaly } from '../../anomalies/intake';
import { notFound } from '../errors';
import { defineRoute } from '../route';

const tag = 'anomalies';
const base = '/api/v1/anomalies';

export function anomalyRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'post', path: base, tag, auth: 'service', body: anomalyBody,
      summary: 'Report an anomaly for a user: it is sent as one message (critical ones even in quiet hours); deduplicated by idempotencyKey and by user, type, target and 30-minute window of occurredAt',
      responses: {
        202: { description: 'A new anomaly; its notification is on the way', schema: anomalyAccepted },
        200: { description: 'An existing anomaly (same idempotencyKey and body, or same user, type, target and window)', schema: anomalyAccepted },
        422: { description: 'The idempotencyKey was used with another body' },
      },
      handler: async ({ body }) => {
        const { trigger, created } = await reportAnomaly(ctx, body);
        return { status: created ? 202 : 200, body: { id: String(trigger._id), status: trigger.status, created } };
      },
    }),
    defineRoute({
      method: 'get', path: `${base}/:id`, tag, auth: 'service', params: z.object({ id: z.string().min(1).max(64) }),
      summary: 'One anomaly: its trigger, its notification record and status',
      responses: { 200: { description: 'The anomaly', schema: anomalyView }, 404: { description: 'No such anomaly' } },
      handler: async ({ params }) => {
        const view = isValidObjectId(params.id) ? await loadAnomaly(ctx, params.id) : null;
        if (!view) throw notFound('anomaly');
        return { status: 200, body: view };
      },
    }),
  ];
}
