/** The maintenance worker: the reconciler (repairs what Redis lost) and housekeeping, on a schedule. */
import { Job, Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { purgeExpired } from '../src/maintenance/purge';
import { reconcileNotifications } from '../src/reconciler/notifications';
import { createRedis } from '../queues/connection';
import { queueNames } from '../queues/names';
import { purgeJobName, reconcileJobName } from '../queues/schedulers';

export function createMaintenanceWorker(ctx: AppContext): Worker {
  const { config, logger } = ctx;
  const process = async (job: Job) => {
    switch (job.name) {
      case reconcileJobName:
        return { notifications: await reconcileNotifications(ctx) };
      case purgeJobName:
        return purgeExpired(ctx);
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  };
  const worker = new Worker(queueNames.maintenance, process, { connection: createRedis(config, 'worker'), prefix: config.QUEUE_PREFIX, concurrency: 1 });
  worker.on('error', (err) => logger.warn({ err: err.message, queue: queueNames.maintenance }, 'worker error'));
  worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, job: job?.name, err: err.message }, 'maintenance job failed'));
  return worker;
}
