/** Ready previews past their expiry become expired (run by the maintenance job), and their cards say so. */
import type { AppContext } from '../context';
import { guardedTransition, lockName } from '../db/guarded';
import { refreshCards } from '../cards/updates';
import { expirePreview } from './transitions';
import { emitPreviewExpired } from './answer';
import type { PreviewDoc } from '../db/preview';

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'feishuApp' | 'logger'>;

export async function expirePreviews(ctx: Ctx, now = new Date(), batchSize = 200): Promise<number> {
  const due = await ctx.models.previews
    .find({ status: 'ready', expiresAt: { $lte: now } }, { _id: 1 })
    .limit(batchSize)
    .lean();
  let expired = 0;
  for (const { _id } of due) {
    const done = await guardedTransition(ctx, lockName('preview', String(_id)), () => expirePreview(ctx.models.previews, _id, now).lean<PreviewDoc>());
    if (!done) continue;
    expired++;
    await emitPreviewExpired(ctx, done);
    await refreshCards(ctx, { previewId: String(_id) });
  }
  return expired;
}
