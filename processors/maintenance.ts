/** The maintenance worker: the reconciler (repairs what Redis lost) and housekeeping, on a schedule. */
import type { Job, Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { purgeExpired, purgeExpiredEvents } from '../src/maintenance/purge';
import { reconcileEvents } from '../src/events/reconcile';
import { reconcileDomainEvents } from '../src/events/domainReconcile';
import { renotifyExpiringPreviews } from '../src/previews/renotify';
import { reconcileNotifications } from '../src/reconciler/notifications';
import { recoverTriggers } from '../src/triggers/recover';
import { escalateAnomalies } from '../src/anomalies/escalation';
import { expirePreviews } from '../src/previews/expire';
import { requestMissingSnoozeCopies } from '../src/reminders/reply';
import { repairStuckReminderJobs } from '../src/reminders/store';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';
import { purgeJobName, reconcileJobName } from '../queues/schedulers';
import { relayRecordEvents } from '../src/notifications/events';

export function createMaintenanceWorker(ctx: AppContext): Worker {
  const { logger } = ctx;
  const process = async (job: Job) => {
    switch (job.name) {
      case reconcileJobName:
        return {
          notifications: await reconcileNotifications(ctx),
          triggers: await recoverTriggers(ctx),
          previewReminders: await renotifyExpiringPreviews(ctx),
          escalations: await escalateAnomalies(ctx),
          expiredPreviews: await expirePreviews(ctx),
          snoozeCopies: await requestMissingSnoozeCopies(ctx),
          stuckReminderJobs: await repairStuckReminderJobs(ctx),
          events: await reconcileEvents(ctx),
          eventsOfChanges: await reconcileDomainEvents(ctx),
          // Deliveries wake their process's relay; what a crash or a stopped process left waits for this.
          recordEvents: await relayRecordEvents(ctx),
        };
      case purgeJobName:
        return { ...(await purgeExpired(ctx)), ...(await purgeExpiredEvents(ctx)) };
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  };
  // Two at once: a long purge must not hold up the reconcile.
  const worker = startWorker(ctx, queueNames.maintenance, process, { concurrency: 2 });
  worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, job: job?.name, err: err.message }, 'maintenance job failed'));
  return worker;
}
