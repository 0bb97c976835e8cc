/**
 * Events: how dueflow tells the host product what happened.
 *
 * How the pieces fit:
 * - The domain calls `emitEvent(ctx, {type, key, userId?, data, at?})` right after the change the
 *   event tells about (a preview confirmed, a record sent…). The event's id is derived from type
 *   and key (ids.ts), so emitting it again is a no-op: a retried request, a replayed job or a
 *   reconciler may all emit freely.
 * - emitEvent writes, in this order: the event (`events`, with an ObjectId `seq` for the pull
 *   API), one delivery per subscribed endpoint (`event_deliveries`, `_id` = `<endpointId>|<eventId>`),
 *   then `fannedOutAt` on the event, then one BullMQ job per delivery on the `events` queue.
 *   MongoDB holds the truth; a crash between any two steps is repaired by reconcile.ts (run by the
 *   maintenance job): events without `fannedOutAt` are fanned out again, pending or failed
 *   deliveries whose job is missing are enqueued again, deliveries left `sending` by a dead
 *   worker are taken back. A failing Redis does not fail the emit: the reconciler enqueues later.
 * - There are no transactions (FerretDB v1), so the change and its event are two writes. A change
 *   written without its event (a crash right between) is found by the domain's own reconciler,
 *   which calls `ensureEvent` (the same as emitEvent: the derived id makes it safe to call for
 *   changes that did get their event).
 * - processors/events.ts runs deliver.ts for each job: signed (send.ts), at most
 *   EVENT_ENDPOINT_CONCURRENCY in flight per endpoint (endpointSlots.ts), retried with backoff,
 *   every attempt in the ledger (transitions.ts); dead ones are replayed by Bull Board's Retry or
 *   POST /api/v1/webhook-endpoints/:id/deliveries/:deliveryId/retry.
 * - GET /api/v1/events (pull.ts) reads the same events in `seq` order, for a host product that
 *   would rather poll than receive.
 * - `emitEvents(ctx, inputs)` writes many events the same way with a command per step for the
 *   whole batch (the record relay, notifications/events.ts).
 */
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import { deliveryIdFor, eventIdFor } from './ids';
import { enqueueEventDeliveries } from './enqueue';
import { insertDeliveries, insertEvent, insertEvents, markFannedOut, markManyFannedOut, type NewEvent } from './transitions';
import { eventTypes, type EventType } from './types';

export interface EmitInput {
  type: EventType;
  /** What makes this event this one (e.g. the preview id for preview.confirmed): emitting twice with one key is one event. */
  key: string;
  userId?: string;
  data: Record<string, unknown>;
  at?: Date;
}

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger'>;

/** Largest `data` accepted (JSON bytes): an event tells what happened, the host product reads the rest by id. */
export const MAX_EVENT_DATA_BYTES = 64 * 1024;

export async function emitEvent(ctx: Ctx, event: EmitInput): Promise<void> {
  await writeEvent(ctx, event, { enqueue: true });
}

/** For changes found without their event (the domain's reconciler): the same as emitEvent, a no-op when the event exists. */
export function ensureEvent(ctx: Ctx, event: EmitInput): Promise<void> {
  return emitEvent(ctx, event);
}

export interface WrittenEvent {
  eventId: string;
  /** The deliveries it has (written now or before). */
  deliveryIds: string[];
}

/** Writes the event and its deliveries; `enqueue: false` leaves the jobs to the caller (POST /:id/test attempts at once). */
export async function writeEvent(ctx: Ctx, input: EmitInput, opts: { enqueue: boolean }): Promise<WrittenEvent> {
  const { type, key } = input;
  const { eventId, dataJson } = checked(input);
  const now = new Date();
  const endpointIds = await subscribers(ctx, { type, dataJson });
  const inserted = await insertEvent(ctx.models.events, {
    _id: eventId,
    type,
    key,
    ...(input.userId ? { userId: input.userId } : {}),
    dataJson,
    at: input.at ?? now,
    seq: new Types.ObjectId(),
    // Nobody to send it to: nothing to fan out, nothing for the reconciler to look at.
    ...(endpointIds.length ? {} : { fannedOutAt: now }),
  });
  if (inserted && !endpointIds.length) return { eventId, deliveryIds: [] };
  if (!inserted) {
    const existing = await ctx.models.events.findById(eventId, { fannedOutAt: 1 }).lean();
    if (existing?.fannedOutAt) return { eventId, deliveryIds: [] };
  }
  return fanOut(ctx, { event: { _id: eventId, type, dataJson }, endpointIds, enqueue: opts.enqueue });
}

/** Refuses what is not an event (unknown type, no key, data not an object or too big); answers its id and data as stored. */
function checked(input: EmitInput): { eventId: string; dataJson: string } {
  const { type, key, data } = input;
  if (!(eventTypes as readonly string[]).includes(type)) throw new TypeError(`unknown event type ${String(type)}`);
  if (typeof key !== 'string' || !key) throw new TypeError(`event ${type} needs a key`);
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TypeError(`event ${type} data must be an object`);
  const dataJson = JSON.stringify(data);
  if (Buffer.byteLength(dataJson) > MAX_EVENT_DATA_BYTES) throw new RangeError(`event ${type} data is over ${MAX_EVENT_DATA_BYTES} bytes`);
  return { eventId: eventIdFor(type, key), dataJson };
}

/**
 * emitEvent for many events, in a command per step instead of per event: one subscriber lookup,
 * one insert of all the events, then for those with somewhere to go (or found existing and not
 * fanned out) one insert of their deliveries, one update of fannedOutAt and one addBulk. `seq`
 * follows the order of `inputs`. Answers how many events were new. Not for webhook.test, which
 * goes to the one endpoint it tests (writeEvent).
 */
export async function emitEvents(ctx: Ctx, inputs: EmitInput[]): Promise<number> {
  if (inputs.some((i) => i.type === 'webhook.test')) throw new TypeError('webhook.test is emitted alone (writeEvent)');
  const byId = new Map<string, { input: EmitInput; dataJson: string }>();
  for (const input of inputs) {
    const { eventId, dataJson } = checked(input);
    // One event twice in a batch is one event, as it is across batches.
    if (!byId.has(eventId)) byId.set(eventId, { input, dataJson });
  }
  if (!byId.size) return 0;

  const now = new Date();
  const endpointsOf = await subscriberTable(ctx);
  const docs: NewEvent[] = [...byId].map(([eventId, { input, dataJson }]) => ({
    _id: eventId,
    type: input.type,
    key: input.key,
    ...(input.userId ? { userId: input.userId } : {}),
    dataJson,
    at: input.at ?? now,
    seq: new Types.ObjectId(),
    // Nobody to send it to: nothing to fan out, nothing for the reconciler to look at.
    ...(endpointsOf(input.type).length ? {} : { fannedOutAt: now }),
  }));
  const existed = await insertEvents(ctx.models.events, docs);
  // An existing one was fanned out already, or its emitter stopped before it was: those are fanned out now.
  const unfinished = existed.size
    ? await ctx.models.events.find({ _id: { $in: [...existed] }, fannedOutAt: { $exists: false } }, { _id: 1 }).lean<Array<{ _id: string }>>()
    : [];
  const unfinishedIds = new Set(unfinished.map((e) => String(e._id)));
  const toFanOut = docs.filter((d) => (existed.has(d._id) ? unfinishedIds.has(d._id) : !d.fannedOutAt));
  await fanOutMany(
    ctx,
    toFanOut.map((d) => ({ eventId: d._id, type: d.type, endpointIds: endpointsOf(d.type) })),
  );
  return docs.length - existed.size;
}

/** fanOut for many events whose endpoints are known: one insert of the deliveries, one update, one addBulk. */
async function fanOutMany(ctx: Ctx, events: Array<{ eventId: string; type: string; endpointIds: string[] }>): Promise<void> {
  if (!events.length) return;
  const deliveries = events.flatMap((e) =>
    e.endpointIds.map((endpointId) => ({
      _id: deliveryIdFor(endpointId, e.eventId),
      endpointId,
      eventId: e.eventId,
      eventType: e.type,
      maxAttempts: ctx.config.EVENT_ATTEMPTS,
    })),
  );
  await insertDeliveries(ctx.models.eventDeliveries, deliveries);
  await markManyFannedOut(
    ctx.models.events,
    events.map((e) => e.eventId),
    new Date(),
  );
  try {
    await enqueueEventDeliveries(
      ctx,
      deliveries.map((d) => ({ id: d._id })),
    );
  } catch (err) {
    // The deliveries are written: the reconciler enqueues them once Redis answers again.
    ctx.logger.warn({ events: events.length, err: (err as Error).message }, 'could not enqueue event deliveries; the reconciler will');
  }
  ctx.logger.debug({ events: events.length, deliveries: deliveries.length }, 'events fanned out');
}

interface FanOut {
  event: { _id: string; type: string; dataJson: string };
  /** Known already (emit); looked up when absent (reconciler). */
  endpointIds?: string[];
  enqueue: boolean;
}

/** Writes a delivery per endpoint the event goes to, marks it fanned out, enqueues the jobs. Safe to repeat. */
export async function fanOut(ctx: Ctx, f: FanOut): Promise<WrittenEvent> {
  const { event } = f;
  const endpointIds = f.endpointIds ?? (await subscribers(ctx, event));
  const deliveryIds = endpointIds.map((endpointId) => deliveryIdFor(endpointId, event._id));
  await insertDeliveries(
    ctx.models.eventDeliveries,
    endpointIds.map((endpointId, i) => ({
      _id: deliveryIds[i],
      endpointId,
      eventId: event._id,
      eventType: event.type,
      maxAttempts: ctx.config.EVENT_ATTEMPTS,
    })),
  );
  await markFannedOut(ctx.models.events, event._id, new Date());
  if (f.enqueue) {
    try {
      await enqueueEventDeliveries(
        ctx,
        deliveryIds.map((id) => ({ id })),
      );
    } catch (err) {
      // The deliveries are written: the reconciler enqueues them once Redis answers again.
      ctx.logger.warn({ eventId: event._id, err: (err as Error).message }, 'could not enqueue event deliveries; the reconciler will');
    }
  }
  ctx.logger.debug({ eventId: event._id, type: event.type, deliveries: deliveryIds.length }, 'event emitted');
  return { eventId: event._id, deliveryIds };
}

/** The endpoints an event goes to: enabled and subscribed (webhook.test: only the endpoint it tests). */
async function subscribers(ctx: Ctx, event: { type: string; dataJson: string }): Promise<string[]> {
  if (event.type === 'webhook.test') {
    const endpointId = (JSON.parse(event.dataJson) as { endpointId?: unknown }).endpointId;
    if (typeof endpointId !== 'string' || !Types.ObjectId.isValid(endpointId)) return [];
    return (await ctx.models.webhookEndpoints.exists({ _id: endpointId })) ? [endpointId] : [];
  }
  return (await subscriberTable(ctx))(event.type);
}

/** One read of the enabled endpoints, answering per event type the ids of those subscribed to it. */
async function subscriberTable(ctx: Ctx): Promise<(type: string) => string[]> {
  const endpoints = await ctx.models.webhookEndpoints.find({ enabled: true }, { events: 1 }).lean();
  const byType = new Map<string, string[]>();
  return (type) => {
    let ids = byType.get(type);
    if (!ids) byType.set(type, (ids = endpoints.filter((e) => e.events.includes('*') || e.events.includes(type)).map((e) => String(e._id))));
    return ids;
  };
}
