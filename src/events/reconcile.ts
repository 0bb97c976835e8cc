/**
 * MongoDB is the truth, Redis the transport. Run by the maintenance job, this repairs what a
 * crash or a lost Redis left of events:
 * - events without `fannedOutAt` (the emitter died between the event and its deliveries) are
 *   fanned out again: the deliveries are written (duplicates ignored) and enqueued;
 * - deliveries left `sending` past their lease (the worker died mid-attempt) go back to failed
 *   and are enqueued again;
 * - pending or failed deliveries whose BullMQ job is missing or finished (Redis flushed or
 *   restarted without persistence, a job removed by hand) are enqueued again, at their nextRetryAt.
 * On FerretDB v1 the first queries are full scans (only `_id` is served by an index); they are
 * bounded by `batchSize` and run once per RECONCILE_INTERVAL_MS.
 */
import type { AppContext } from '../context';
import { guardedTransition } from '../db/guarded';
import { sendingLeaseMs } from './deliver';
import { fanOut } from './emit';
import { enqueueEventDeliveries } from './enqueue';
import { eventJobId } from './ids';
import { deliveryLock, takeBackLapsed } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'metrics' | 'redis' | 'store'>;

export interface EventRepairs {
  fannedOut: number;
  requeued: number;
  unstuck: number;
}

/** Younger than this, an event or delivery is left alone: its emitter is writing it right now. */
export const eventSettleMs = 5_000;

export async function reconcileEvents(ctx: Ctx, now = new Date(), batchSize = 500): Promise<EventRepairs> {
  const repairs: EventRepairs = { fannedOut: 0, requeued: 0, unstuck: 0 };
  const settled = new Date(now.getTime() - eventSettleMs);

  const unfanned = await ctx.models.events
    .find({ fannedOutAt: { $exists: false }, createdAt: { $lt: settled } }, { type: 1, dataJson: 1 })
    .limit(batchSize)
    .lean();
  for (const event of unfanned) {
    await fanOut(ctx, { event: { _id: String(event._id), type: event.type, dataJson: event.dataJson }, enqueue: true });
    repairs.fannedOut++;
    ctx.metrics.repairs.inc({ kind: 'event_fanout_missing' });
  }

  const D = ctx.models.eventDeliveries;
  const leaseMs = sendingLeaseMs(ctx.config);
  const stuck = await D.find({ status: 'sending', sendingSince: { $lt: new Date(now.getTime() - leaseMs) } }, { _id: 1 })
    .limit(batchSize)
    .lean();
  for (const { _id } of stuck) {
    const id = String(_id);
    const moved = await guardedTransition(ctx, deliveryLock(id), () => takeBackLapsed(D, { id, now, leaseMs }));
    if (!moved) continue;
    repairs.unstuck++;
    ctx.metrics.repairs.inc({ kind: 'event_sending_expired' });
    // Its job may have died with the worker (or with Redis): make sure one will run it.
    const job = await runnableJob(ctx, id);
    if (job.gone) {
      await job.remove();
      await enqueueEventDeliveries(ctx, [{ id }]);
    }
  }

  const waiting = await D.find({ status: { $in: ['pending', 'failed'] }, updatedAt: { $lt: settled } }, { _id: 1, nextRetryAt: 1 })
    .sort({ updatedAt: 1 })
    .limit(batchSize)
    .lean();
  for (const d of waiting) {
    const id = String(d._id);
    const job = await runnableJob(ctx, id);
    if (!job.gone) continue;
    // The job may have just finished and moved the delivery on: only one still waiting is repaired.
    if (!(await D.exists({ _id: id, status: { $in: ['pending', 'failed'] } }))) continue;
    await job.remove();
    await enqueueEventDeliveries(ctx, [{ id, delayMs: Math.max(0, (d.nextRetryAt?.getTime() ?? 0) - now.getTime()) }]);
    repairs.requeued++;
    ctx.metrics.repairs.inc({ kind: 'event_job_missing' });
  }
  if (repairs.fannedOut || repairs.requeued || repairs.unstuck) ctx.logger.warn({ ...repairs }, 'reconciler repaired event deliveries');
  return repairs;
}

/** Whether no job will run this delivery: there is none, or it ended; `remove` frees its id for a new one. */
async function runnableJob(ctx: Ctx, deliveryId: string): Promise<{ gone: boolean; remove: () => Promise<void> }> {
  const job = await ctx.queues.events.getJob(eventJobId(deliveryId));
  const state = job ? await job.getState() : 'missing';
  const gone = state === 'missing' || state === 'completed' || state === 'failed' || state === 'unknown';
  return {
    gone,
    remove: async () => {
      if (job) await job.remove().catch(() => undefined);
    },
  };
}
