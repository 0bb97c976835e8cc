/**
 * The preview's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved it first):
 *
 *   insert ──► ready ──confirm──► confirming ──► confirmed
 *                │  └──reject──► rejected        └──► ready (the slot was taken: given back)
 *                └──past expiresAt──► expired
 *
 * (ready also gets `reminderRequestedAt` once: renotify.ts.)
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
import type { AnswerPlace } from '../db/trigger';
import { isDuplicateKey } from '../db/errors';

type Previews = AppContext['models']['previews'];
type Id = Types.ObjectId | string;

/**
 * → ready: the preview of a trigger (the workflow's). Guard: the unique triggerId (insert first:
 * no lookup, which on FerretDB reads the whole collection). Returns the preview inserted, or null
 * when the trigger has one already.
 */
export async function insertPreview(Previews: Previews, fields: Omit<PreviewDoc, 'status' | 'createdAt' | 'updatedAt'>): Promise<PreviewDoc | null> {
  try {
    return (await Previews.create({ ...fields, status: 'ready' })).toObject() as PreviewDoc;
  } catch (err) {
    if (isDuplicateKey(err)) return null;
    throw err;
  }
}

/**
 * ready and past its expiry → expired. Guard: still ready, expiresAt passed.
 * Returns the preview after, or null (answered or expired already).
 */
export function expirePreview(Previews: Previews, id: Id, now: Date) {
  return Previews.findOneAndUpdate({ _id: id, status: 'ready', expiresAt: { $lte: now } }, { $set: { status: 'expired' } }, { returnDocument: 'after' });
}

/**
 * ready (or confirming with its lease run out: that confirm died) → confirming, with a lease from
 * `now`. Guard: the user's, ready and not expired, or confirming since before `leaseOver`.
 * Returns the preview after, or null (another confirm holds it, or it was answered or expired).
 */
export function claimForConfirm(Previews: Previews, c: { id: Id; userId: string; now: Date; leaseOver: Date }) {
  return Previews.findOneAndUpdate(
    {
      _id: c.id,
      userId: c.userId,
      $or: [
        { status: 'ready', expiresAt: { $gt: c.now } },
        { status: 'confirming', confirmingSince: { $lt: c.leaseOver } },
      ],
    },
    { $set: { status: 'confirming', confirmingSince: c.now } },
    { returnDocument: 'after' },
  );
}

/**
 * confirming → ready: the slot was taken, the claim is given back. Guard: still this claim
 * (confirming since `since`). Returns the update's result.
 */
export function releaseConfirm(Previews: Previews, id: Id, since: PreviewDoc['confirmingSince']) {
  return Previews.updateOne({ _id: id, status: 'confirming', confirmingSince: since }, { $set: { status: 'ready' }, $unset: { confirmingSince: '' } });
}

/**
 * confirming → confirmed, with the block placed (if any). Guard: still this claim (confirming since
 * `since`; a confirm whose lease was taken over does not write). Returns the preview after, or null.
 */
export function markConfirmed(Previews: Previews, c: { id: Id; since: PreviewDoc['confirmingSince']; now: Date; via: AnswerPlace; blockId?: string }) {
  return Previews.findOneAndUpdate(
    { _id: c.id, status: 'confirming', confirmingSince: c.since },
    { $set: { status: 'confirmed', confirmedAt: c.now, answeredVia: c.via, ...(c.blockId ? { blockId: c.blockId } : {}) }, $unset: { confirmingSince: '' } },
    { returnDocument: 'after' },
  );
}

/** ready → rejected. Guard: the user's, ready and not expired. Returns the preview after, or null. */
export function markRejected(Previews: Previews, r: { id: Id; userId: string; now: Date; via: AnswerPlace }) {
  return Previews.findOneAndUpdate(
    { _id: r.id, userId: r.userId, status: 'ready', expiresAt: { $gt: r.now } },
    { $set: { status: 'rejected', rejectedAt: r.now, answeredVia: r.via } },
    { returnDocument: 'after' },
  );
}

/**
 * ready → ready, its one reminder requested (spares later runs the lookup). Guard: still ready,
 * not marked before. Returns the update's result.
 */
export function markReminderRequested(Previews: Previews, id: Id, now: Date) {
  return Previews.updateOne({ _id: id, status: 'ready', reminderRequestedAt: { $exists: false } }, { $set: { reminderRequestedAt: now } });
}
