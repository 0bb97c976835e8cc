/**
 * After a synced task or block is deleted (by the host product, or through the user routes): its
 * mapping goes, so a later PUT of its externalId creates it again.
 */
import type { Types } from 'mongoose';
import type { AppContext } from '../context';
import { externalIdKey, type ExternalKind } from '../db/externalId';
import { guardedTransition, lockName } from '../db/guarded';
import { syncDueJobForTask } from '../scheduling/dueJobs';
import { releaseExternalId } from './transitions';

export type SyncCtx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config'>;

export const externalIdLock = (key: string) => lockName('external-id', key);

/**
 * Releases the mapping of a deleted resource, then deletes the resource once more (and cancels a
 * task's due job again): an upsert that read the mapping before it went may have written it again
 * meanwhile. That upsert looks at the mapping after writing, so between the two of them such a
 * copy, or an open due job of it, never stays.
 */
export async function forgetExternalId(
  ctx: SyncCtx,
  kind: ExternalKind,
  resource: { _id: Types.ObjectId; userId: string; externalId: string },
  now = new Date(),
): Promise<void> {
  const key = externalIdKey(kind, resource);
  await guardedTransition(ctx, externalIdLock(key), () => releaseExternalId(ctx.models.externalIds, key, resource._id));
  // By _id alone (FerretDB v1 scans for anything else): the id was minted for this user's mapping.
  const filter = { _id: resource._id };
  if (kind === 'block') {
    await ctx.models.scheduleBlocks.deleteOne(filter);
    return;
  }
  await ctx.models.tasks.deleteOne(filter);
  await syncDueJobForTask(ctx, { _id: resource._id, userId: resource.userId, status: 'todo', deleted: true }, now);
}
