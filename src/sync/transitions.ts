/**
 * The writes of syncing by externalId, one function each: the external_ids mapping (claimed,
 * released) and the task or block at a mapped id (inserted with that _id, replaced whole). The
 * mapping is claimed before its resource is written and released after it is deleted, so a crash
 * in between leaves a mapping to nothing (repaired by the next upsert or delete), never a resource
 * nobody maps. The callers (upsert.ts, forget.ts) run the mapping's transitions through
 * guardedTransition, under the lock `external-id:<_id>`.
 */
import type { Model, Types } from 'mongoose';
import type { AppContext } from '../context';
import { externalIdKey, type ExternalIdDoc, type ExternalKind, type ExternalRef } from '../db/externalId';
import { isDuplicateKey } from '../db/errors';

type ExternalIds = AppContext['models']['externalIds'];
/** tasks or schedule_blocks: what is written at a mapped id. */
type Resources = Model<any>;

/**
 * absent → `<kind>|<userId>|<externalId>` ↦ resourceId. Guard: the unique _id.
 * Returns the mapping, or null when another caller's mapping was there first (read it instead).
 */
export async function claimExternalId(
  ExternalIds: ExternalIds,
  kind: ExternalKind,
  ref: ExternalRef,
  resourceId: Types.ObjectId,
): Promise<ExternalIdDoc | null> {
  try {
    const created = await ExternalIds.create({ _id: externalIdKey(kind, ref), kind, userId: ref.userId, externalId: ref.externalId, resourceId });
    return created.toObject() as ExternalIdDoc;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return null;
  }
}

/**
 * `_id` ↦ resourceId → absent. Guard: `{_id, resourceId}`, so a late release never removes a
 * mapping made again since (to a new resource). Returns whether it released one. Read by _id
 * first: FerretDB v1 scans the collection for any other filter, so only a real release pays that.
 */
export async function releaseExternalId(ExternalIds: ExternalIds, key: string, resourceId: Types.ObjectId | string): Promise<boolean> {
  const current = await ExternalIds.findById(key, { resourceId: 1 }).lean<Pick<ExternalIdDoc, 'resourceId'>>();
  if (!current || String(current.resourceId) !== String(resourceId)) return false;
  const { deletedCount } = await ExternalIds.deleteOne({ _id: key, resourceId });
  return deletedCount > 0;
}

/**
 * absent → the resource at `id` (a mapped id), as `doc`. Guard: the unique _id.
 * Returns it, or null when one is there already (replace it instead).
 */
export async function insertResourceAt<D>(Resources: Resources, id: Types.ObjectId, doc: Record<string, unknown>): Promise<D | null> {
  try {
    const created = await Resources.create({ ...doc, _id: id });
    return created.toObject() as D;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return null;
  }
}

/**
 * the resource at `id` → `doc`, whole (what doc leaves out is gone; createdAt is the caller's to
 * keep). Guard: `{_id}` alone, the one filter FerretDB v1 does not answer by a scan; the caller
 * read the document by _id and checked its userId, which no write changes. Concurrent replaces
 * both apply and the last one stays, as for any PUT. Returns it, or null when there is none.
 */
export function replaceResourceAt<D>(Resources: Resources, id: Types.ObjectId, doc: Record<string, unknown>): Promise<D | null> {
  return Resources.findOneAndReplace({ _id: id }, doc, { returnDocument: 'after', runValidators: true }).lean<D>().exec();
}
