/**
 * MongoDB is the source of truth, Redis the transport. This repairs what Redis lost or a dead
 * process left behind, for notification records:
 * - pending or failed records whose BullMQ job is missing (Redis restarted without persistence,
 *   was flushed, or the job was removed by hand) are enqueued again;
 * - records stuck in `sending` past their lease go back to `failed` and are retried.
 */
import type { AppContext } from '../context';
import { enqueueDelivery } from '../notifications/enqueue';
import { deliveryJobId } from '../notifications/schemas';
import { sendingLeaseMs, takeBackLapsedSending } from '../notifications/transitions';
import { guardedOrNull, lockName } from '../db/guarded';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'metrics' | 'store' | 'redis'>;

export interface NotificationRepairs {
  requeued: number;
  unstuck: number;
}

/** Records younger than this are left alone: their job is being added right now. */
const settleMs = 10_000;

export async function reconcileNotifications(ctx: Ctx, now = new Date(), batchSize = 500): Promise<NotificationRepairs> {
  const Records = ctx.models.notificationRecords;
  const repairs: NotificationRepairs = { requeued: 0, unstuck: 0 };

  // sending past the lease: the sender died mid-attempt. Whether Feishu got it is unknown; retry.
  const stuck = await Records.find({ status: 'sending', sendingSince: { $lt: new Date(now.getTime() - sendingLeaseMs) } }, { _id: 1 })
    .limit(batchSize)
    .lean();
  for (const { _id } of stuck) {
    // Under the record's lock: a sender that finishes now writes its outcome, not this repair over it.
    const moved = await guardedOrNull(ctx, lockName('notification', String(_id)), () => takeBackLapsedSending(Records, _id, now));
    if (moved) {
      repairs.unstuck++;
      ctx.metrics.repairs.inc({ kind: 'notification_sending_expired' });
    }
  }

  const waiting = await Records.find(
    { status: { $in: ['pending', 'failed'] }, updatedAt: { $lt: new Date(now.getTime() - settleMs) } },
    { _id: 1, nextRetryAt: 1, deferredUntil: 1, urgent: 1 },
  )
    .sort({ updatedAt: 1 })
    .limit(batchSize)
    .lean();
  for (const record of waiting) {
    const id = String(record._id);
    const job = await ctx.queues.notifications.getJob(deliveryJobId(id));
    // A job that ended (failed or completed) while its record still waits is stale: replace it.
    const state = job ? await job.getState() : 'missing';
    if (state !== 'missing' && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
    // The job may have just finished and moved the record on: only a record still waiting is repaired.
    if (!(await Records.exists({ _id: record._id, status: { $in: ['pending', 'failed'] } }))) continue;
    if (job) await job.remove().catch(() => undefined);
    const at = Math.max(record.nextRetryAt?.getTime() ?? 0, record.deferredUntil?.getTime() ?? 0);
    await enqueueDelivery(ctx, id, { delayMs: Math.max(0, at - now.getTime()), urgent: record.urgent ?? false });
    repairs.requeued++;
    ctx.metrics.repairs.inc({ kind: 'notification_job_missing' });
  }
  if (repairs.requeued || repairs.unstuck) ctx.logger.warn({ ...repairs }, 'reconciler repaired notification records');
  return repairs;
}
