/** The maintenance worker: the reconciler (repairs what Redis lost) and housekeeping, on a schedule. */
import type { Job, Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { purgeExpired } from '../src/maintenance/purge';
import { renotifyExpiringPreviews } from '../src/previews/renotify';
import { reconcileNotifications } from '../src/reconciler/notifications';
import { recoverTriggers } from '../src/triggers/recover';
import { escalateAnomalies } from '../src/anomalies/escalation';
import { expirePreviews } from '../src/previews/expire';
import { requestMissingSnoozeCopies } from '../src/reminders/reply';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';
import { purgeJobName, reconcileJobName } from '../queues/schedulers';

export function createMaintenanceWorker(ctx: AppContext): Worker {
  const { logger } = ctx;
  const process = async (job: Job) => {
    switch (job.name) {
      case reconcileJobName:
        return {
          notifications: await reconcileNotifications(ctx), triggers: await recoverTriggers(ctx), previewReminders: await renotifyExpiringPreviews(ctx),
          escalations: await escalateAnomalies(ctx), expiredPreviews: await expirePreviews(ctx), snoozeCopies: await requestMissingSnoozeCopies(ctx),
        };
      case purgeJobName:
        return purgeExpired(ctx);
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  };
  const worker = startWorker(ctx, queueNames.maintenance, process, { concurrency: 1 });
  worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, job: job?.name, err: err.message }, 'maintenance job failed'));
  return worker;
}
