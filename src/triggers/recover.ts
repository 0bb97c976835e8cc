/**
 * Triggers whose work was lost: pending with no job (Redis lost it, or the enqueue after the insert
 * failed), or processing past the lease with a job that already ended (a worker died and the
 * job failed as stalled). Each gets its workflow job back. Meant for the periodic maintenance
 * job; safe to run from several processes (the workflow claims the trigger by a guarded update).
 */
import type { AppContext } from '../context';
import { enqueueTriggerWorkflow } from './enqueue';
import { triggerJobId } from './schemas';
import { processingLeaseMs } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'metrics'>;

/** A pending trigger younger than this still has its first job on the way. */
export const pendingGraceMs = 60_000;

export async function recoverTriggers(ctx: Ctx, now = new Date(), limit = 100): Promise<{ requeued: number }> {
  const stale = await ctx.models.triggers
    .find(
      {
        $or: [
          { status: 'pending', updatedAt: { $lt: new Date(now.getTime() - pendingGraceMs) } },
          { status: 'processing', processingSince: { $lt: new Date(now.getTime() - processingLeaseMs) } },
        ],
      },
      { _id: 1 },
    )
    .sort({ updatedAt: 1 })
    .limit(limit)
    .lean();
  const queue = ctx.queues['active-schedule-triggered'];
  let requeued = 0;
  for (const t of stale) {
    const id = String(t._id);
    const job = await queue.getJob(triggerJobId(id));
    const state = job ? await job.getState() : 'missing';
    if (state === 'missing' || state === 'unknown') {
      await enqueueTriggerWorkflow(ctx, id);
    } else if (state === 'failed') {
      await job!.retry('failed');
    } else if (state === 'completed') {
      await job!.remove();
      await enqueueTriggerWorkflow(ctx, id);
    } else continue; // waiting, delayed, active: it will run
    requeued++;
    ctx.metrics.repairs.inc({ kind: 'trigger_requeued' });
    ctx.logger.info({ triggerId: id, jobState: state }, 'trigger requeued');
  }
  return { requeued };
}
