/** Starts every BullMQ worker of worker mode; each processor file is a thin adapter over the domain. */
import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { createNotificationWorker } from './notifications';
import { createScannerWorker } from './scanner';
import { createActiveScheduleWorker } from './activeScheduleTriggered';
import { createMaintenanceWorker } from './maintenance';
import { createCardUpdateWorker } from './cardUpdates';
import { createEventWorker } from './events';
import { upsertJobSchedulers } from '../queues/schedulers';

export async function startWorkers(ctx: AppContext): Promise<Worker[]> {
  const workers = [createNotificationWorker(ctx)];
  workers.push(createScannerWorker(ctx));
  workers.push(createActiveScheduleWorker(ctx));
  workers.push(createMaintenanceWorker(ctx));
  workers.push(createCardUpdateWorker(ctx));
  workers.push(createEventWorker(ctx));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await upsertJobSchedulers(ctx);
  return workers;
}
