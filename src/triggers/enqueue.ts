/** One workflow job per trigger, with an id derived from it: enqueueing twice adds one job. */
import type { AppContext } from '../context';
import type { TriggerJob } from './schemas';
import { triggerJobId, triggerJobName } from './schemas';

export const WORKFLOW_ATTEMPTS = 5;
export const WORKFLOW_BACKOFF_MS = 1000;

/**
 * `after`: attempts already made elsewhere (a workflow its creator ran at once and that failed):
 * the job waits the backoff of a retry and has the attempts left.
 */
export async function enqueueTriggerWorkflow(ctx: Pick<AppContext, 'queues' | 'config'>, triggerId: string, after = 0): Promise<void> {
  const data: TriggerJob = { v: 1, triggerId };
  const keep = { age: ctx.config.JOB_RETENTION_SECONDS };
  await ctx.queues['active-schedule-triggered'].add(triggerJobName, data, {
    jobId: triggerJobId(triggerId),
    attempts: Math.max(1, WORKFLOW_ATTEMPTS - after),
    backoff: { type: 'exponential', delay: WORKFLOW_BACKOFF_MS, jitter: 0.2 },
    ...(after > 0 ? { delay: WORKFLOW_BACKOFF_MS * 2 ** (after - 1) } : {}),
    removeOnComplete: keep,
    removeOnFail: keep,
  });
}
