/**
 * The BullMQ side of a delivery step, shared by the notifications and events workers: the domain
 * says done, delay (no attempt spent), retry after a delay it chose, or dead; this turns that into
 * a return value, a delayed move, a retry with that delay, or an UnrecoverableError.
 */
import type { Job } from 'bullmq';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { retryDelayMs } from '../src/notifications/backoff';

export type DeliveryStepLike =
  | { kind: 'done'; status: string }
  | { kind: 'delay'; until: Date; reason: string }
  | { kind: 'retry'; delayMs: number; code: string; detail: string }
  | { kind: 'dead'; code: string; detail: string };

/** A temporary failure whose delay the domain already chose (and wrote on its ledger). */
export class RetryLater extends Error {
  constructor(
    readonly delayMs: number,
    message: string,
  ) {
    super(message);
    this.name = 'RetryLater';
  }
}

export async function settleStep(job: Job, token: string | undefined, step: DeliveryStepLike): Promise<{ status: string }> {
  switch (step.kind) {
    case 'done':
      return { status: step.status };
    case 'delay':
      await job.moveToDelayed(step.until.getTime(), token);
      throw new DelayedError(step.reason);
    case 'retry':
      throw new RetryLater(step.delayMs, `${step.code}: ${step.detail}`);
    case 'dead':
      throw new UnrecoverableError(`${step.code}: ${step.detail}`);
  }
}

/** The delay RetryLater carries, else exponential from `first` capped at `max` for jobs of `type`. */
export function stepBackoff(type: string, first: number, max: number) {
  return (attemptsMade: number, jobType: string | undefined, err: Error | undefined): number => {
    if (err instanceof RetryLater) return err.delayMs;
    if (jobType === type) return retryDelayMs(attemptsMade, first, max);
    return 0;
  };
}
