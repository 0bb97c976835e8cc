/** Starts every BullMQ worker of worker mode; each processor file is a thin adapter over the domain. */
import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { createNotificationWorker } from './notifications';

export async function startWorkers(ctx: AppContext): Promise<Worker[]> {
  const workers = [createNotificationWorker(ctx)];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return workers;
}
