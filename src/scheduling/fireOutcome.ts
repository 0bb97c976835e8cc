/** What firing a due job did, as the `due-job` processor returns it (tasks and reminders alike). */
import type { DueJobDoc } from '../db/dueJob';

export interface FireOutcome {
  status: string;
  reason?: string;
  triggerId?: string;
  /** A reminder that rolled forward: its next occurrence (ISO). */
  nextAt?: string;
  /** Not fired: its time has not come (ISO); the processor delays its BullMQ job until then. */
  notBefore?: string;
}

/** The due job's state as an outcome (`missing` when it is gone). */
export function outcomeOf(job: DueJobDoc | null): FireOutcome {
  if (!job) return { status: 'missing' };
  const o: FireOutcome = { status: job.status };
  if (job.reason) o.reason = job.reason;
  if (job.triggerId) o.triggerId = job.triggerId;
  return o;
}
