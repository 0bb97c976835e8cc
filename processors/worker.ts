/** One way to start a dueflow worker: its own Redis connection (closed with it), errors logged. */
import type { Processor, WorkerOptions } from 'bullmq';
import { Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { createRedis } from '../queues/connection';
import type { QueueName } from '../queues/names';

export function startWorker(ctx: AppContext, queue: QueueName, process: Processor, opts: Omit<WorkerOptions, 'connection' | 'prefix'>): Worker {
  const connection = createRedis(ctx.config, 'worker');
  const worker = new Worker(queue, process, { ...opts, connection, prefix: ctx.config.QUEUE_PREFIX });
  worker.on('error', (err) => ctx.logger.warn({ err: err.message, queue }, 'worker error'));
  // BullMQ leaves a connection it was given open on close(); this one is the worker's alone.
  worker.on('closed', () => connection.disconnect());
  return worker;
}
