/** An endpoint's deliveries: listed with their attempts, and dead ones replayed through the API. */
import type { AppContext } from '../context';
import type { DeliveryStatus, EventDeliveryDoc } from '../db/eventDelivery';
import { guardedTransition } from '../db/guarded';
import { enqueueEventDeliveries } from './enqueue';
import { deliveryIdFor, deliveryIdPattern, eventIdPattern, eventJobId } from './ids';
import type { DeliveryView } from './schemas';
import { deliveryLock, requeueDead } from './transitions';
import { toDeliveryView } from './views';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

/** Newest first. */
export async function listDeliveries(
  ctx: Pick<AppContext, 'models'>,
  endpointId: string,
  q: { status?: DeliveryStatus; limit: number },
): Promise<DeliveryView[]> {
  const filter: Record<string, unknown> = { endpointId };
  if (q.status) filter.status = q.status;
  const docs = await ctx.models.eventDeliveries.find(filter).sort({ createdAt: -1, _id: -1 }).limit(q.limit).lean<EventDeliveryDoc[]>();
  return docs.map(toDeliveryView);
}

/** The delivery's full id from what the path named: the full id, or the event id alone. */
export function resolveDeliveryId(endpointId: string, named: string): string | undefined {
  if (eventIdPattern.test(named)) return deliveryIdFor(endpointId, named);
  if (deliveryIdPattern.test(named) && named.startsWith(`${endpointId}|`)) return named;
  return undefined;
}

export type RetryOutcome = { kind: 'requeued'; delivery: DeliveryView } | { kind: 'not_dead'; delivery: DeliveryView } | { kind: 'not_found' };

/** dead → pending with a new round of EVENT_ATTEMPTS, and a new job (the failed one is removed, so its id is free). */
export async function retryDelivery(ctx: Ctx, endpointId: string, deliveryId: string, now = new Date()): Promise<RetryOutcome> {
  const D = ctx.models.eventDeliveries;
  const current = await D.findById(deliveryId).lean<EventDeliveryDoc>();
  if (!current || current.endpointId !== endpointId) return { kind: 'not_found' };
  if (current.status !== 'dead') return { kind: 'not_dead', delivery: toDeliveryView(current) };
  const requeued = await guardedTransition(ctx, deliveryLock(deliveryId), () =>
    requeueDead(D, { id: deliveryId, now, attemptCount: current.attemptCount, maxAttempts: ctx.config.EVENT_ATTEMPTS }).lean<EventDeliveryDoc>(),
  );
  if (!requeued) {
    const moved = await D.findById(deliveryId).lean<EventDeliveryDoc>();
    return moved ? { kind: 'not_dead', delivery: toDeliveryView(moved) } : { kind: 'not_found' };
  }
  // A crash right here leaves it pending with its old, failed job: the reconciler replaces that job.
  const old = await ctx.queues.events.getJob(eventJobId(deliveryId));
  if (old) await old.remove().catch(() => undefined);
  await enqueueEventDeliveries(ctx, [{ id: deliveryId }]);
  ctx.logger.info({ deliveryId, eventId: current.eventId, endpointId }, 'event delivery replayed through the API');
  return { kind: 'requeued', delivery: toDeliveryView(requeued) };
}
