/**
 * The notifications worker: validates the job payload and turns deliverNotification's step
 * into BullMQ's language (return, delay without an attempt, retry with backoff, fail for good).
 */
import type { Job, Worker } from 'bullmq';
import { DelayedError, UnrecoverableError } from 'bullmq';
import type { AppContext } from '../src/context';
import type { DeliveryDeps } from '../src/notifications/deliver';
import { deliverNotification } from '../src/notifications/deliver';
import { backoffType } from '../src/notifications/enqueue';
import { deliveryJobSchema } from '../src/notifications/schemas';
import { markDead } from '../src/notifications/transitions';
import { guardedTransition, lockName } from '../src/db/guarded';
import { createWebhookRateLimiter } from '../src/notifications/webhookRateLimiter';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';
import { settleStep, stepBackoff } from './deliveryStep';

/**
 * `onEnded`: called for every job that ended (completed, or failed and not only put off): its
 * record may have ended too, with its event in the record's outbox (the events relay's cue).
 */
export function createNotificationWorker(ctx: AppContext, o: { deps?: Partial<DeliveryDeps>; onEnded?: () => void } = {}): Worker {
  const deps = o.deps ?? {};
  const { config, logger } = ctx;
  const limiter =
    deps.limiter ??
    createWebhookRateLimiter(ctx.redis, {
      prefix: config.QUEUE_PREFIX,
      perSecond: config.FEISHU_RATE_PER_SECOND,
      perMinute: config.FEISHU_RATE_PER_MINUTE,
      app: {
        perSecond: config.FEISHU_APP_RATE_PER_SECOND,
        perMinute: config.FEISHU_APP_RATE_PER_MINUTE,
        recipientPerSecond: config.FEISHU_APP_RECIPIENT_RATE_PER_SECOND,
        urgentPerSecond: config.FEISHU_APP_URGENT_PER_SECOND,
      },
    });

  const process = async (job: Job, token?: string) => {
    const payload = deliveryJobSchema.safeParse(job.data);
    if (!payload.success) {
      const detail = `invalid job payload: ${payload.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
      const recordId = typeof job.data?.recordId === 'string' && /^[0-9a-f]{24}$/.test(job.data.recordId) ? job.data.recordId : undefined;
      if (recordId)
        await guardedTransition(ctx, lockName('notification', recordId), () =>
          markDead(ctx.models.notificationRecords, recordId, new Date(), 'payload_invalid', detail),
        );
      throw new UnrecoverableError(detail);
    }
    const step = await deliverNotification(
      ctx,
      payload.data.recordId,
      { attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 },
      { ...deps, limiter },
    );
    return settleStep(job, token, step);
  };

  const worker = startWorker(ctx, queueNames.notifications, process, {
    concurrency: config.WORKER_CONCURRENCY,
    settings: {
      backoffStrategy: stepBackoff(backoffType, config.NOTIFY_BACKOFF_MS, config.NOTIFY_BACKOFF_MAX_MS),
    },
  });
  worker.on('completed', () => o.onEnded?.());
  worker.on('failed', (job, err) => {
    if (err instanceof DelayedError) return;
    o.onEnded?.();
    if (job) logger.info({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, 'notification job failed');
  });
  return worker;
}
