/** One BullMQ job per delivery, its id derived from the delivery: enqueueing twice adds one job. */
import type { AppContext } from '../context';
import { eventJobId } from './ids';
import type { EventJob } from './schemas';

export const eventBackoffType = 'dueflow-events';
export const eventJobName = 'event.deliver';

type Ctx = Pick<AppContext, 'queues' | 'config'>;

export function eventJobOptions(config: AppContext['config']) {
  const keep = { age: config.JOB_RETENTION_SECONDS };
  // Kept so operators see them in Bull Board and can replay dead ones (the failed job's Retry).
  return { attempts: config.EVENT_ATTEMPTS, backoff: { type: eventBackoffType }, removeOnComplete: keep, removeOnFail: keep };
}

export async function enqueueEventDeliveries(ctx: Ctx, deliveries: Array<{ id: string; delayMs?: number }>): Promise<void> {
  if (!deliveries.length) return;
  await ctx.queues.events.addBulk(
    deliveries.map(({ id, delayMs }) => {
      const data: EventJob = { v: 1, deliveryId: id };
      return { name: eventJobName, data, opts: { ...eventJobOptions(ctx.config), jobId: eventJobId(id), delay: delayMs ?? 0 } };
    }),
  );
}
