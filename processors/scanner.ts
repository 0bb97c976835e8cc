/**
 * The scanner worker: each `scan` job of the due-job-scanner Job Scheduler runs one scanDueJobs,
 * then the detectors when DETECTOR_INTERVAL_MS has passed since their last run by any process
 * (`detectors: {skipped}` in the job's result otherwise).
 */
import type { Job, Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { scanDueJobs } from '../src/scheduling/scanner';
import { runDetectorsIfDue } from '../src/detectors';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';
import { scanJobName } from '../queues/schedulers';

export function createScannerWorker(ctx: AppContext): Worker {
  const { logger } = ctx;
  const process = async (job: Job) => {
    if (job.name !== scanJobName) throw new Error(`unknown scanner job ${job.name}`);
    // A failed scan is not retried: the next one comes SCAN_INTERVAL_MS later and sees the same state.
    const now = new Date();
    const scan = await scanDueJobs(ctx, now);
    return { ...scan, detectors: await runDetectorsIfDue(ctx, now) };
  };
  // One scan at a time per process; scans of several processes are safe together (claims are guarded).
  const worker = startWorker(ctx, queueNames.scanner, process, { concurrency: 1 });
  worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, err: err.message }, 'due-job scan failed'));
  return worker;
}
