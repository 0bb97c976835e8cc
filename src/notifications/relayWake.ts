/**
 * When a worker relays records' end events (events.ts): woken by each delivery that ended in
 * this process, it runs at once if no run started in the last EVENT_RELAY_INTERVAL_MS, else when
 * that interval is over, so every end within it rides in one batch; an idle worker runs nothing
 * (no poll: the reconcile relays what a crash left). A run that saw more to relay runs again
 * (events.ts relayNext): after a full batch at once, else after the interval.
 */
import type { Logger } from '../logger';
import type { RelayRun } from './events';

/** How long from `now` until the next run: none before `intervalMs` after the last one started; `more` (a full batch) at once. */
export function relayDelay(s: { now: number; lastStartedAt?: number; intervalMs: number; more?: boolean }): number {
  if (s.more || s.lastStartedAt === undefined) return 0;
  return Math.max(0, s.lastStartedAt + s.intervalMs - s.now);
}

export class RecordEventRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private woken = false;
  private lastStartedAt: number | undefined;
  private stopped = false;

  constructor(
    private readonly o: {
      run: () => Promise<RelayRun>;
      intervalMs: number;
      logger: Pick<Logger, 'warn'>;
    },
  ) {}

  /** A record's end may be in its outbox: relay it soon. Cheap to call for every ended job. */
  wake(): void {
    if (this.stopped) return;
    this.woken = true;
    // A run waiting picks it up; a running one schedules the next when it ends.
    if (this.timer || this.running) return;
    this.schedule(false);
  }

  /** No more runs; waits for the one in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(more: boolean): void {
    const delay = relayDelay({ now: Date.now(), lastStartedAt: this.lastStartedAt, intervalMs: this.o.intervalMs, more });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
      });
    }, delay);
    // stop() clears it; until then it must not keep a process alive that is otherwise done.
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    this.woken = false;
    this.lastStartedAt = Date.now();
    const next = await this.o.run().then(
      (run) => run.next,
      (err: unknown) => {
        // Not again by itself (a store down would make it a poll): the next wake, or the reconcile.
        this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'relay of record events failed; the reconcile relays them');
        return 'none' as const;
      },
    );
    if (this.stopped) return;
    // Ends that landed while it ran may have been read before they were written: one more run.
    if (next !== 'none' || this.woken) this.schedule(next === 'now');
  }
}
