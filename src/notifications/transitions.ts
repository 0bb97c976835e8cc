/**
 * The record's state machine, one guarded update per transition: the filter names the state it
 * expects, so when two processors race only one update matches. A null answer means someone
 * else moved the record first.
 */
import { Types, type mongo } from 'mongoose';
import type { AppContext } from '../context';
import type { ProviderOutcome } from '../providers/types';
import type { NotificationRecord, RecordStatus } from '../db/notificationRecord';

type Records = AppContext['models']['notificationRecords'];
type Id = Types.ObjectId | string;

/** A record stays `sending` at most this long before another processor may take it over (the sender died). */
export const sendingLeaseMs = 30_000;

const after = { returnDocument: 'after' as const };

/**
 * The usual path's two writes (claimUnreadForSending, markSent) go to the driver directly:
 * mongoose's casting of an update (a subdocument built per history entry) and its query machinery
 * were a tenth of a delivery's CPU. They add what mongoose would: an ObjectId, `updatedAt`, no undefined field.
 */
const direct = { ignoreUndefined: true } as const;
const objectId = (id: Id) => (typeof id === 'string' ? new Types.ObjectId(id) : id);
/** What the driver sees of a record: its arrays and counters (the rest is untyped to it). */
interface StoredRecord {
  _id: Types.ObjectId;
  history: object[];
  outbox: object[];
  outboxCount: number;
  attemptCount: number;
}
const driver = (Records: Records) => Records.collection as unknown as mongo.Collection<StoredRecord>;

/** Why a record is skipped before any attempt. */
export type SkipReason = 'user_opted_out' | 'recipient_missing';
/** Why a record is dead without a provider's permanent code: its attempts used up, or a job whose payload could not be read. */
export type DeadReason = 'attempts_exhausted' | 'payload_invalid';

/** The event of a record's end, pushed in the same update as the end (see db/notificationRecord.ts, `outbox`). */
function outbox(type: 'notification.sent' | 'notification.skipped' | 'notification.dead', key: string, at: Date, reason?: string) {
  return { push: { outbox: { type, key, at, ...(reason ? { reason } : {}) } }, inc: { outboxCount: 1 } };
}

/** The provider's request and response (secrets already removed), as stored for audit. */
function audit(outcome: ProviderOutcome) {
  return { providerRequest: JSON.stringify(outcome.request), providerResponse: outcome.response === undefined ? undefined : JSON.stringify(outcome.response) };
}

function attemptEntry(at: Date, attempt: number, outcome: ProviderOutcome) {
  return {
    at,
    event: 'attempt',
    attempt,
    outcome: outcome.kind,
    code: outcome.code,
    httpStatus: outcome.httpStatus,
    providerCode: outcome.providerCode,
    durationMs: outcome.durationMs,
    detail: outcome.detail,
  };
}

/**
 * A replay (an operator retried a dead record's job): dead → sending, attemptCount + 1, with a
 * `replay` history entry. Guard: dead. Returns the record after, or null (not dead any more).
 */
export function claimForReplay(Records: Records, id: Id, now: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'dead' },
    {
      $set: { status: 'sending', sendingSince: now },
      $unset: { nextRetryAt: '', deferredUntil: '' },
      $inc: { attemptCount: 1 },
      $push: { history: { at: now, event: 'replay', detail: 'replayed by an operator' } },
    },
    after,
  );
}

/**
 * The first step of a delivery when nothing is known of the record yet: pending | failed (| sending
 * whose lease ran out) → sending, attemptCount + 1, like claimForSending without a replay, and
 * answers the record as it was BEFORE (null: it was in no claimable state, or held for a digest).
 * deliver.ts decides opt-out, recipient and quiet hours after this claim instead of before it, so
 * it needs the previous state to give a claim it does not use back exactly (returnClaim, skipClaimed).
 * A `held` record is never taken here: the digest decision must still see it pending.
 */
export function claimUnreadForSending(Records: Records, id: Id, now: Date) {
  const claimable: object[] = [
    { status: { $in: ['pending', 'failed'] } },
    { status: 'sending', sendingSince: { $lt: new Date(now.getTime() - sendingLeaseMs) } },
  ];
  return driver(Records).findOneAndUpdate(
    { _id: objectId(id), digestState: { $ne: 'held' }, $or: claimable },
    { $set: { status: 'sending', sendingSince: now, updatedAt: now }, $unset: { nextRetryAt: '', deferredUntil: '' }, $inc: { attemptCount: 1 } },
    { returnDocument: 'before', ...direct },
  ) as unknown as Promise<NotificationRecord | null>;
}

/** The state claimUnreadForSending found, to be put back. */
export interface ClaimedFrom {
  status: string;
  nextRetryAt?: Date | null;
  deferredUntil?: Date | null;
  sendingSince?: Date | null;
}

/**
 * Gives back a claim of claimUnreadForSending that sent nothing: the record returns to the state it
 * was claimed from (status, nextRetryAt, deferredUntil, attemptCount), with `deferredUntil` and a
 * history entry when quiet hours defer it. Guarded by the claim's own `sendingSince`, so only the
 * claimer's claim is given back.
 */
export function returnClaim(Records: Records, id: Id, claimedAt: Date, from: ClaimedFrom, deferred?: { at: Date; until: Date }) {
  const set: Record<string, unknown> = { status: from.status };
  const unset: Record<string, ''> = {};
  if (from.nextRetryAt) set.nextRetryAt = from.nextRetryAt;
  if (deferred) set.deferredUntil = deferred.until;
  else if (from.deferredUntil) set.deferredUntil = from.deferredUntil;
  // A lapsed `sending` claimed again goes back to its old lease (the reconciler's to unstick).
  if (from.status === 'sending' && from.sendingSince) set.sendingSince = from.sendingSince;
  else unset.sendingSince = '';
  const update: Record<string, unknown> = { $set: set, $inc: { attemptCount: -1 } };
  if (Object.keys(unset).length) update.$unset = unset;
  if (deferred) update.$push = { history: { at: deferred.at, event: 'deferred', code: 'quiet_hours', until: deferred.until } };
  return Records.findOneAndUpdate({ _id: id, status: 'sending', sendingSince: claimedAt }, update, after);
}

/** A claim of claimUnreadForSending → skipped before any attempt; the same end state as markSkipped from the state it was claimed from. */
export function skipClaimed(Records: Records, id: Id, claimedAt: Date, now: Date, reason: SkipReason) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending', sendingSince: claimedAt },
    {
      $set: { status: 'skipped', statusReason: reason },
      $unset: { sendingSince: '', nextRetryAt: '', deferredUntil: '' },
      $inc: { attemptCount: -1, ...outbox('notification.skipped', String(id), now, reason).inc },
      $push: { history: { at: now, event: 'skipped', code: reason }, ...outbox('notification.skipped', String(id), now, reason).push },
    },
    after,
  );
}

/**
 * sending → sent, with the attempt in the history and notification.sent in the outbox. Guard:
 * sending. Returns true when it landed, false when another writer moved the record first: an
 * update, not a findAndModify, so the record (its history, its stored request) does not come back.
 */
export async function markSent(Records: Records, id: Id, now: Date, attempt: number, outcome: ProviderOutcome): Promise<boolean> {
  const result = await driver(Records).updateOne(
    { _id: objectId(id), status: 'sending' },
    {
      $set: { status: 'sent', sentAt: now, updatedAt: now, providerMessageId: outcome.providerMessageId, ...audit(outcome) },
      $unset: { sendingSince: '', lastErrorCode: '', lastError: '', statusReason: '' },
      $push: { history: attemptEntry(now, attempt, outcome), ...outbox('notification.sent', String(id), now).push },
      $inc: outbox('notification.sent', String(id), now).inc,
    },
    direct,
  );
  return result.matchedCount === 1;
}

export function markFailed(Records: Records, id: Id, now: Date, attempt: number, outcome: ProviderOutcome, nextRetryAt: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending' },
    {
      $set: { status: 'failed', nextRetryAt, lastErrorCode: outcome.code, lastError: outcome.detail, ...audit(outcome) },
      $unset: { sendingSince: '' },
      $push: { history: attemptEntry(now, attempt, outcome) },
    },
    after,
  );
}

/** sending → dead after a provider outcome: its permanent code (`permanent`), or the last attempt (attempts_exhausted). Returns the record after, or null. */
export function markDeadAfterAttempt(Records: Records, id: Id, now: Date, attempt: number, outcome: ProviderOutcome, why: 'permanent' | 'attempts_exhausted') {
  const reason = why === 'permanent' ? outcome.code : why;
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending' },
    {
      $set: { status: 'dead', statusReason: reason, lastErrorCode: outcome.code, lastError: outcome.detail, ...audit(outcome) },
      $unset: { sendingSince: '', nextRetryAt: '' },
      // A replayed record that dies again is a new event: its key names the attempt.
      $push: {
        history: { $each: [attemptEntry(now, attempt, outcome), { at: now, event: 'dead', code: reason }] },
        ...outbox('notification.dead', `${String(id)}:${attempt}`, now, reason).push,
      },
      $inc: outbox('notification.dead', `${String(id)}:${attempt}`, now, reason).inc,
    },
    after,
  );
}

/** Any unfinished state → dead without an attempt (e.g. the job's payload is invalid). */
export function markDead(Records: Records, id: Id, now: Date, reason: DeadReason, detail: string) {
  return Records.findOneAndUpdate(
    { _id: id, status: { $in: ['pending', 'failed', 'sending'] } },
    {
      $set: { status: 'dead', statusReason: reason, lastErrorCode: reason, lastError: detail },
      $unset: { sendingSince: '', nextRetryAt: '' },
      $push: { history: { at: now, event: 'dead', code: reason, detail } },
    },
    after,
  );
}

/** pending | failed → skipped, before any attempt: nobody to send to, or the user opted out. Returns the record after, or null. */
export function markSkipped(Records: Records, id: Id, now: Date, reason: SkipReason) {
  return skipFrom(Records, { id, now, reason, from: ['pending', 'failed'] });
}

/** dead → skipped on a replay that finds nobody to send to (or an opt-out since). Returns the record after, or null. */
export function markReplaySkipped(Records: Records, id: Id, now: Date, reason: SkipReason) {
  return skipFrom(Records, { id, now, reason, from: ['dead'] });
}

function skipFrom(Records: Records, s: { id: Id; now: Date; reason: SkipReason; from: RecordStatus[] }) {
  return Records.findOneAndUpdate(
    { _id: s.id, status: { $in: s.from } },
    {
      $set: { status: 'skipped', statusReason: s.reason },
      $unset: { nextRetryAt: '', deferredUntil: '' },
      $push: { history: { at: s.now, event: 'skipped', code: s.reason }, ...outbox('notification.skipped', String(s.id), s.now, s.reason).push },
      $inc: outbox('notification.skipped', String(s.id), s.now, s.reason).inc,
    },
    after,
  );
}

/** Quiet hours: the record waits, unchanged otherwise, until `until`. */
export function markDeferred(Records: Records, id: Id, now: Date, until: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: { $in: ['pending', 'failed'] } },
    { $set: { deferredUntil: until }, $push: { history: { at: now, event: 'deferred', code: 'quiet_hours', until } } },
    after,
  );
}

/** sending → pending after Feishu said "slow down": the attempt is given back. */
export function markRateLimited(Records: Records, id: Id, now: Date, attempt: number, outcome: ProviderOutcome, until: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending' },
    {
      $set: { status: 'pending', nextRetryAt: until, lastErrorCode: outcome.code, lastError: outcome.detail },
      $unset: { sendingSince: '' },
      $inc: { attemptCount: -1 },
      $push: { history: { ...attemptEntry(now, attempt, outcome), event: 'rate_limited', until } },
    },
    after,
  );
}

/** sending → pending before any request left: the webhook is busy, the attempt is given back. */
export function releaseClaim(Records: Records, id: Id, now: Date, until: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending' },
    {
      $set: { status: 'pending', nextRetryAt: until },
      $unset: { sendingSince: '' },
      $inc: { attemptCount: -1 },
      $push: { history: { at: now, event: 'rate_limited', code: 'webhook_rate_limit', until } },
    },
    after,
  );
}

/**
 * sending → failed when its sender stopped mid-attempt (the lease ran out): whether Feishu got
 * it is unknown, so it is retried. Guard: still sending since before `now` − the lease.
 * Returns the record after, or null.
 */
export function takeBackLapsedSending(Records: Records, id: Id, now: Date) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sending', sendingSince: { $lt: new Date(now.getTime() - sendingLeaseMs) } },
    {
      $set: { status: 'failed', lastErrorCode: 'sender_lost', lastError: 'the process sending this record stopped before it finished' },
      $unset: { sendingSince: '' },
      $push: { history: { at: now, event: 'repaired', code: 'sender_lost' } },
    },
    after,
  );
}

/**
 * A held record is to be sent by itself: digestState held → alone (its status stays pending, for
 * the claim). Guard: held. Returns true when it landed.
 */
export async function markAlone(Records: Records, id: Id, now: Date): Promise<boolean> {
  const result = await Records.updateOne({ _id: id, digestState: 'held' }, { $set: { digestState: 'alone', digestDecidedAt: now } });
  return result.matchedCount === 1;
}

/**
 * Held records carried by a digest: pending + held → digested, member of `digestId`. Guard, per
 * record: pending and held. Returns how many were marked.
 */
export async function markDigested(Records: Records, d: { ids: Id[]; digestId: string; now: Date }): Promise<number> {
  if (!d.ids.length) return 0;
  const result = await Records.updateMany(
    { _id: { $in: d.ids }, status: 'pending', digestState: 'held' },
    {
      $set: { status: 'digested', digestState: 'member', digestId: d.digestId, digestDecidedAt: d.now },
      $push: { history: { at: d.now, event: 'digested', detail: `sent in digest ${d.digestId}` } },
    },
  );
  return result.modifiedCount;
}

/**
 * A reminder card answered (Done, or Snooze with the snoozed copy's time): → replied.
 * Guard: sent, and not answered before (a card is answered once). Returns the record after, or null.
 */
export function markReplied(Records: Records, id: Id, reply: { kind: 'done' | 'snoozed'; at: Date; until?: Date }) {
  return Records.findOneAndUpdate(
    { _id: id, status: 'sent', reply: { $exists: false } },
    { $set: { reply }, $push: { history: { at: reply.at, event: 'replied', code: reply.kind, ...(reply.until ? { until: reply.until } : {}) } } },
    after,
  );
}

/** The snoozed copy of a reminder card requested. Guard: snoozed, no copy noted yet. Returns the record after, or null. */
export function noteSnoozeCopy(Records: Records, id: Id, snoozeRecordId: string) {
  return Records.findOneAndUpdate(
    { _id: id, 'reply.kind': 'snoozed', 'reply.snoozeRecordId': { $exists: false } },
    { $set: { 'reply.snoozeRecordId': snoozeRecordId } },
    after,
  );
}

/**
 * An escalation step of the anomaly this record told about, written to its history (shown on
 * /app). Guard: none beyond the record: the trigger's step transition made the step once.
 */
export function noteEscalation(Records: Records, id: Id, e: { at: Date; action: 'buzz' | 'fallback'; outcome: string; detail?: string }) {
  return Records.findOneAndUpdate(
    { _id: id },
    { $push: { history: { at: e.at, event: 'escalated', code: e.action, outcome: e.outcome, ...(e.detail ? { detail: e.detail.slice(0, 500) } : {}) } } },
    after,
  );
}

/**
 * The anomaly this record told about was acknowledged: the record shows it (acknowledgedAt, a
 * history entry). Guard: not noted yet. Returns the record after, or null.
 */
export function noteAcknowledged(Records: Records, id: Id, a: { at: Date; via: string }) {
  return Records.findOneAndUpdate(
    { _id: id, acknowledgedAt: { $exists: false } },
    { $set: { acknowledgedAt: a.at }, $push: { history: { at: a.at, event: 'acknowledged', code: a.via } } },
    after,
  );
}

/**
 * The relay moved these records' end events into the event log: each outbox → empty, in one update. Guard, per record: the
 * outbox holds the `count` entries the relay read (one with more waits for the next relay).
 * Returns how many were cleared.
 */
export async function clearOutboxes(Records: Records, read: Array<{ id: Id; count: number }>): Promise<number> {
  if (!read.length) return 0;
  const byCount = new Map<number, Id[]>();
  for (const r of read) byCount.set(r.count, (byCount.get(r.count) ?? []).concat(r.id));
  // One updateMany naming each record with its count, not a bulkWrite of a statement per record:
  // FerretDB v1 holds a connection per statement until the command ends, and 200 of them hung it.
  const guards = [...byCount].map(([count, ids]) => ({ outboxCount: count, _id: { $in: ids } }));
  const result = await Records.updateMany(
    guards.length === 1 ? guards[0] : { $or: guards },
    { $unset: { outbox: '', outboxCount: '' } },
    { timestamps: false },
  );
  return result.modifiedCount;
}
