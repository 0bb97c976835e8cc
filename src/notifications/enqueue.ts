/** One BullMQ job per record, with an id derived from the record: enqueueing twice adds one job. */
import type { AppContext } from '../context';
import type { DeliveryJob } from './schemas';
import { deliveryJobId } from './schemas';

export const backoffType = 'dueflow';

export function deliveryJobOptions(config: AppContext['config']) {
  const keep = { age: config.JOB_RETENTION_SECONDS };
  return {
    attempts: config.NOTIFY_ATTEMPTS,
    backoff: { type: backoffType },
    // Kept so operators see them in Bull Board and can replay dead ones.
    removeOnComplete: keep,
    removeOnFail: keep,
  };
}

/**
 * BullMQ takes jobs without a priority before prioritized ones: urgent records (critical
 * anomalies) go without, everything else (reminders, suggestions, digests) with this one, so a
 * burst of those never holds an urgent message up in the queue.
 */
export const bulkPriority = 10;

export interface EnqueueOptions {
  delayMs?: number;
  urgent?: boolean;
}

export async function enqueueDelivery(ctx: Pick<AppContext, 'queues' | 'config'>, recordId: string, opts: EnqueueOptions = {}): Promise<void> {
  const data: DeliveryJob = { v: 1, recordId };
  await ctx.queues.notifications.add('notification.feishu.requested', data, {
    ...deliveryJobOptions(ctx.config),
    jobId: deliveryJobId(recordId),
    delay: opts.delayMs ?? 0,
    ...(opts.urgent ? {} : { priority: bulkPriority }),
  });
}
