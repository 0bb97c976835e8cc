/** Housekeeping MongoDB cannot do for dueflow on FerretDB v1 (no TTL indexes): old idempotency keys. */
import type { AppContext } from '../context';

/** A retry of a service request is expected within minutes; a day is plenty. */
export const idempotencyKeyTtlMs = 24 * 3600_000;

export async function purgeExpired(ctx: Pick<AppContext, 'models'>, now = new Date()): Promise<{ idempotencyKeys: number }> {
  const { deletedCount } = await ctx.models.idempotencyKeys.deleteMany({ createdAt: { $lt: new Date(now.getTime() - idempotencyKeyTtlMs) } });
  return { idempotencyKeys: deletedCount };
}
