/** Starts every BullMQ worker of worker mode; each processor file is a thin adapter over the domain. */
import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { relayRecordEventsOnce } from '../src/notifications/events';
import { RecordEventRelay } from '../src/notifications/relayWake';
import { createNotificationWorker } from './notifications';
import { createScannerWorker } from './scanner';
import { createActiveScheduleWorker } from './activeScheduleTriggered';
import { createMaintenanceWorker } from './maintenance';
import { createCardUpdateWorker } from './cardUpdates';
import { createEventWorker } from './events';
import { removeRetiredJobSchedulers, upsertJobSchedulers } from '../queues/schedulers';

export interface StartedWorkers {
  workers: Worker[];
  /** Relays the end events of the records this process's deliveries ended; stopped after the workers. */
  relay: RecordEventRelay;
}

export async function startWorkers(ctx: AppContext): Promise<StartedWorkers> {
  const relay = new RecordEventRelay({ run: () => relayRecordEventsOnce(ctx), intervalMs: ctx.config.EVENT_RELAY_INTERVAL_MS, logger: ctx.logger });
  const workers = [createNotificationWorker(ctx, { onEnded: () => relay.wake() })];
  workers.push(createScannerWorker(ctx));
  workers.push(createActiveScheduleWorker(ctx));
  workers.push(createMaintenanceWorker(ctx));
  workers.push(createCardUpdateWorker(ctx));
  workers.push(createEventWorker(ctx));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await removeRetiredJobSchedulers(ctx);
  await upsertJobSchedulers(ctx);
  // What the last process left in outboxes (a crash, a deploy) goes now rather than at the first reconcile.
  relay.wake();
  return { workers, relay };
}
