/**
 * Measurement 3, the scale of the scan: S pending due jobs not yet due plus D due ones; one
 * scanner pass (scanDueJobs, as the scanner job runs it) and the database work it does: the
 * claim query's time and explain plan (index used, documents examined), the cost of one batch's
 * guarded claim (its update and read back), and the MongoDB commands of the pass. Sizes grow in place (10k → 100k → 1M).
 *
 * On FerretDB v1 every query but a lone `_id` equality is a full scan, so a pass costs
 * (finds + 2 per batch) × S: where that projects past the budget the pass is not run and the
 * projection from the measured query and claim times is shown instead, labelled as such.
 */
import { Types } from 'mongoose';
import type { BenchEnv, Store } from './common';
import { clearSpace, closeContext, log, median, producerContext, round, runSpace } from './common';
import { installProbe, probeReport, resetProbe } from './probe';
import { firstScanFilter, scanDueJobs } from '../../src/scheduling/scanner';
import { claimDueJobs } from '../../src/scheduling/transitions';

export interface ScanPoint {
  stored: number;
  due: number;
  /** The claim query (find due, sort triggerAt, limit SCAN_BATCH_SIZE), median of 3 (1 from 300k), ms */
  queryMs: number;
  /** One batch's guarded claim (claimDueJobs: its updateMany and read back), median of 5 (2 from 300k), ms */
  claimMs: number;
  plan: { index: string; docsExamined?: number; keysExamined?: number; returned?: number; detail: string };
  /** One whole scanner pass, s (undefined when projected) */
  passS?: number;
  claimed?: number;
  /** MongoDB commands in the pass, by command */
  passCommands?: Record<string, number>;
  /** (finds × queryMs + batches × claimMs) when the pass was not run */
  projectedPassS?: number;
}

export interface ScanResult {
  store: string;
  batchSize: number;
  points: ScanPoint[];
  error?: string;
}

function findIndexName(node: unknown): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const o = node as Record<string, unknown>;
  if (typeof o.indexName === 'string') return o.indexName;
  for (const v of Object.values(o)) {
    const hit = findIndexName(v);
    if (hit) return hit;
  }
  return undefined;
}

function describePlan(explain: any, stored: number): ScanPoint['plan'] {
  if (explain?.executionStats) {
    // MongoDB
    const index = findIndexName(explain.queryPlanner?.winningPlan) ?? 'none (COLLSCAN)';
    return {
      index,
      docsExamined: explain.executionStats.totalDocsExamined,
      keysExamined: explain.executionStats.totalKeysExamined,
      returned: explain.executionStats.nReturned,
      detail: `winningPlan ${JSON.stringify(explain.queryPlanner?.winningPlan).slice(0, 300)}`,
    };
  }
  // FerretDB: the backend's own plan (SQLite EXPLAIN QUERY PLAN, or PostgreSQL EXPLAIN), and what it pushed down.
  const plan = explain?.queryPlanner?.Plan;
  const text = Array.isArray(plan)
    ? plan.join('; ')
    : plan
      ? `${plan['Node Type'] ?? ''} ${plan.Plans?.map((p: any) => `${p['Node Type']} on ${p['Relation Name'] ?? ''} filter ${p.Filter ?? ''}`).join('; ') ?? ''} ${plan['Relation Name'] ? `on ${plan['Relation Name']} filter ${plan.Filter ?? ''}` : ''}`.trim()
      : '?';
  const full = /SCAN|Seq Scan/.test(text) && !/USING INDEX|Index Scan/.test(text);
  return {
    index: full ? 'none (full table scan)' : text,
    docsExamined: full ? stored : undefined,
    detail: `${text}; filterPushdown ${explain?.filterPushdown}, sortPushdown ${explain?.sortPushdown}, limitPushdown ${explain?.limitPushdown}`,
  };
}

export async function benchScan(bench: BenchEnv, store: Store, sizes: number[], due: number, budgetS: number): Promise<ScanResult> {
  const space = runSpace(bench, store, 'scan');
  const result: ScanResult = { store: store.label, batchSize: space.config.SCAN_BATCH_SIZE, points: [] };
  await clearSpace(bench, store, space);
  installProbe();
  const ctx = await producerContext(space);
  const DueJobs = ctx.models.dueJobs;
  const coll = DueJobs.collection;
  try {
    const base = Date.now();
    // The due ones: triggered a minute ago.
    const dueIds: Types.ObjectId[] = [];
    const dueDocs = Array.from({ length: due }, (_, i) => {
      const _id = new Types.ObjectId();
      dueIds.push(_id);
      return {
        _id,
        userId: `bench-user-${i % 1000}`,
        kind: 'task_urgency',
        key: `task:due-${i}`,
        taskId: `due-${i}`,
        triggerAt: new Date(base - 60_000),
        thresholdAt: new Date(base - 60_000),
        status: 'pending',
        attempts: 0,
        createdAt: new Date(),
        updatedAt: new Date(),
        __v: 0,
      };
    });
    await coll.insertMany(dueDocs);
    let stored = 0;
    const notDueSample: Types.ObjectId[] = [];
    for (const size of sizes) {
      log(`scan [${store.label}]: seeding to ${size} pending jobs not yet due (+${due} due)`);
      const t0 = Date.now();
      while (stored < size) {
        const k = Math.min(10_000, size - stored);
        const docs = Array.from({ length: k }, (_, j) => {
          const i = stored + j;
          const _id = new Types.ObjectId();
          if (notDueSample.length < 5 && j === 0) notDueSample.push(_id);
          const at = new Date(base + 86_400_000 + i * 10);
          return {
            _id,
            userId: `bench-user-${i % 1000}`,
            kind: 'task_urgency',
            key: `task:later-${i}`,
            taskId: `later-${i}`,
            triggerAt: at,
            thresholdAt: at,
            status: 'pending',
            attempts: 0,
            createdAt: new Date(),
            updatedAt: new Date(),
            __v: 0,
          };
        });
        await coll.insertMany(docs, { ordered: false });
        stored += k;
      }
      log(`scan [${store.label}]: seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; measuring`);

      const now = new Date();
      const queryTimes: number[] = [];
      const reps = size >= 300_000 ? 1 : 3; // a full scan of a million documents takes long enough once
      for (let r = 0; r < reps; r++) {
        const q0 = performance.now();
        await DueJobs.find(firstScanFilter(now, now)).sort({ triggerAt: 1 }).limit(result.batchSize).lean();
        queryTimes.push(performance.now() - q0);
      }
      const explain = await DueJobs.find(firstScanFilter(now, now)).sort({ triggerAt: 1 }).limit(result.batchSize).explain('executionStats');
      const claimTimes: number[] = [];
      for (let r = 0; r < (size >= 300_000 ? 2 : 5); r++) {
        const c0 = performance.now();
        // A batch's claim over jobs not yet due (its horizon long past): no change, the same work.
        await claimDueJobs(DueJobs, { ids: notDueSample, now, until: new Date(0), leaseMs: 60_000, fields: [] });
        claimTimes.push(performance.now() - c0);
      }
      const point: ScanPoint = {
        stored: size,
        due,
        queryMs: round(median(queryTimes), 1),
        claimMs: round(median(claimTimes), 1),
        plan: describePlan(Array.isArray(explain) ? explain[0] : explain, size + due),
      };
      const finds = Math.floor(due / result.batchSize) + 1; // one per batch (the first finds expired claims too), + the empty last one
      const projected = (finds * point.queryMs + Math.ceil(due / result.batchSize) * point.claimMs) / 1000;
      if (projected > budgetS) {
        point.projectedPassS = round(projected, 1);
        log(
          `scan [${store.label}]: ${size}: query ${point.queryMs} ms, claim ${point.claimMs} ms; pass projected ${point.projectedPassS} s > budget ${budgetS} s, not run`,
        );
      } else {
        resetProbe();
        const p0 = performance.now();
        const scanned = await scanDueJobs(ctx, new Date());
        point.passS = round((performance.now() - p0) / 1000, 2);
        point.claimed = scanned.claimed;
        point.passCommands = Object.fromEntries(Object.entries(probeReport().mongo).map(([k, v]) => [k, v.n]));
        log(`scan [${store.label}]: ${size}: query ${point.queryMs} ms, claim ${point.claimMs} ms; pass ${point.passS} s claimed ${point.claimed}`);
        // Back to pending for the next size; the queued due-job jobs go.
        if (size !== sizes[sizes.length - 1])
          await coll.updateMany({ _id: { $in: dueIds } }, { $set: { status: 'pending' }, $unset: { claimedAt: '', leaseUntil: '' } });
        await ctx.queues['active-schedule-triggered'].obliterate({ force: true });
      }
      result.points.push(point);
    }
    return result;
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
    log(`scan [${store.label}]: ${result.error}`);
    return result;
  } finally {
    await closeContext(ctx);
    await clearSpace(bench, store, space);
  }
}
