/**
 * The preview's state machine, one guarded update per transition (the filter names the state it
 * expects; null means someone else moved it first):
 *
 *   ready ──confirm──► confirming ──► confirmed
 *     │  └──reject──► rejected        └──► ready (the slot was taken: given back)
 *     └──past expiresAt──► expired
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';

type Previews = AppContext['models']['previews'];
type Id = Types.ObjectId | string;

/**
 * ready and past its expiry → expired. Guard: still ready, expiresAt passed.
 * Returns the preview after, or null (answered or expired already).
 */
export function expirePreview(Previews: Previews, id: Id, now: Date) {
  return Previews.findOneAndUpdate({ _id: id, status: 'ready', expiresAt: { $lte: now } }, { $set: { status: 'expired' } }, { returnDocument: 'after' });
}
