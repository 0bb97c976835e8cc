/** Housekeeping MongoDB cannot do for dueflow on FerretDB v1 (no TTL indexes): old idempotency keys, old events. */
import type { AppContext } from '../context';

/** A retry of a service request is expected within minutes; a day is plenty. */
export const idempotencyKeyTtlMs = 24 * 3600_000;

export async function purgeExpired(ctx: Pick<AppContext, 'models'>, now = new Date()): Promise<{ idempotencyKeys: number }> {
  const { deletedCount } = await ctx.models.idempotencyKeys.deleteMany({ createdAt: { $lt: new Date(now.getTime() - idempotencyKeyTtlMs) } });
  return { idempotencyKeys: deletedCount };
}

/**
 * Events and their deliveries older than EVENT_RETENTION_DAYS. A delivery that old has long
 * finished (its attempts span hours), and the pull API promises no more than the retention.
 */
export async function purgeExpiredEvents(ctx: Pick<AppContext, 'models' | 'config'>, now = new Date()): Promise<{ events: number; eventDeliveries: number }> {
  const before = new Date(now.getTime() - ctx.config.EVENT_RETENTION_DAYS * 86_400_000);
  const deliveries = await ctx.models.eventDeliveries.deleteMany({ createdAt: { $lt: before }, status: { $ne: 'sending' } });
  const events = await ctx.models.events.deleteMany({ createdAt: { $lt: before } });
  return { events: events.deletedCount, eventDeliveries: deliveries.deletedCount };
}
