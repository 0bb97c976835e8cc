/** The shape of one bench run's results (index.ts fills it, report.ts renders it). */
import type { MachineInfo } from './common';
import type { DeliveryResult } from './delivery';
import type { FiringRun } from './firing';
import type { PriorityRun } from './priority';
import type { CpuSummary, ProbeSummary } from './profile';
import type { ScanResult } from './scan';
import type { AgendaRun } from './agenda';

export interface ProfileRun {
  store: string;
  what: string;
  n: number;
  perSecond?: number;
  cpu?: CpuSummary;
  probe?: ProbeSummary;
  error?: string;
}

export interface BenchResults {
  command: string;
  quick: boolean;
  startedAt: string;
  durationS?: number;
  machine: MachineInfo;
  settings: Record<string, string | number>;
  stores: string[];
  delivery: DeliveryResult[];
  firing: FiringRun[];
  firingSkipped: Array<{ store: string; n: number; reason: string }>;
  scan: ScanResult[];
  agenda: AgendaRun[];
  profiles: ProfileRun[];
  /** Priority on the app channel (priority.ts) */
  priority: PriorityRun[];
  memory: Array<{
    store: string;
    n: number;
    setting: string;
    peakBefore?: number;
    peakAfter?: number;
    rateBefore?: number;
    rateAfter?: number;
    error?: string;
  }>;
  whatIf: Array<{
    store: string;
    settings: string;
    n: number;
    deliveryBefore?: number;
    deliveryAfter?: number;
    firingBefore?: number;
    firingAfter?: number;
    p99Before?: number;
    p99After?: number;
  }>;
  /** Per store: which sizes ran */
  plans: Record<string, string>;
}
