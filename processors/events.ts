/**
 * The events worker: validates the job payload and turns deliverEvent's step into BullMQ's
 * language (return, delay without an attempt, retry with backoff, fail for good). Its own queue
 * and Worker, so a slow endpoint never holds up notifications; EVENT_ENDPOINT_CONCURRENCY keeps
 * it from holding up the other endpoints.
 */
import type { Job, Worker } from 'bullmq';
import { DelayedError, UnrecoverableError } from 'bullmq';
import type { AppContext } from '../src/context';
import { guardedTransition } from '../src/db/guarded';
import { deliverEvent, sendingLeaseMs, type EventDeliveryDeps } from '../src/events/deliver';
import { createEndpointSlots } from '../src/events/endpointSlots';
import { eventBackoffType } from '../src/events/enqueue';
import { deliveryIdPattern } from '../src/events/ids';
import { eventJobSchema } from '../src/events/schemas';
import { createEventSender } from '../src/events/send';
import { deliveryLock, markDead } from '../src/events/transitions';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';
import { settleStep, stepBackoff } from './deliveryStep';

export function createEventWorker(ctx: AppContext, overrides: Partial<EventDeliveryDeps> = {}): Worker {
  const { config, logger } = ctx;
  const deps: EventDeliveryDeps = {
    sender: overrides.sender ?? createEventSender({ allowLoopback: config.WEBHOOK_ALLOW_LOOPBACK, timeoutMs: config.EVENT_TIMEOUT_MS }),
    slots:
      overrides.slots ??
      createEndpointSlots(ctx.redis, { prefix: config.QUEUE_PREFIX, limit: config.EVENT_ENDPOINT_CONCURRENCY, holdMs: sendingLeaseMs(config) }),
    now: overrides.now,
  };

  const process = async (job: Job, token?: string) => {
    const payload = eventJobSchema.safeParse(job.data);
    if (!payload.success) {
      const detail = `invalid job payload: ${payload.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
      const id = typeof job.data?.deliveryId === 'string' && deliveryIdPattern.test(job.data.deliveryId) ? job.data.deliveryId : undefined;
      if (id)
        await guardedTransition(ctx, deliveryLock(id), () => markDead(ctx.models.eventDeliveries, { id, now: new Date(), reason: 'payload_invalid', detail }));
      throw new UnrecoverableError(detail);
    }
    const { step } = await deliverEvent(ctx, payload.data.deliveryId, { attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 }, deps);
    return settleStep(job, token, step);
  };

  const worker = startWorker(ctx, queueNames.events, process, {
    concurrency: config.EVENT_WORKER_CONCURRENCY,
    // An attempt lasts up to EVENT_TIMEOUT_MS: the job's lock must outlive it.
    lockDuration: Math.max(30_000, sendingLeaseMs(config)),
    settings: {
      backoffStrategy: stepBackoff(eventBackoffType, config.EVENT_BACKOFF_MS, config.EVENT_BACKOFF_MAX_MS),
    },
  });
  worker.on('failed', (job, err) => {
    if (job && !(err instanceof DelayedError)) logger.info({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, 'event job failed');
  });
  return worker;
}
