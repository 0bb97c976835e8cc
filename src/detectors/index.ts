/** The detectors run after each due-job scan (processors/scanner.ts); one failing does not stop the others. */
import { missedBlockDetector } from './missedBlock';
import { scheduleConflictDetector } from './scheduleConflict';
import { deadlineRiskDetector } from './deadlineRisk';
import type { Detector, DetectorCtx } from './types';

export const detectors: Detector[] = [missedBlockDetector, scheduleConflictDetector, deadlineRiskDetector];

/** Triggers created per detector, by name; a detector that threw is counted under `failed`. */
export interface DetectorsResult { fired: Record<string, number>; failed: string[] }

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
