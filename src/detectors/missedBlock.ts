/**
 * Missed blocks: a `planned` block whose end passed more than the user's grace ago (their
 * `missedBlockGraceMinutes` setting, else MISSED_BLOCK_GRACE_MS, default 15 min) and that was not marked done (nor reported unfinished, which has its own trigger) →
 * a `missed_block` trigger. The workflow treats it like unfinished feedback: a make-up candidate
 * and a message naming the block and its time that asks whether to reschedule.
 *
 * Cost: one query on the {status, end} index over planned blocks that ended in
 * [now − longest grace − LOOKBACK_MS, now − shortest grace] (LOOKBACK_MS = 24 h: a block missed
 * longer ago than that, e.g. while the workers were down for a day, is not raised any more), one
 * query for those users' settings, each block then judged by its own user's grace, then one query
 * on the unique dedupeKey index for the triggers already raised; createTrigger only for the new ones.
 * Blocks without a task are skipped: there is nothing to plan a make-up for.
 *
 * Once per anomaly: the dedupe key is user | missed_block | schedule_block:<id> | the block's end
 * (source worker_due_job keys the window by `at` exactly), so a block fires once per end and again
 * only when it is moved (a new end) and missed again.
 */
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import { createTrigger } from '../triggers/create';
import { triggerDedupeKey } from '../triggers/dedupe';
import type { Detector, DetectorCtx } from './types';
import { MAX_MISSED_BLOCK_GRACE_MINUTES } from '../settings/schemas';

export const MISSED_BLOCK_TYPE = 'missed_block';
export const LOOKBACK_MS = 24 * 3600_000;
/** Blocks looked at per run (oldest end first); the rest wait for the next run. */
const maxBlocksPerRun = 1000;

/** Planned blocks that ended in [now − maxGrace − LOOKBACK_MS, now − minGrace]. */
export const missedBlockFilter = (now: Date, minGraceMs: number, maxGraceMs = minGraceMs) => ({
  status: 'planned' as const,
  end: { $lte: new Date(now.getTime() - minGraceMs), $gte: new Date(now.getTime() - maxGraceMs - LOOKBACK_MS) },
});

/** The grace of each user among `userIds`: their setting, else the service default. */
async function gracesOf(ctx: DetectorCtx, userIds: string[]): Promise<Map<string, number>> {
  const docs = await ctx.models.userSettings
    .find({ userId: { $in: userIds }, missedBlockGraceMinutes: { $exists: true } }, { userId: 1, missedBlockGraceMinutes: 1 })
    .lean<{ userId: string; missedBlockGraceMinutes?: number | null }[]>();
  const graces = new Map(userIds.map((u) => [u, ctx.config.MISSED_BLOCK_GRACE_MS]));
  for (const d of docs) if (typeof d.missedBlockGraceMinutes === 'number') graces.set(d.userId, d.missedBlockGraceMinutes * 60_000);
  return graces;
}

const inputOf = (b: ScheduleBlockDoc) => ({
  userId: b.userId,
  type: MISSED_BLOCK_TYPE,
  source: 'worker_due_job' as const,
  target: { type: 'schedule_block', id: String(b._id) },
  at: b.end,
});

export const missedBlockDetector: Detector = {
  name: 'missed_block',
  async detect(ctx: DetectorCtx, now: Date) {
    // Users may choose any grace from 0 to a day, so the query spans all of them; each block is judged by its user's.
    const candidates = await ctx.models.scheduleBlocks
      .find(missedBlockFilter(now, 0, MAX_MISSED_BLOCK_GRACE_MINUTES * 60_000))
      .sort({ end: 1 })
      .limit(maxBlocksPerRun)
      .lean<ScheduleBlockDoc[]>();
    const graces = await gracesOf(ctx, [...new Set(candidates.map((b) => b.userId))]);
    const withTask = candidates.filter((b) => {
      const grace = graces.get(b.userId) ?? ctx.config.MISSED_BLOCK_GRACE_MS;
      return b.taskId && b.end.getTime() <= now.getTime() - grace && b.end.getTime() >= now.getTime() - grace - LOOKBACK_MS;
    });
    if (!withTask.length) return { fired: 0 };
    const keys = withTask.map((b) => triggerDedupeKey(inputOf(b)));
    const raised = new Set(
      (await ctx.models.triggers.find({ dedupeKey: { $in: keys } }, { dedupeKey: 1 }).lean<{ dedupeKey: string }[]>()).map((t) => t.dedupeKey),
    );
    let fired = 0;
    for (const [i, b] of withTask.entries()) {
      if (raised.has(keys[i])) continue;
      const { created } = await createTrigger(ctx, {
        ...inputOf(b),
        detail: {
          blockId: String(b._id),
          taskId: b.taskId ?? null,
          title: b.title,
          start: b.start.toISOString(),
          end: b.end.toISOString(),
          graceMs: graces.get(b.userId),
        },
      });
      if (created) fired += 1;
    }
    if (fired) ctx.logger.info({ fired }, 'missed blocks raised');
    return { fired };
  },
};
