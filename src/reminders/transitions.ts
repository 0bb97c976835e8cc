/**
 * The reminder's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved it first). Every writer of a stored reminder holds its lock
 * (`reminder:<id>`, store.ts and fire.ts), taken before its due job's.
 *
 *   insert ──► active ──last occurrence──► completed ──schedule changed──► active
 *                 └──────────── delete ─────────► canceled (kept, invisible to the API)
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { ReminderDoc } from '../db/reminder';

type Reminders = AppContext['models']['reminders'];
type Id = Types.ObjectId | string;

/** → active at `nextAt`: a new reminder. No guard (a new id). Returns the reminder inserted. */
export async function insertReminder(Reminders: Reminders, fields: Omit<ReminderDoc, 'status' | 'createdAt' | 'updatedAt'>): Promise<ReminderDoc> {
  return (await Reminders.create({ ...fields, status: 'active' })).toObject() as ReminderDoc;
}

/**
 * A reminder just inserted whose due job could not be written → gone (it would never fire). Guard:
 * the id only: nobody else knows it yet. Returns nothing.
 */
export async function removeNewReminder(Reminders: Reminders, id: Id): Promise<void> {
  await Reminders.deleteOne({ _id: id });
}

/**
 * active | completed → the same or the other, its message or schedule changed (`nextAt` and status
 * given by the caller). Guard: the user's, not canceled. Returns the reminder after, or null.
 */
export function changeReminder(Reminders: Reminders, c: { id: Id; userId: string; set: Record<string, unknown>; unset: Record<string, ''> }) {
  const update = { ...(Object.keys(c.set).length ? { $set: c.set } : {}), ...(Object.keys(c.unset).length ? { $unset: c.unset } : {}) };
  return Reminders.findOneAndUpdate({ _id: c.id, userId: c.userId, status: { $ne: 'canceled' } }, update, {
    returnDocument: 'after',
    runValidators: true,
  }).lean<ReminderDoc>();
}

/** active | completed → canceled, no next occurrence. Guard: the user's, not canceled. Returns the reminder after, or null. */
export function cancelReminder(Reminders: Reminders, c: { id: Id; userId: string; now: Date }) {
  return Reminders.findOneAndUpdate(
    { _id: c.id, userId: c.userId, status: { $ne: 'canceled' } },
    { $set: { status: 'canceled', nextAt: null, canceledAt: c.now } },
    { returnDocument: 'after' },
  ).lean<ReminderDoc>();
}

/**
 * active → active at `next`, or completed when none is left: `occurrence` happened (`last` says how;
 * a sent one counts). Guard: still active at that occurrence (an edit moved it: null).
 * Returns the reminder after, or null.
 */
export function rollReminder(Reminders: Reminders, r: { id: Id; occurrence: Date; next: Date | null; last: ReminderDoc['lastOccurrence']; sent: 0 | 1 }) {
  return Reminders.findOneAndUpdate(
    { _id: r.id, status: 'active', nextAt: r.occurrence },
    { $set: { nextAt: r.next, status: r.next ? 'active' : 'completed', lastOccurrence: r.last }, $inc: { firedCount: r.sent } },
    { returnDocument: 'after' },
  ).lean<ReminderDoc>();
}
