/**
 * Schedule conflicts: two `planned` blocks of one user that overlap, the overlap touching the coming
 * 24 h [now, now + 24 h) → a `schedule_conflict` anomaly (severity warning) naming both blocks and
 * their times in the user's time zone, suggesting to move one of them into a free slot.
 *
 * Which one to move: the one that starts later; when both start together, the shorter; then the
 * larger id. Where: the first slot of freeSlots (the user's working hours in the coming 24 h minus
 * their other planned blocks, the moved one left out) as long as the moved block; none → the
 * message says so.
 *
 * Cost: one query on the {status, end} index: planned blocks with end in (now, now + 24 h +
 * maxBlockMs] and start before now + 24 h (a block lasts at most maxBlockMs, so this is every
 * block touching the window), at most maxBlocksPerRun of them; one query on the unique dedupeKey
 * index for the conflicts already raised; then, for the new ones only (at most
 * maxConflictsPerRun, the rest wait for the next run), the user's settings and createTrigger.
 *
 * Once per anomaly: target = schedule_block:<idA>+<idB> (ids sorted), `at` = the overlap's start,
 * so the dedupe key is user | schedule_conflict | schedule_block:<idA>+<idB> | overlap start. The
 * same two blocks fire again only when the overlap starts at another time (one of them was moved,
 * or the later one resized from its start); a change that keeps the overlap's start (the earlier
 * block stretched or shortened, but still overlapping) is the same conflict, already told.
 */
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import { maxBlockMs } from '../planning/schemas';
import { loadUserSettings } from '../settings/store';
import { createTrigger, type CreateTriggerInput } from '../triggers/create';
import { triggerDedupeKey } from '../triggers/dedupe';
import { planningSettings, WINDOW_MS } from '../workflow/context';
import { freeSlots, type Interval } from '../workflow/freeSlots';
import { MINUTE } from '../time/zonedTime';
import { scheduleConflictText } from './messages';
import type { Detector, DetectorCtx } from './types';

export const SCHEDULE_CONFLICT_TYPE = 'schedule_conflict';
export const CONFLICT_WINDOW_MS = WINDOW_MS;
/** Blocks read per run (soonest end first); more is logged. */
const maxBlocksPerRun = 5000;
/** Conflicts of one user considered per run (earliest overlap first): a pile of overlapping blocks is not a flood of messages. */
const maxPairsPerUser = 20;
/** Dedupe keys checked per run. */
const maxCandidatesPerRun = 2000;
/** New conflicts raised per run; the rest are raised by the next runs. */
const maxConflictsPerRun = 200;

type Block = Pick<ScheduleBlockDoc, '_id' | 'userId' | 'title' | 'start' | 'end'>;

export interface Conflict {
  userId: string;
  /** The earlier block (the longer one when both start together); `second` is the one to move. */
  first: Block;
  second: Block;
  overlap: Interval;
}

export const conflictBlocksFilter = (now: Date) => {
  const to = now.getTime() + CONFLICT_WINDOW_MS;
  return { status: 'planned' as const, end: { $gt: now, $lte: new Date(to + maxBlockMs) }, start: { $lt: new Date(to) } };
};

const length = (b: Interval) => b.end.getTime() - b.start.getTime();
/** Earlier start first; together: longer first; then by id, so the order (and what to move) is stable. */
const byStartThenLonger = (a: Block, b: Block) => a.start.getTime() - b.start.getTime() || length(b) - length(a) || (String(a._id) < String(b._id) ? -1 : 1);

/** The overlapping pairs whose overlap touches [now, now + 24 h), per user earliest overlap first (at most maxPairsPerUser). Pure. */
export function findConflicts(blocks: Block[], now: Date): Conflict[] {
  const to = now.getTime() + CONFLICT_WINDOW_MS;
  const byUser = new Map<string, Block[]>();
  for (const b of blocks) {
    const list = byUser.get(b.userId);
    if (list) list.push(b);
    else byUser.set(b.userId, [b]);
  }
  const out: Conflict[] = [];
  for (const [userId, list] of byUser) {
    list.sort(byStartThenLonger);
    const found: Conflict[] = [];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length && list[j].start.getTime() < list[i].end.getTime(); j++) {
        const overlap = { start: list[j].start, end: new Date(Math.min(list[i].end.getTime(), list[j].end.getTime())) };
        if (overlap.end.getTime() <= Math.max(overlap.start.getTime(), now.getTime()) || overlap.start.getTime() >= to) continue;
        found.push({ userId, first: list[i], second: list[j], overlap });
      }
    }
    found.sort((a, b) => a.overlap.start.getTime() - b.overlap.start.getTime());
    out.push(...found.slice(0, maxPairsPerUser));
  }
  return out.sort((a, b) => a.overlap.start.getTime() - b.overlap.start.getTime());
}

const targetOf = (c: Conflict) => ({ type: 'schedule_block', id: [String(c.first._id), String(c.second._id)].sort().join('+') });
const keyInput = (c: Conflict) => ({
  userId: c.userId,
  type: SCHEDULE_CONFLICT_TYPE,
  source: 'worker_due_job' as const,
  target: targetOf(c),
  at: c.overlap.start,
});

export const scheduleConflictDetector: Detector = {
  name: SCHEDULE_CONFLICT_TYPE,
  async detect(ctx: DetectorCtx, now: Date) {
    const blocks = await ctx.models.scheduleBlocks
      .find(conflictBlocksFilter(now), { userId: 1, title: 1, start: 1, end: 1 })
      .sort({ end: 1 })
      .limit(maxBlocksPerRun)
      .lean<Block[]>();
    if (blocks.length === maxBlocksPerRun) ctx.logger.warn({ blocks: blocks.length }, 'schedule conflicts: block limit reached, later blocks not looked at');
    const conflicts = findConflicts(blocks, now).slice(0, maxCandidatesPerRun);
    if (!conflicts.length) return { fired: 0 };

    const keys = conflicts.map((c) => triggerDedupeKey(keyInput(c)));
    const raised = new Set(
      (await ctx.models.triggers.find({ dedupeKey: { $in: keys } }, { dedupeKey: 1 }).lean<{ dedupeKey: string }[]>()).map((t) => t.dedupeKey),
    );
    const fresh = conflicts.filter((_, i) => !raised.has(keys[i])).slice(0, maxConflictsPerRun);

    const to = new Date(now.getTime() + CONFLICT_WINDOW_MS);
    const settings = new Map<string, ReturnType<typeof planningSettings>>();
    const blocksOf = new Map<string, Block[]>();
    for (const b of blocks) {
      const list = blocksOf.get(b.userId);
      if (list) list.push(b);
      else blocksOf.set(b.userId, [b]);
    }
    let fired = 0;
    for (const c of fresh) {
      if (!settings.has(c.userId)) settings.set(c.userId, planningSettings(await loadUserSettings(ctx, c.userId)));
      const { timeZone, workingHours, language } = settings.get(c.userId)!;
      const moved = c.second;
      const busy = blocksOf.get(c.userId)!.filter((b) => String(b._id) !== String(moved._id));
      const slot = freeSlots({ from: now, to, timeZone, workingHours, busy, minMinutes: Math.ceil(length(moved) / MINUTE) })[0];
      const suggestion = slot ? { start: slot.start, end: new Date(slot.start.getTime() + length(moved)) } : null;
      const text = scheduleConflictText({ language, timeZone, first: c.first, second: c.second, overlap: c.overlap, move: 'second', suggestion });
      const view = (b: Block) => ({ id: String(b._id), title: b.title, start: b.start.toISOString(), end: b.end.toISOString() });
      const input: CreateTriggerInput = {
        ...keyInput(c),
        detail: {
          blocks: [view(c.first), view(c.second)],
          overlapStart: c.overlap.start.toISOString(),
          overlapEnd: c.overlap.end.toISOString(),
          moveBlockId: String(moved._id),
          suggestion: suggestion && { start: suggestion.start.toISOString(), end: suggestion.end.toISOString() },
        },
        anomaly: { severity: 'warning', title: text.title, detail: text.detail, occurredAt: c.overlap.start },
      };
      if ((await createTrigger(ctx, input)).created) fired += 1;
    }
    if (fired) ctx.logger.info({ fired }, 'schedule conflicts raised');
    return { fired };
  },
};
