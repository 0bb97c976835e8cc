/**
 * Every write of the events feature's collections, one per function. A guarded update's filter
 * names the state it expects; a null answer means someone else moved the document first. On
 * FerretDB v1 the callers run the guarded ones through db/guarded.ts (a short Redis lock), under
 * the lock name `deliveryLock(id)`.
 *
 * A delivery's states:
 *
 *   pending ──claim──► sending ──2xx──► delivered
 *      ▲                  │ └──other answer, no answer──► failed ──claim──► sending …
 *      │                  └──last attempt, or refused──► dead
 *      └──replay (API)── dead ──claim as a replay (Bull Board's Retry)──► sending
 *   sending past its lease ──reconciler──► failed
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { AttemptCode, DeliveryReason } from '../db/eventDelivery';
import { isDuplicateKey } from '../db/errors';
import { lockName } from '../db/guarded';

type Models = AppContext['models'];
type Endpoints = Models['webhookEndpoints'];
type Events = Models['events'];
type Deliveries = Models['eventDeliveries'];

const after = { returnDocument: 'after' as const };

/** The guard lock of one delivery's transitions. */
export const deliveryLock = (id: string) => lockName('event-delivery', id);

/** One attempt as the ledger keeps it: never a header, so never the secret. */
export interface AttemptEntry {
  at: Date;
  attempt: number;
  outcome: 'delivered' | 'failed';
  code: AttemptCode;
  httpStatus?: number;
  durationMs: number;
  /** The first 1 KB of the answer. */
  response?: string;
  detail?: string;
}

const historyOf = (e: AttemptEntry) => ({ event: 'attempt', ...e });

// ── webhook_endpoints ────────────────────────────────────────────────────────────────────────

/** (nothing) → an endpoint. Returns the document. */
export function insertEndpoint(Endpoints: Endpoints, doc: { url: string; secretSealed: string; events: string[]; description?: string }) {
  return Endpoints.create({ ...doc, enabled: true });
}

/**
 * An endpoint's settings (url, events, enabled, description) → new values. Guard: the endpoint
 * exists (its fields have no states). Returns it after, or null.
 */
export function updateEndpoint(Endpoints: Endpoints, id: string, change: { set: Record<string, unknown>; unset: string[] }) {
  const update: Record<string, unknown> = { $set: change.set };
  if (change.unset.length) update.$unset = Object.fromEntries(change.unset.map((k) => [k, '']));
  return Endpoints.findOneAndUpdate({ _id: id }, update, after);
}

/** secret → a new secret (sealed). Guard: the endpoint exists. Returns it after, or null. */
export function rotateEndpointSecret(Endpoints: Endpoints, id: string, secret: { sealed: string; at: Date }) {
  return Endpoints.findOneAndUpdate({ _id: id }, { $set: { secretSealed: secret.sealed, secretRotatedAt: secret.at } }, after);
}

/** An endpoint → gone; its deliveries still pending die as endpoint_missing when their jobs run. Returns the endpoint, or null. */
export function deleteEndpoint(Endpoints: Endpoints, id: string) {
  return Endpoints.findOneAndDelete({ _id: id });
}

// ── events ───────────────────────────────────────────────────────────────────────────────────

export interface NewEvent {
  _id: string;
  type: string;
  key: string;
  userId?: string;
  dataJson: string;
  at: Date;
  seq: Types.ObjectId;
  fannedOutAt?: Date;
}

/**
 * (nothing) → an event, fanned out already when it goes to no endpoint. Guard: the unique `_id`
 * (derived from type and key). Returns true when inserted, false when it existed.
 */
export async function insertEvent(Events: Events, doc: NewEvent): Promise<boolean> {
  try {
    await Events.create(doc);
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

/**
 * not fanned out → fannedOutAt, once every delivery it needs is written. Guard: `_id` only: two
 * fan-outs of one event (emit and reconciler) write the same thing, so no lock is needed.
 */
export function markFannedOut(Events: Events, id: string, at: Date) {
  return Events.updateOne({ _id: id }, { $set: { fannedOutAt: at } });
}

/**
 * (nothing) → many events in one insert (ordered: false, so one that exists does not stop the
 * rest), each fanned out already when it goes to no endpoint. Guard: the unique `_id` of each.
 * Returns the ids of those that existed (left as they were).
 */
export async function insertEvents(Events: Events, docs: NewEvent[]): Promise<Set<string>> {
  if (!docs.length) return new Set();
  const createdAt = new Date();
  try {
    await Events.collection.insertMany(docs.map((d) => ({ ...d, createdAt })) as never[], { ordered: false });
    return new Set();
  } catch (err) {
    // The duplicates are events written before (a retried relay, another emitter): expected.
    const bulk = err as { writeErrors?: Array<{ code?: number; index?: number }> | { code?: number; index?: number } };
    const errors = [bulk.writeErrors ?? []].flat();
    if (!errors.length || errors.some((w) => w.code !== 11000 || typeof w.index !== 'number')) throw err;
    return new Set(errors.map((w) => docs[w.index!]._id));
  }
}

/** not fanned out → fannedOutAt, for many events at once, as markFannedOut (guard: `_id` only). Returns the update's counts. */
export function markManyFannedOut(Events: Events, ids: string[], at: Date) {
  return Events.updateMany({ _id: { $in: ids } }, { $set: { fannedOutAt: at } });
}

// ── event_deliveries ─────────────────────────────────────────────────────────────────────────

/** (nothing) → pending, one per (endpoint, event). Guard: the unique `_id`; existing ones are left as they are. Returns how many were new. */
export async function insertDeliveries(
  Deliveries: Deliveries,
  docs: Array<{ _id: string; endpointId: string; eventId: string; eventType: string; maxAttempts: number }>,
): Promise<number> {
  if (!docs.length) return 0;
  const now = new Date();
  const rows = docs.map((d) => ({ ...d, status: 'pending', attemptCount: 0, replayBase: 0, history: [], createdAt: now, updatedAt: now }));
  try {
    const result = await Deliveries.collection.insertMany(rows as never[], { ordered: false });
    return result.insertedCount;
  } catch (err) {
    // ordered: false inserts the rest; duplicates are deliveries written by an earlier fan-out.
    const bulk = err as { writeErrors?: Array<{ code?: number }> | { code?: number }; insertedCount?: number };
    const errors = [bulk.writeErrors ?? []].flat();
    if (!errors.length || errors.some((w) => w.code !== 11000)) throw err;
    return bulk.insertedCount ?? 0;
  }
}

/**
 * pending | failed | sending past its lease (| dead, on a replay) → sending, attemptCount + 1.
 * A replay (Bull Board's Retry of the dead job) starts a new round: replayBase = the attempts so
 * far, guarded by `attemptCount` as read, with a `replay` entry. Returns the delivery after, or null.
 */
export function claimDelivery(Deliveries: Deliveries, c: { id: string; now: Date; leaseMs: number; replayOf?: { attemptCount: number; maxAttempts: number } }) {
  const lapsed = new Date(c.now.getTime() - c.leaseMs);
  const filter: Record<string, unknown> = c.replayOf
    ? { _id: c.id, status: 'dead', attemptCount: c.replayOf.attemptCount }
    : { _id: c.id, $or: [{ status: { $in: ['pending', 'failed'] } }, { status: 'sending', sendingSince: { $lt: lapsed } }] };
  const set: Record<string, unknown> = { status: 'sending', sendingSince: c.now };
  if (c.replayOf) Object.assign(set, { replayBase: c.replayOf.attemptCount, maxAttempts: c.replayOf.maxAttempts });
  const history = c.replayOf ? [{ at: c.now, event: 'replay', detail: "replayed by an operator (the job's Retry)" }] : [];
  return Deliveries.findOneAndUpdate(
    filter,
    { $set: set, $unset: { nextRetryAt: '', statusReason: '' }, $inc: { attemptCount: 1 }, $push: { history: { $each: history } } },
    after,
  );
}

/**
 * sending (| failed, when the reconciler took back a lease this attempt outlived) → delivered,
 * with the attempt. Guard: not final: a 2xx is a fact worth keeping. Returns it after, or null.
 */
export function markDelivered(Deliveries: Deliveries, d: { id: string; entry: AttemptEntry }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: { $in: ['sending', 'failed'] } },
    {
      $set: { status: 'delivered', deliveredAt: d.entry.at },
      $unset: { sendingSince: '', nextRetryAt: '', lastErrorCode: '', lastError: '', statusReason: '' },
      $push: { history: historyOf(d.entry) },
    },
    after,
  );
}

/** sending (this attempt's own claim) → failed until `nextRetryAt`, with the attempt. Returns it after, or null. */
export function markFailed(Deliveries: Deliveries, d: { id: string; claimedAt: Date; entry: AttemptEntry; nextRetryAt: Date }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: 'sending', sendingSince: d.claimedAt },
    {
      $set: { status: 'failed', nextRetryAt: d.nextRetryAt, lastErrorCode: d.entry.code, lastError: d.entry.detail ?? `HTTP ${d.entry.httpStatus}` },
      $unset: { sendingSince: '' },
      $push: { history: historyOf(d.entry) },
    },
    after,
  );
}

/** sending (this attempt's own claim) → dead: the last attempt of the round, or a refused address. Returns it after, or null. */
export function markDeadAfterAttempt(Deliveries: Deliveries, d: { id: string; claimedAt: Date; entry: AttemptEntry; reason: DeliveryReason }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: 'sending', sendingSince: d.claimedAt },
    {
      $set: { status: 'dead', statusReason: d.reason, lastErrorCode: d.entry.code, lastError: d.entry.detail ?? `HTTP ${d.entry.httpStatus}` },
      $unset: { sendingSince: '', nextRetryAt: '' },
      $push: { history: { $each: [historyOf(d.entry), { at: d.entry.at, event: 'dead', code: d.reason }] } },
    },
    after,
  );
}

/** pending | failed | sending → dead without an attempt (the endpoint or the event is gone, the payload is bad). Returns it after, or null. */
export function markDead(Deliveries: Deliveries, d: { id: string; now: Date; reason: DeliveryReason; detail: string }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: { $in: ['pending', 'failed', 'sending'] } },
    {
      $set: { status: 'dead', statusReason: d.reason, lastErrorCode: d.reason, lastError: d.detail },
      $unset: { sendingSince: '', nextRetryAt: '' },
      $push: { history: { at: d.now, event: 'dead', code: d.reason, detail: d.detail } },
    },
    after,
  );
}

/**
 * dead → pending, a new round of maxAttempts (replayBase = the attempts so far), by the API's
 * retry. Guard: dead with `attemptCount` as read. Returns it after, or null.
 */
export function requeueDead(Deliveries: Deliveries, d: { id: string; now: Date; attemptCount: number; maxAttempts: number }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: 'dead', attemptCount: d.attemptCount },
    {
      $set: { status: 'pending', replayBase: d.attemptCount, maxAttempts: d.maxAttempts },
      $unset: { statusReason: '', nextRetryAt: '' },
      $push: { history: { at: d.now, event: 'replay', detail: 'replayed through the API' } },
    },
    after,
  );
}

/**
 * sending past its lease → failed (sender_lost): the worker died mid-attempt; whether the endpoint
 * got it is unknown, so it is sent again. Guard: still sending, lease over. Returns it after, or null.
 */
export function takeBackLapsed(Deliveries: Deliveries, d: { id: string; now: Date; leaseMs: number }) {
  return Deliveries.findOneAndUpdate(
    { _id: d.id, status: 'sending', sendingSince: { $lt: new Date(d.now.getTime() - d.leaseMs) } },
    {
      $set: { status: 'failed', lastErrorCode: 'sender_lost', lastError: 'the process sending this delivery stopped before it finished' },
      $unset: { sendingSince: '' },
      $push: { history: { at: d.now, event: 'repaired', code: 'sender_lost' } },
    },
    after,
  );
}
