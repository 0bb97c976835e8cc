/**
 * The active-schedule-triggered worker, two job kinds:
 * - `due-job` (from the scanner, delayed until the occurrence's triggerAt): fire the due job, then
 *   run the workflow of the trigger it created, at once and with what the firing read (no job of
 *   its own unless that run fails: then its retries are a `trigger` job);
 * - `trigger`: run the workflow of one trigger.
 * Payloads are validated (versioned); an invalid one fails at once. Errors retry with backoff;
 * a trigger held by another run (a worker that died mid-run) waits, without spending an attempt,
 * until that run's lease ends.
 */
import type { Job, Worker } from 'bullmq';
import { DelayedError, UnrecoverableError } from 'bullmq';
import type { ZodType } from 'zod';
import type { AppContext } from '../src/context';
import { claimFromPayload, fireDueJobForWorkflow } from '../src/scheduling/fireDueJob';
import { dueJobJobName, dueJobPayloadSchema } from '../src/scheduling/schemas';
import { triggerJobName, triggerJobSchema } from '../src/triggers/schemas';
import { runClaimedWorkflow, runWorkflow } from '../src/workflow/run';
import { queueNames } from '../queues/names';
import { startWorker } from './worker';

function parse<T>(schema: ZodType<T>, job: Job): T {
  const payload = schema.safeParse(job.data);
  if (!payload.success) {
    throw new UnrecoverableError(
      `invalid ${job.name} job payload: ${payload.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return payload.data;
}

/** One job of the queue, as the worker runs it (exported so tests can run a job the way the worker does). */
export async function processActiveScheduleJob(ctx: AppContext, job: Job, token?: string) {
  switch (job.name) {
    case dueJobJobName: {
      const payload = parse(dueJobPayloadSchema, job);
      const { dueJobId } = payload;
      const { outcome, fired } = await fireDueJobForWorkflow(ctx, {
        dueJobId,
        now: new Date(),
        claimedFor: new Date(payload.triggerAt),
        claim: claimFromPayload(payload),
      });
      // Run before its triggerAt by this host's clock (the scanner's clock ahead, a job added without its delay): wait, no attempt spent.
      if (outcome.notBefore) {
        await job.moveToDelayed(Date.parse(outcome.notBefore), token);
        throw new DelayedError(`due job ${dueJobId} is due at ${outcome.notBefore}`);
      }
      // The due job is fired whatever its workflow does; a failed run has handed its trigger to a `trigger` job.
      if (fired) {
        await runClaimedWorkflow(ctx, fired.trigger, fired.planning).catch((err: unknown) =>
          ctx.logger.warn(
            { dueJobId, triggerId: String(fired.trigger._id), err: err instanceof Error ? err.message : String(err) },
            'workflow of a fired due job failed; retried by its job',
          ),
        );
      }
      return outcome;
    }
    case triggerJobName: {
      const { triggerId } = parse(triggerJobSchema, job);
      const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const outcome = await runWorkflow(ctx, triggerId, { finalAttempt });
      if (outcome.status === 'not_claimed' && outcome.leaseEndsAt) {
        await job.moveToDelayed(outcome.leaseEndsAt.getTime() + 100, token);
        throw new DelayedError(`trigger ${triggerId} is being processed elsewhere`);
      }
      return outcome;
    }
    default:
      throw new UnrecoverableError(`unknown job name ${job.name} on ${queueNames.activeScheduleTriggered}`);
  }
}

export function createActiveScheduleWorker(ctx: AppContext): Worker {
  const { config, logger } = ctx;
  const process = (job: Job, token?: string) => processActiveScheduleJob(ctx, job, token);

  const worker = startWorker(ctx, queueNames.activeScheduleTriggered, process, { concurrency: config.WORKER_CONCURRENCY });
  worker.on('failed', (job, err) => {
    if (job && !(err instanceof DelayedError))
      logger.warn({ jobId: job.id, name: job.name, attemptsMade: job.attemptsMade, err: err.message }, 'active-schedule job failed');
  });
  return worker;
}
