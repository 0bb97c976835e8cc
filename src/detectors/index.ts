/**
 * The detectors run after a due-job scan (processors/scanner.ts), at most once per
 * DETECTOR_INTERVAL_MS across all worker processes; one failing does not stop the others.
 */
import type { AppContext } from '../context';
import { missedBlockDetector } from './missedBlock';
import { scheduleConflictDetector } from './scheduleConflict';
import { deadlineRiskDetector } from './deadlineRisk';
import type { Detector, DetectorCtx } from './types';

export const detectors: Detector[] = [missedBlockDetector, scheduleConflictDetector, deadlineRiskDetector];

/** Triggers created per detector, by name; a detector that threw is counted under `failed`. */
export interface DetectorsResult {
  fired: Record<string, number>;
  failed: string[];
}

/** What a scan reports when the detectors did not run: another run (of any process) is younger than the interval, or Redis could not say. */
export interface DetectorsSkipped {
  skipped: 'interval' | 'coordination_failed';
}

export async function runDetectors(ctx: DetectorCtx, now: Date, list: Detector[] = detectors): Promise<DetectorsResult> {
  const result: DetectorsResult = { fired: {}, failed: [] };
  for (const d of list) {
    try {
      result.fired[d.name] = (await d.detect(ctx, now)).fired;
    } catch (err) {
      result.failed.push(d.name);
      ctx.logger.warn({ detector: d.name, err: (err as Error).message }, 'detector failed');
    }
  }
  return result;
}

/** The Redis key whose presence means "the detectors ran less than DETECTOR_INTERVAL_MS ago" (any process). */
export const detectorsRunKey = (config: Pick<AppContext['config'], 'QUEUE_PREFIX'>) => `${config.QUEUE_PREFIX}:detectors:last-run`;

/**
 * Runs the detectors when DETECTOR_INTERVAL_MS has passed since their last run by any worker
 * process: `SET key NX PX interval` lets exactly one caller per interval through (Redis decides,
 * not the processes' clocks), and the key expires by itself. Their cost (the deadline-risk detector
 * reads up to 1,000 todo tasks and their users' settings) is thereby off the due-job path, which
 * runs every SCAN_INTERVAL_MS. Nothing is missed between runs: each detector looks at a window of
 * state (blocks ended within a day, the next 24 h, deadlines within the horizon), not at events.
 * A run longer than the interval may overlap the next one; detectors are idempotent (each anomaly
 * is raised once through its trigger's dedupe key), so that costs time, never a duplicate.
 * With DETECTOR_INTERVAL_MS 0 they run after every scan, without Redis.
 */
export async function runDetectorsIfDue(
  ctx: DetectorCtx & Pick<AppContext, 'redis'>,
  now: Date,
  list: Detector[] = detectors,
): Promise<DetectorsResult | DetectorsSkipped> {
  const interval = ctx.config.DETECTOR_INTERVAL_MS;
  if (interval > 0) {
    let taken: string | null;
    try {
      taken = await ctx.redis.set(detectorsRunKey(ctx.config), String(now.getTime()), 'PX', interval, 'NX');
    } catch (err) {
      // The scan itself succeeded; the detectors try again after the next one.
      ctx.logger.warn({ err: (err as Error).message }, 'detectors skipped: could not take their interval key');
      return { skipped: 'coordination_failed' };
    }
    if (taken !== 'OK') return { skipped: 'interval' };
  }
  return runDetectors(ctx, now, list);
}
