/** Retry delays: exponential from NOTIFY_BACKOFF_MS, capped at NOTIFY_BACKOFF_MAX_MS, with ±20% jitter. */
export function retryDelayMs(failedAttempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exponential = baseMs * 2 ** Math.max(0, failedAttempts - 1);
  const jittered = Math.min(exponential, maxMs) * (0.8 + 0.4 * random());
  return Math.round(Math.min(jittered, maxMs));
}
