/**
 * A detector looks for one kind of anomaly in what is due or changed (index-backed queries, never
 * a scan of all users) and raises each anomaly once through createTrigger, whose dedupe key
 * (user, type, target and the anomaly's own time) makes a second run a no-op. Later detectors
 * (schedule conflict, deadline risk) are one file each, added to the list in detectors/index.ts.
 */
import type { AppContext } from '../context';

export type DetectorCtx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger'>;

export interface Detector {
  name: string;
  /** `fired`: triggers this run created (an anomaly already raised is not counted). */
  detect(ctx: DetectorCtx, now: Date): Promise<{ fired: number }>;
}
