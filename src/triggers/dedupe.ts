/**
 * The dedupe key of a trigger: user, type, target and window. The target is in it, so two
 * different tasks in one window are two triggers (the original keyed by user + type + window only).
 *
 * The window:
 * - worker_due_job: the due job's triggerAt (`at`) exactly. The same due job fired twice (two
 *   workers, a retry) is one trigger; a task whose threshold moved is a new anomaly.
 * - api_trigger and user_feedback: 30-minute buckets of `at` (UTC), so a repeated click or report
 *   within the bucket is one trigger, and the same anomaly can be raised again later.
 */
import { createHash } from 'node:crypto';

export const WINDOW_BUCKET_MS = 30 * 60_000;

export function triggerWindowStart(source: string, at: Date): Date {
  if (source === 'worker_due_job') return at;
  return new Date(Math.floor(at.getTime() / WINDOW_BUCKET_MS) * WINDOW_BUCKET_MS);
}

export function triggerDedupeKey(input: { userId: string; type: string; target: { type: string; id: string }; source: string; at: Date }): string {
  return `${input.userId}|${input.type}|${input.target.type}:${input.target.id}|${triggerWindowStart(input.source, input.at).toISOString()}`;
}

/** The notification's dedupe key: the trigger's (same user, type, target, window), within the record's 256 characters. */
export function notificationDedupeKey(triggerDedupe: string): string {
  const key = `active-schedule|${triggerDedupe}`;
  return key.length <= 256 ? key : `active-schedule|sha256|${createHash('sha256').update(triggerDedupe).digest('hex')}`;
}
