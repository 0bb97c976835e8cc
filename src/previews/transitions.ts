/**
 * The preview's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved it first):
 *
 *   insert ──► ready ──confirm──► confirming ──► confirmed
 *                │  └──reject──► rejected        └──► ready (the slot was taken: given back)
 *                └──past expiresAt──► expired
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
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
