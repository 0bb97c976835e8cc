/** Webhook endpoints: created with a secret shown once, changed, rotated, deleted. */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { WebhookEndpointDoc } from '../db/webhookEndpoint';
import { newEndpointSecret } from './ids';
import type { EndpointCreateBody, EndpointUpdateBody, EndpointView } from './schemas';
import * as t from './transitions';
import { toEndpointView } from './views';

type Ctx = Pick<AppContext, 'models' | 'secrets' | 'logger'>;

export async function createEndpoint(ctx: Ctx, body: EndpointCreateBody): Promise<EndpointView & { secret: string }> {
  const secret = newEndpointSecret();
  const doc = await t.insertEndpoint(ctx.models.webhookEndpoints, {
    url: body.url,
    events: body.events,
    secretSealed: ctx.secrets.seal(secret),
    ...(body.description ? { description: body.description } : {}),
  });
  ctx.logger.info({ endpointId: String(doc._id), events: body.events }, 'webhook endpoint created');
  return { ...toEndpointView(doc), secret };
}

export async function findEndpoint(ctx: Pick<AppContext, 'models'>, id: string): Promise<WebhookEndpointDoc | null> {
  return isValidObjectId(id) && /^[0-9a-f]{24}$/.test(id) ? ctx.models.webhookEndpoints.findById(id).lean<WebhookEndpointDoc>() : null;
}

export async function listEndpoints(ctx: Pick<AppContext, 'models'>): Promise<EndpointView[]> {
  const docs = await ctx.models.webhookEndpoints.find({}, { secretSealed: 0 }).sort({ _id: 1 }).lean<WebhookEndpointDoc[]>();
  return docs.map(toEndpointView);
}

export async function updateEndpoint(ctx: Ctx, id: string, body: EndpointUpdateBody): Promise<EndpointView | null> {
  if (!(await findEndpoint(ctx, id))) return null;
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  if (body.url !== undefined) set.url = body.url;
  if (body.events !== undefined) set.events = body.events;
  if (body.enabled !== undefined) set.enabled = body.enabled;
  if (body.description === null || body.description === '') unset.push('description');
  else if (body.description !== undefined) set.description = body.description;
  const doc = await t.updateEndpoint(ctx.models.webhookEndpoints, id, { set, unset }).lean<WebhookEndpointDoc>();
  if (doc) ctx.logger.info({ endpointId: id, fields: Object.keys(body) }, 'webhook endpoint changed');
  return doc ? toEndpointView(doc) : null;
}

/** A new secret, shown once; events signed from now on use it (the old one no longer verifies). */
export async function rotateSecret(ctx: Ctx, id: string, now = new Date()): Promise<{ id: string; secret: string; rotatedAt: string } | null> {
  if (!(await findEndpoint(ctx, id))) return null;
  const secret = newEndpointSecret();
  const doc = await t.rotateEndpointSecret(ctx.models.webhookEndpoints, id, { sealed: ctx.secrets.seal(secret), at: now });
  if (!doc) return null;
  ctx.logger.info({ endpointId: id }, 'webhook endpoint secret rotated');
  return { id, secret, rotatedAt: now.toISOString() };
}

export async function removeEndpoint(ctx: Ctx, id: string): Promise<boolean> {
  if (!isValidObjectId(id) || !/^[0-9a-f]{24}$/.test(id)) return false;
  const gone = await t.deleteEndpoint(ctx.models.webhookEndpoints, id);
  if (gone) ctx.logger.info({ endpointId: id }, 'webhook endpoint deleted');
  return Boolean(gone);
}
