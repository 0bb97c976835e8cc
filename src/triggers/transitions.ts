/**
 * The trigger's state machine, one guarded update per transition (the filter names the state it
 * expects). A null answer means someone else moved the trigger first.
 *
 *  insert ─► pending ─claim─► processing ─► preview_generated ─confirm─► closed
 *    │          ▲                 │  │                        └─reject──► rejected
 *    │          └──release (error)┘  └─► closed (nothing to do) | failed (attempts exhausted)
 *    └─(claimed by its creator, who runs the workflow at once)─► processing
 *
 * Callers run each one through the store seam (db/guarded.ts, lock `trigger:<id>`), but the
 * insert, which the unique dedupe key guards.
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { AnswerPlace, EscalationAction, TriggerDoc } from '../db/trigger';
import { isDuplicateKey } from '../db/errors';

type Triggers = AppContext['models']['triggers'];
type Id = Types.ObjectId | string;

/** A trigger stays `processing` at most this long before another worker may take it over (the first one died). */
export const processingLeaseMs = 30_000;

const after = { returnDocument: 'after' as const };

/** A new trigger's fields, as createTrigger builds them (status and claim are the insert's). */
export type NewTrigger = Pick<TriggerDoc, 'userId' | 'type' | 'source' | 'target' | 'dedupeKey'> &
  Partial<Pick<TriggerDoc, 'idempotencyKey' | 'dueJobId' | 'detail' | 'anomaly'>>;

/**
 * → pending; or → processing claimed at `claimedAt` (attempts 1, its lease running) for a creator
 * that runs the workflow itself at once, which spares the claim a workflow job would make.
 * Guard: the unique dedupe key (insert first: no lookup, which on FerretDB reads the whole
 * collection). Returns the trigger inserted, or null when one with that dedupe key exists.
 */
export async function insertTrigger(Triggers: Triggers, fields: NewTrigger, claimedAt?: Date): Promise<TriggerDoc | null> {
  const state = claimedAt ? { status: 'processing' as const, processingSince: claimedAt, attempts: 1 } : { status: 'pending' as const };
  try {
    return (await Triggers.create({ ...fields, ...state })).toObject() as TriggerDoc;
  } catch (err) {
    if (isDuplicateKey(err)) return null;
    throw err;
  }
}

/** pending (or processing whose lease ran out) → processing; attempts + 1. */
export function claimTrigger(Triggers: Triggers, id: Id, now: Date) {
  return Triggers.findOneAndUpdate(
    { _id: id, $or: [{ status: 'pending' }, { status: 'processing', processingSince: { $lt: new Date(now.getTime() - processingLeaseMs) } }] },
    { $set: { status: 'processing', processingSince: now }, $inc: { attempts: 1 } },
    after,
  );
}

/** processing → pending after an error, so the retry can claim it at once. */
export function releaseTrigger(Triggers: Triggers, id: Id, error: string) {
  return Triggers.findOneAndUpdate(
    { _id: id, status: 'processing' },
    { $set: { status: 'pending', lastError: error }, $unset: { processingSince: '' } },
    after,
  );
}

/** processing | pending → failed: the last attempt failed too. */
export function failTrigger(Triggers: Triggers, id: Id, error: string) {
  return Triggers.findOneAndUpdate(
    { _id: id, status: { $in: ['pending', 'processing'] } },
    { $set: { status: 'failed', reason: 'workflow_failed', lastError: error }, $unset: { processingSince: '' } },
    after,
  );
}

export function markPreviewGenerated(Triggers: Triggers, id: Id, previewId: string, notificationId: string) {
  return Triggers.findOneAndUpdate(
    { _id: id, status: 'processing' },
    { $set: { status: 'preview_generated', previewId, notificationId }, $unset: { processingSince: '', lastError: '' } },
    after,
  );
}

/** processing → closed: an anomaly's notification is requested; there is no preview to answer. */
export function markNotified(Triggers: Triggers, id: Id, notificationId: string) {
  return Triggers.findOneAndUpdate(
    { _id: id, status: 'processing' },
    { $set: { status: 'closed', reason: 'notification_requested', notificationId }, $unset: { processingSince: '', lastError: '' } },
    after,
  );
}

/** processing → closed: nothing to do (task done, gone, already scheduled...). */
export function closeUnprocessed(Triggers: Triggers, id: Id, reason: string) {
  return Triggers.findOneAndUpdate({ _id: id, status: 'processing' }, { $set: { status: 'closed', reason }, $unset: { processingSince: '' } }, after);
}

/** The user answered the preview: confirmed → closed, rejected → rejected. */
export function closeByPreview(Triggers: Triggers, id: Id, answer: 'confirmed' | 'rejected') {
  return Triggers.findOneAndUpdate(
    { _id: id, status: { $in: ['pending', 'processing', 'preview_generated'] } },
    {
      $set: answer === 'confirmed' ? { status: 'closed', reason: 'preview_confirmed' } : { status: 'rejected', reason: 'preview_rejected' },
      $unset: { processingSince: '' },
    },
    after,
  );
}

/**
 * An anomaly's user acknowledges it: → acknowledged (its escalation stops).
 * Guard: the trigger is an anomaly of this user, not acknowledged yet.
 * Returns the trigger after, or null (not theirs, not an anomaly, or acknowledged already).
 */
export function acknowledgeAnomaly(Triggers: Triggers, a: { id: Id; userId: string; at: Date; via: AnswerPlace }) {
  return Triggers.findOneAndUpdate(
    { _id: a.id, userId: a.userId, anomaly: { $exists: true }, 'anomaly.acknowledgedAt': { $exists: false } },
    { $set: { 'anomaly.acknowledgedAt': a.at, 'anomaly.acknowledgedVia': a.via } },
    after,
  );
}

/**
 * Escalation step `step` (1: buzz, 2: fallback) of a critical anomaly begins: escalation.step
 * step - 1 (none before step 1) → step, the step's entry written with its time.
 * Guard: still unacknowledged, and the previous step is the last one taken: of two scanners, one
 * takes each step. Returns the trigger after, or null (taken already, or acknowledged).
 */
export function beginEscalationStep(Triggers: Triggers, s: { id: Id; step: 1 | 2; at: Date }) {
  const previous = s.step === 1 ? { escalation: { $exists: false } } : { 'escalation.step': s.step - 1 };
  const action: EscalationAction = s.step === 1 ? 'buzz' : 'fallback';
  return Triggers.findOneAndUpdate(
    { _id: s.id, 'anomaly.severity': 'critical', 'anomaly.acknowledgedAt': { $exists: false }, ...previous },
    { $set: { 'escalation.step': s.step, [`escalation.${action}`]: { at: s.at } } },
    after,
  );
}

/**
 * The step taken: its outcome written. Guard: it is the step in progress (its entry has no
 * outcome yet). Returns the trigger after, or null.
 */
export function settleEscalationStep(
  Triggers: Triggers,
  s: { id: Id; action: EscalationAction; outcome: 'done' | 'skipped' | 'failed'; detail?: string; recordId?: string },
) {
  const set: Record<string, unknown> = { [`escalation.${s.action}.outcome`]: s.outcome };
  if (s.detail) set[`escalation.${s.action}.detail`] = s.detail.slice(0, 500);
  if (s.recordId) set[`escalation.${s.action}.recordId`] = s.recordId;
  return Triggers.findOneAndUpdate(
    { _id: s.id, [`escalation.${s.action}.at`]: { $exists: true }, [`escalation.${s.action}.outcome`]: { $exists: false } },
    { $set: set },
    after,
  );
}
