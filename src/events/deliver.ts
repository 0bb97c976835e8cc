/**
 * deliverEvent: one run of an events job (or the attempt POST /:id/test makes at once). Takes
 * one of the endpoint's slots, loads the delivery, its endpoint and its event by `_id`, decides,
 * claims, sends, writes the attempt, and says what the queue should do next. It never talks
 * BullMQ: processors/events.ts translates.
 *
 * Safe to run twice: a delivery that is delivered, or being sent by someone else, is left alone.
 * The duplicate it cannot rule out (at-least-once): a worker dying after the endpoint answered
 * and before the ledger says so; the lease then lets another worker send it again, with the same
 * webhook-id, so the receiver can tell.
 */
import type { AppContext } from '../context';
import type { DeliveryReason, EventDeliveryDoc } from '../db/eventDelivery';
import type { WebhookEndpointDoc } from '../db/webhookEndpoint';
import { guardedTransition, StoreBusyError } from '../db/guarded';
import { retryDelayMs } from '../notifications/backoff';
import { endpointUrlProblem } from './endpointUrl';
import type { EndpointSlots } from './endpointSlots';
import { wireMessage, type EventSender, type SendResult, type StoredEvent } from './send';
import * as t from './transitions';

type Ctx = Pick<AppContext, 'models' | 'secrets' | 'config' | 'logger' | 'redis' | 'store'>;

export type EventDeliveryStep =
  /** Nothing more to do: delivered (or someone else is on it). */
  | { kind: 'done'; status: string }
  /** Run again at `until` without spending an attempt (the endpoint's slots are full, another worker is sending). */
  | { kind: 'delay'; until: Date; reason: string }
  /** The attempt failed: retry after `delayMs` (the ledger says failed, nextRetryAt). */
  | { kind: 'retry'; delayMs: number; code: string; detail: string }
  /** Dead: the round's attempts are spent, or it cannot be sent. */
  | { kind: 'dead'; code: string; detail: string };

export interface EventDeliveryRun {
  step: EventDeliveryStep;
  /** The attempt this run made, if it made one. */
  attempt?: t.AttemptEntry;
}

/** BullMQ's count of the job's failed attempts; absent when no job runs it (POST /:id/test). */
export interface JobAttempt {
  attemptsMade: number;
  attempts: number;
}

export interface EventDeliveryDeps {
  sender: EventSender;
  slots: EndpointSlots;
  now?: () => Date;
}

/** A delivery stays `sending` at most this long before it may be taken over: the longest attempt, and room to write it. */
export const sendingLeaseMs = (config: Pick<AppContext['config'], 'EVENT_TIMEOUT_MS'>) => config.EVENT_TIMEOUT_MS + 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A job over its endpoint's limit comes back this soon: sooner than any retry, spread so they do not return together. */
const busyDelayMs = () => 250 + Math.floor(Math.random() * 500);

// ── the decisions (pure) ─────────────────────────────────────────────────────────────────────

export type Decision =
  | { kind: 'done'; status: string }
  | { kind: 'wait'; until: Date; reason: string }
  | { kind: 'dead'; reason: DeliveryReason; detail: string }
  | { kind: 'send'; replay: boolean };

export interface DecisionInput {
  delivery: Pick<EventDeliveryDoc, 'status' | 'sendingSince'>;
  endpoint: Pick<WebhookEndpointDoc, 'url' | 'enabled'> | null;
  event: StoredEvent | null;
  policy: Parameters<typeof endpointUrlProblem>[1];
  leaseMs: number;
  now: Date;
}

/** What to do with a delivery as loaded. A dead one only runs again when an operator retries its job: a replay. */
export function decideDelivery(i: DecisionInput): Decision {
  const { delivery: d } = i;
  if (d.status === 'delivered') return { kind: 'done', status: d.status };
  if (d.status === 'sending' && d.sendingSince && d.sendingSince.getTime() > i.now.getTime() - i.leaseMs) {
    return { kind: 'wait', until: new Date(d.sendingSince.getTime() + i.leaseMs), reason: 'another worker is sending' };
  }
  if (!i.endpoint) return { kind: 'dead', reason: 'endpoint_missing', detail: 'the webhook endpoint was deleted' };
  if (!i.endpoint.enabled) return { kind: 'dead', reason: 'endpoint_disabled', detail: 'the webhook endpoint is disabled; enable it and retry the delivery' };
  if (!i.event) return { kind: 'dead', reason: 'event_missing', detail: 'the event is gone (purged?)' };
  const problem = endpointUrlProblem(i.endpoint.url, i.policy);
  if (problem) return { kind: 'dead', reason: 'url_refused', detail: `the endpoint URL ${problem}` };
  return { kind: 'send', replay: d.status === 'dead' };
}

export type Settlement = { kind: 'delivered' } | { kind: 'dead'; reason: DeliveryReason } | { kind: 'failed'; delayMs: number };

/** What an attempt's result makes of the delivery: any 2xx is delivered; a refused address is dead at once; the rest retries until the round's attempts are spent. */
export function settleAttempt(
  result: SendResult,
  round: { attempt: number; maxAttempts: number },
  backoff: { baseMs: number; maxMs: number },
  random = Math.random,
): Settlement {
  if (result.kind === 'answered' && result.status >= 200 && result.status < 300) return { kind: 'delivered' };
  if (result.kind === 'no_answer' && result.code === 'address_refused') return { kind: 'dead', reason: 'address_refused' };
  if (round.attempt >= round.maxAttempts) return { kind: 'dead', reason: 'attempts_exhausted' };
  return { kind: 'failed', delayMs: retryDelayMs(round.attempt, backoff.baseMs, backoff.maxMs, random) };
}

export function attemptEntry(result: SendResult, attempt: number, at: Date): t.AttemptEntry {
  if (result.kind === 'no_answer')
    return { at, attempt, outcome: 'failed', code: result.code, durationMs: result.durationMs, detail: result.detail.slice(0, 500) };
  const ok = result.status >= 200 && result.status < 300;
  const code = ok ? 'ok' : result.status >= 300 && result.status < 400 ? 'redirect' : 'non_2xx';
  return {
    at,
    attempt,
    outcome: ok ? 'delivered' : 'failed',
    code,
    httpStatus: result.status,
    durationMs: result.durationMs,
    response: result.body,
    ...(code === 'redirect' ? { detail: `HTTP ${result.status}: redirects are not followed; give the endpoint's final URL` } : {}),
  };
}

// ── the run ──────────────────────────────────────────────────────────────────────────────────

export async function deliverEvent(ctx: Ctx, deliveryId: string, job: JobAttempt | undefined, deps: EventDeliveryDeps): Promise<EventDeliveryRun> {
  const now = deps.now ?? (() => new Date());
  // The slot first, from the endpoint id inside the delivery id: a job bouncing off a busy endpoint costs one Redis call, no reads.
  const release = await deps.slots.take(deliveryId.split('|')[0]);
  if (!release) return { step: { kind: 'delay', until: new Date(now().getTime() + busyDelayMs()), reason: 'endpoint_busy' } };
  try {
    return await deliverHoldingSlot(ctx, deliveryId, job, { ...deps, now });
  } finally {
    await release();
  }
}

async function deliverHoldingSlot(
  ctx: Ctx,
  deliveryId: string,
  job: JobAttempt | undefined,
  deps: EventDeliveryDeps & { now: () => Date },
): Promise<EventDeliveryRun> {
  const { models } = ctx;
  const { now } = deps;
  const delivery = await models.eventDeliveries.findById(deliveryId, { history: 0 }).lean<EventDeliveryDoc>();
  if (!delivery) return { step: { kind: 'dead', code: 'delivery_missing', detail: `no event delivery ${deliveryId}` } };
  const [endpoint, event] = await Promise.all([
    models.webhookEndpoints.findById(delivery.endpointId).lean<WebhookEndpointDoc>(),
    models.events.findById(delivery.eventId, { type: 1, at: 1, dataJson: 1 }).lean<StoredEvent>(),
  ]);
  const leaseMs = sendingLeaseMs(ctx.config);
  const decision = decideDelivery({ delivery, endpoint, event, policy: ctx.config, leaseMs, now: now() });
  switch (decision.kind) {
    case 'done':
      return { step: { kind: 'done', status: decision.status } };
    case 'wait':
      return { step: { kind: 'delay', until: decision.until, reason: decision.reason } };
    case 'dead': {
      await guardedTransition(ctx, t.deliveryLock(deliveryId), () =>
        t.markDead(models.eventDeliveries, { id: deliveryId, now: now(), reason: decision.reason, detail: decision.detail }),
      );
      return { step: { kind: 'dead', code: decision.reason, detail: decision.detail } };
    }
  }

  const claimedAt = now();
  const replayOf = decision.replay ? { attemptCount: delivery.attemptCount, maxAttempts: ctx.config.EVENT_ATTEMPTS } : undefined;
  let claimed: EventDeliveryDoc | null;
  try {
    claimed = await guardedTransition(ctx, t.deliveryLock(deliveryId), () =>
      t.claimDelivery(models.eventDeliveries, { id: deliveryId, now: claimedAt, leaseMs, replayOf }).lean<EventDeliveryDoc>(),
    );
  } catch (err) {
    if (err instanceof StoreBusyError) return { step: { kind: 'delay', until: new Date(now().getTime() + busyDelayMs()), reason: 'delivery_busy' } };
    throw err;
  }
  if (!claimed) {
    const current = await models.eventDeliveries.findById(deliveryId, { status: 1 }).lean<{ status: string }>();
    return { step: { kind: 'done', status: current?.status ?? 'missing' } };
  }
  return sendClaimed(ctx, { delivery: claimed, endpoint: endpoint!, event: event!, claimedAt, job, deps, now });
}

interface Claimed {
  delivery: EventDeliveryDoc;
  endpoint: WebhookEndpointDoc;
  event: StoredEvent;
  claimedAt: Date;
  job: JobAttempt | undefined;
  deps: EventDeliveryDeps;
  now: () => Date;
}

/** The delivery is `sending`, claimed by this run: sign, send, write the attempt. */
async function sendClaimed(ctx: Ctx, c: Claimed): Promise<EventDeliveryRun> {
  const { delivery: d, job, now } = c;
  const id = d._id;
  const D = ctx.models.eventDeliveries;
  const message = wireMessage(c.event, ctx.secrets.open(c.endpoint.secretSealed), now());
  const result = await c.deps.sender.post(c.endpoint.url, message);
  const at = now();
  const entry = attemptEntry(result, d.attemptCount, at);
  const round = { attempt: d.attemptCount - d.replayBase, maxAttempts: d.maxAttempts };
  const settled = settleAttempt(result, round, { baseMs: ctx.config.EVENT_BACKOFF_MS, maxMs: ctx.config.EVENT_BACKOFF_MAX_MS });
  ctx.logger.info(
    {
      deliveryId: id,
      eventId: d.eventId,
      endpointId: d.endpointId,
      attempt: d.attemptCount,
      code: entry.code,
      httpStatus: entry.httpStatus,
      durationMs: entry.durationMs,
    },
    'event delivery attempt',
  );

  const write = <T>(update: () => Promise<T>) => persist(() => guardedTransition(ctx, t.deliveryLock(id), update));
  switch (settled.kind) {
    case 'delivered':
      await write(() => t.markDelivered(D, { id, entry }));
      return { step: { kind: 'done', status: 'delivered' }, attempt: entry };
    case 'dead':
      await write(() => t.markDeadAfterAttempt(D, { id, claimedAt: c.claimedAt, entry, reason: settled.reason }));
      return { step: { kind: 'dead', code: settled.reason, detail: entry.detail ?? `${entry.code}: HTTP ${entry.httpStatus}` }, attempt: entry };
    case 'failed': {
      const until = new Date(at.getTime() + settled.delayMs);
      await write(() => t.markFailed(D, { id, claimedAt: c.claimedAt, entry, nextRetryAt: until }));
      const detail = entry.detail ?? `HTTP ${entry.httpStatus}`;
      // The ledger counts the round; when BullMQ's own count is spent (a replayed job) the job waits instead of failing.
      if (job && job.attemptsMade + 1 < job.attempts) return { step: { kind: 'retry', delayMs: settled.delayMs, code: entry.code, detail }, attempt: entry };
      return { step: { kind: 'delay', until, reason: entry.code }, attempt: entry };
    }
  }
}

/** The outcome of a request that already left: a write lost here means sending it again, so a failing database gets a few tries. */
async function persist<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(100 * 2 ** attempt);
    }
  }
}
