/** Webhook endpoints: created with a secret shown once, changed, rotated, deleted. */
import type { AppContext } from '../context';
import type { WebhookEndpointDoc } from '../db/webhookEndpoint';
import { newEndpointSecret } from './ids';
import type { EndpointCreateBody, EndpointUpdateBody, EndpointView } from './schemas';
import * as t from './transitions';
import { toEndpointView } from './views';
import { isStoredId } from '../db/ids';
import { guardedTransition, lockName } from '../db/guarded';

type Ctx = Pick<AppContext, 'models' | 'secrets' | 'logger' | 'store' | 'redis' | 'config'>;

/** A change and a rotation write the same endpoint: on a store that writes a document back whole, one must not undo the other. */
const endpointLock = (id: string) => lockName('webhook-endpoint', id);

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
  return isStoredId(id) ? ctx.models.webhookEndpoints.findById(id).lean<WebhookEndpointDoc>() : null;
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
  const doc = await guardedTransition(ctx, endpointLock(id), () =>
    t.updateEndpoint(ctx.models.webhookEndpoints, id, { set, unset }).lean<WebhookEndpointDoc>(),
  );
  if (doc) ctx.logger.info({ endpointId: id, fields: Object.keys(body) }, 'webhook endpoint changed');
  return doc ? toEndpointView(doc) : null;
}

/** A new secret, shown once; events signed from now on use it (the old one no longer verifies). */
export async function rotateSecret(ctx: Ctx, id: string, now = new Date()): Promise<{ id: string; secret: string; rotatedAt: string } | null> {
  if (!(await findEndpoint(ctx, id))) return null;
  const secret = newEndpointSecret();
  const doc = await guardedTransition(ctx, endpointLock(id), () =>
    t.rotateEndpointSecret(ctx.models.webhookEndpoints, id, { sealed: ctx.secrets.seal(secret), at: now }),
  );
  if (!doc) return null;
  ctx.logger.info({ endpointId: id }, 'webhook endpoint secret rotated');
  return { id, secret, rotatedAt: now.toISOString() };
}

export async function removeEndpoint(ctx: Ctx, id: string): Promise<boolean> {
  if (!isStoredId(id)) return false;
  const gone = await t.deleteEndpoint(ctx.models.webhookEndpoints, id);
  if (gone) ctx.logger.info({ endpointId: id }, 'webhook endpoint deleted');
  return Boolean(gone);
}
