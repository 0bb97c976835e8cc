/** dueflow's BullMQ Job Schedulers (worker mode). Upserting with the same id is safe on every boot. */
import type { AppContext } from '../src/context';
import { queueNames } from './names';

export const dueJobScannerId = 'due-job-scanner';
export const scanJobName = 'scan';

export const reconcilerId = 'reconciler';
export const reconcileJobName = 'reconcile';
export const purgeId = 'purge-expired';
export const purgeJobName = 'purge';

/** How long after the scanner's phase the reconcile's falls: half way between two scans. */
export const reconcilePhaseMs = (config: Pick<AppContext['config'], 'SCAN_INTERVAL_MS' | 'RECONCILE_INTERVAL_MS'>) =>
  Math.round(Math.min(config.SCAN_INTERVAL_MS, config.RECONCILE_INTERVAL_MS) / 2);

export async function upsertJobSchedulers(ctx: Pick<AppContext, 'queues' | 'config'>): Promise<void> {
  const keepFew = { removeOnComplete: { count: 50 }, removeOnFail: { count: 200 } };
  await ctx.queues[queueNames.maintenance].upsertJobScheduler(
    reconcilerId,
    // BullMQ takes an `every` scheduler's phase from when it is created (later upserts keep it): started with the
    // scanner's, the reconcile would run with a scan each time (30 s is six 5 s), and each slows the other on a busy store.
    { every: ctx.config.RECONCILE_INTERVAL_MS, startDate: Date.now() + reconcilePhaseMs(ctx.config) },
    { name: reconcileJobName, data: { v: 1 }, opts: keepFew },
  );
  await ctx.queues[queueNames.maintenance].upsertJobScheduler(purgeId, { every: 3600_000 }, { name: purgeJobName, data: { v: 1 }, opts: keepFew });
  await ctx.queues[queueNames.scanner].upsertJobScheduler(
    dueJobScannerId,
    { every: ctx.config.SCAN_INTERVAL_MS },
    // A scan's result is worth little after the next one: keep a few for Bull Board.
    { name: scanJobName, data: { v: 1 }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } } },
  );
}

/** Schedulers an earlier version upserted and this one does not run: the records' events relay (now woken by deliveries, notifications/relayWake.ts). */
const retiredSchedulers = ['relay-record-events'];

export async function removeRetiredJobSchedulers(ctx: Pick<AppContext, 'queues'>): Promise<void> {
  await Promise.all(retiredSchedulers.map((id) => ctx.queues[queueNames.maintenance].removeJobScheduler(id)));
}
