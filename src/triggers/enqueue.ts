/** One workflow job per trigger, with an id derived from it: enqueueing twice adds one job. */
import type { AppContext } from '../context';
import type { TriggerJob } from './schemas';
import { triggerJobId, triggerJobName } from './schemas';

export const WORKFLOW_ATTEMPTS = 5;
export const WORKFLOW_BACKOFF_MS = 1000;

export async function enqueueTriggerWorkflow(ctx: Pick<AppContext, 'queues' | 'config'>, triggerId: string): Promise<void> {
  const data: TriggerJob = { v: 1, triggerId };
  const keep = { age: ctx.config.JOB_RETENTION_SECONDS };
  await ctx.queues['active-schedule-triggered'].add(triggerJobName, data, {
    jobId: triggerJobId(triggerId),
    attempts: WORKFLOW_ATTEMPTS,
    backoff: { type: 'exponential', delay: WORKFLOW_BACKOFF_MS, jitter: 0.2 },
    removeOnComplete: keep,
    removeOnFail: keep,
  });
}
