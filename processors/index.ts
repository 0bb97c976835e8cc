/** Starts every BullMQ worker of worker mode; each processor file is a thin adapter over the domain. */
import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context';

export async function startWorkers(_ctx: AppContext): Promise<Worker[]> {
  return [];
}
