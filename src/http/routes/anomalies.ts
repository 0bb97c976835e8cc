/** Anomaly intake for other services: report one (it becomes a trigger and one notification) and follow it. */
import { isValidObjectId } from 'mongoose';
import { z } from 'zod';
import type { AppContext } from '../../context';
import { anomalyAccepted, anomalyBody, anomalyView } from '../../anomalies/schemas';
import { loadAnomaly, reportAnomaly } from '../../anomalies/intake';
import { HttpError, notFound } from '../errors';
import { acknowledge } from '../../anomalies/acknowledge';
import { answerPlace } from '../answerPlace';
import { answerPlaces } from '../../db/trigger';
import { defineRoute } from '../route';

const tag = 'anomalies';
const acknowledgedView = z.object({ id: z.string(), acknowledgedAt: z.string(), acknowledgedVia: z.enum(answerPlaces) });
const base = '/api/v1/anomalies';

export function anomalyRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'post',
      path: base,
      tag,
      auth: 'service',
      body: anomalyBody,
      summary:
        'Report an anomaly for a user: it is sent as one message (critical ones even in quiet hours); deduplicated by idempotencyKey and by user, type, target and 30-minute window of occurredAt',
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
      method: 'get',
      path: `${base}/:id`,
      tag,
      auth: 'service',
      params: z.object({ id: z.string().min(1).max(64) }),
      summary: 'One anomaly: its trigger, its notification record and status',
      responses: { 200: { description: 'The anomaly', schema: anomalyView }, 404: { description: 'No such anomaly' } },
      handler: async ({ params }) => {
        const view = isValidObjectId(params.id) ? await loadAnomaly(ctx, params.id) : null;
        if (!view) throw notFound('anomaly');
        return { status: 200, body: view };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/:id/acknowledge`,
      tag,
      auth: 'user',
      params: z.object({ id: z.string().min(1).max(64) }),
      summary: 'Acknowledge one of my anomalies: its escalation stops and its cards say so',
      responses: {
        200: { description: 'Acknowledged now', schema: acknowledgedView },
        404: { description: 'No such anomaly of yours' },
        409: { description: 'already_acknowledged' },
      },
      handler: async ({ userId, params, req }) => {
        const r = await acknowledge(ctx, { userId, triggerId: params.id, via: answerPlace(req) });
        if (r.kind === 'not_found') throw notFound('anomaly');
        const a = r.trigger.anomaly!;
        const body = { id: String(r.trigger._id), acknowledgedAt: a.acknowledgedAt!.toISOString(), acknowledgedVia: a.acknowledgedVia! };
        if (r.kind === 'already') throw new HttpError(409, 'already_acknowledged', `acknowledged already at ${body.acknowledgedAt}`, body);
        return { status: 200, body };
      },
    }),
  ];
}
