/** The card redraw worker: turns redrawCard's step into BullMQ's language. */
import type { Job, Worker } from 'bullmq';
import { DelayedError } from 'bullmq';
import { z } from 'zod';
import type { AppContext } from '../src/context';
import { redrawCard } from '../src/cards/updates';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';

const payload = z.object({ v: z.literal(1), recordId: z.string().regex(/^[0-9a-f]{24}$/) });

export function createCardUpdateWorker(ctx: AppContext): Worker {
  const process = async (job: Job, token?: string) => {
    const { recordId } = payload.parse(job.data);
    const step = await redrawCard(ctx, recordId);
    switch (step.kind) {
      case 'done':
        return step;
      case 'delay':
        await job.moveToDelayed(Date.now() + step.ms, token);
        throw new DelayedError(step.code);
      case 'retry':
        throw new Error(`${step.code}: ${step.detail}`);
    }
  };
  // Feishu takes 5 updates per second of one message; one job per card keeps to that.
  const worker = startWorker(ctx, queueNames.cardUpdates, process, { concurrency: 10 });
  worker.on('failed', (job, err) => {
    if (job && !(err instanceof DelayedError)) ctx.logger.warn({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, 'card redraw failed');
  });
  return worker;
}
