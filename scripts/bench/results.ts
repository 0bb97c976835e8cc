/** The shape of one bench run's results (index.ts fills it, report.ts renders it). */
import type { MachineInfo } from './common';
import type { DeliveryResult } from './delivery';
import type { FiringRun } from './firing';
import type { PriorityRun } from './priority';
import type { CpuSummary, ProbeSummary } from './profile';
import type { ScanResult } from './scan';
import type { AgendaRun } from './agenda';
import type { EventsRun } from './events';

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
  /** The heap-cap run, when a worker of the store peaked near the RSS limit */
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
  /** Events to one local endpoint, and a confirmed preview's added cost (events.ts) */
  events: EventsRun[];
  /** Per store: which sizes ran */
  plans: Record<string, string>;
}
