/** One BullMQ job per record, with an id derived from the record: enqueueing twice adds one job. */
import type { AppContext } from '../context';
import { deliveryJobId, DeliveryJob } from './schemas';

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

export async function enqueueDelivery(ctx: Pick<AppContext, 'queues' | 'config'>, recordId: string, delayMs = 0): Promise<void> {
  const data: DeliveryJob = { v: 1, recordId };
  await ctx.queues.notifications.add('notification.feishu.requested', data, {
    ...deliveryJobOptions(ctx.config),
    jobId: deliveryJobId(recordId),
    delay: delayMs,
  });
}
