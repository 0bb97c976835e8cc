/**
 * Deadlines at risk: a `todo` task with an estimate and a deadline in (now, now +
 * DEADLINE_RISK_HORIZON_MS] (default 7 days) whose remaining work does not fit in the time left
 * before its deadline → a `deadline_risk` anomaly (severity warning) naming the task, its deadline
 * (user's time zone) and the shortfall.
 *
 * The computation (deadlineShortfall; all intervals clipped to [now, deadline)):
 * - remaining = estimatedMinutes − the total length of this task's blocks marked `done` (whenever
 *   they were), at least 0, rounded up to a whole minute;
 * - available = the length of (W ∪ O) − B, rounded down to a whole minute, where W = the user's
 *   working hours (their time zone; defaults 08:00–22:00), O = this task's own `planned` blocks
 *   (time already set aside for it counts, even outside working hours) and B = the user's other
 *   `planned` blocks (other tasks' and blocks without a task). A minute counts once: where an own
 *   block overlaps another block, the other block has it. Done or unfinished blocks take no time;
 * - shortfall = remaining − available; the anomaly is raised when it is at least 1 minute.
 * Tasks without an estimate are skipped: there is nothing to compare.
 *
 * Cost: one query on the {status, deadline} index (todo tasks due within the horizon, soonest
 * first, at most maxTasksPerRun), one on the unique dedupeKey index for those already raised;
 * then, for the others (at most maxEvaluatedPerRun), one query for their users' planned blocks
 * ({userId, start} index), one for their done blocks ({userId, taskId, start} index) and one
 * settings read per user.
 *
 * Once per anomaly: target = task:<id>, `at` = the deadline, so the dedupe key is user |
 * deadline_risk | task:<id> | deadline. It fires again only when the deadline is moved (and the
 * task is still short of time then): the shortfall itself grows as time passes, so it cannot be
 * part of the key, and a larger estimate or a busier plan before the same deadline is the same
 * risk, already told.
 */
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import type { TaskDoc } from '../db/task';
import { maxBlockMs } from '../planning/schemas';
import { loadUserSettings } from '../settings/store';
import { createTrigger } from '../triggers/create';
import { triggerDedupeKey } from '../triggers/dedupe';
import { planningSettings } from '../workflow/context';
import { subtract, workingIntervals, type Interval, type WorkingHours } from '../workflow/freeSlots';
import { MINUTE } from '../time/zonedTime';
import { deadlineRiskText } from './messages';
import type { Detector, DetectorCtx } from './types';

export const DEADLINE_RISK_TYPE = 'deadline_risk';
/** Tasks read per run (soonest deadline first); more is logged. */
const maxTasksPerRun = 1000;
/** Tasks not raised yet that one run computes; the rest wait for the next run. */
const maxEvaluatedPerRun = 300;

type Task = Pick<TaskDoc, '_id' | 'userId' | 'title' | 'deadline' | 'estimatedMinutes'>;
type Block = Pick<ScheduleBlockDoc, '_id' | 'userId' | 'taskId' | 'start' | 'end'>;

export const deadlineRiskFilter = (now: Date, horizonMs: number) => ({
  status: 'todo' as const,
  deadline: { $gt: now, $lte: new Date(now.getTime() + horizonMs) },
  estimatedMinutes: { $gt: 0 },
});

export interface ShortfallInput {
  now: Date;
  deadline: Date;
  estimatedMinutes: number;
  timeZone: string;
  workingHours: WorkingHours;
  /** This task's blocks marked done (any time). */
  done: Interval[];
  /** This task's planned blocks. */
  own: Interval[];
  /** The user's other planned blocks. */
  others: Interval[];
}

export interface Shortfall {
  remainingMinutes: number;
  availableMinutes: number;
  shortfallMinutes: number;
}

const length = (i: Interval) => Math.max(0, i.end.getTime() - i.start.getTime());

/** Sorted, disjoint intervals covering the same time. */
function union(intervals: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const i of [...intervals].sort((a, b) => a.start.getTime() - b.start.getTime())) {
    const last = out[out.length - 1];
    if (last && i.start.getTime() <= last.end.getTime()) last.end = new Date(Math.max(last.end.getTime(), i.end.getTime()));
    else out.push({ start: i.start, end: i.end });
  }
  return out;
}

/** See the header: remaining − available, in whole minutes. Pure. */
export function deadlineShortfall(i: ShortfallInput): Shortfall {
  const doneMs = i.done.reduce((sum, b) => sum + length(b), 0);
  const remainingMinutes = Math.ceil(Math.max(0, i.estimatedMinutes * MINUTE - doneMs) / MINUTE);
  const clip = (b: Interval): Interval => ({
    start: new Date(Math.max(b.start.getTime(), i.now.getTime())),
    end: new Date(Math.min(b.end.getTime(), i.deadline.getTime())),
  });
  const own = i.own.map(clip).filter((b) => length(b) > 0);
  const usable = union([...workingIntervals(i.now, i.deadline, i.timeZone, i.workingHours), ...own]);
  const availableMs = subtract(usable, i.others).reduce((sum, b) => sum + length(b), 0);
  const availableMinutes = Math.floor(availableMs / MINUTE);
  return { remainingMinutes, availableMinutes, shortfallMinutes: Math.max(0, remainingMinutes - availableMinutes) };
}

const keyInput = (t: Task) => ({
  userId: t.userId,
  type: DEADLINE_RISK_TYPE,
  source: 'worker_due_job' as const,
  target: { type: 'task', id: String(t._id) },
  at: t.deadline!,
});

export const deadlineRiskDetector: Detector = {
  name: DEADLINE_RISK_TYPE,
  async detect(ctx: DetectorCtx, now: Date) {
    const tasks = await ctx.models.tasks
      .find(deadlineRiskFilter(now, ctx.config.DEADLINE_RISK_HORIZON_MS), { userId: 1, title: 1, deadline: 1, estimatedMinutes: 1 })
      .sort({ deadline: 1 })
      .limit(maxTasksPerRun)
      .lean<Task[]>();
    if (tasks.length === maxTasksPerRun) ctx.logger.warn({ tasks: tasks.length }, 'deadline risk: task limit reached, later deadlines not looked at');
    if (!tasks.length) return { fired: 0 };
    const keys = tasks.map((t) => triggerDedupeKey(keyInput(t)));
    const raised = new Set(
      (await ctx.models.triggers.find({ dedupeKey: { $in: keys } }, { dedupeKey: 1 }).lean<{ dedupeKey: string }[]>()).map((t) => t.dedupeKey),
    );
    const fresh = tasks.filter((_, i) => !raised.has(keys[i])).slice(0, maxEvaluatedPerRun);
    if (!fresh.length) return { fired: 0 };

    const userIds = [...new Set(fresh.map((t) => t.userId))];
    const lastDeadline = new Date(Math.max(...fresh.map((t) => t.deadline!.getTime())));
    const [planned, done, settings] = await Promise.all([
      ctx.models.scheduleBlocks
        .find(
          { userId: { $in: userIds }, start: { $lt: lastDeadline, $gt: new Date(now.getTime() - maxBlockMs - 1) }, end: { $gt: now }, status: 'planned' },
          { userId: 1, taskId: 1, start: 1, end: 1 },
        )
        .lean<Block[]>(),
      ctx.models.scheduleBlocks
        .find({ userId: { $in: userIds }, taskId: { $in: fresh.map((t) => String(t._id)) }, status: 'done' }, { userId: 1, taskId: 1, start: 1, end: 1 })
        .lean<Block[]>(),
      Promise.all(userIds.map(async (u) => [u, planningSettings(await loadUserSettings(ctx, u))] as const)).then((e) => new Map(e)),
    ]);

    const plannedOf = new Map<string, Block[]>();
    for (const b of planned) {
      const list = plannedOf.get(b.userId);
      if (list) list.push(b);
      else plannedOf.set(b.userId, [b]);
    }
    let fired = 0;
    for (const t of fresh) {
      const id = String(t._id);
      const deadline = t.deadline!;
      const { timeZone, workingHours, language } = settings.get(t.userId)!;
      const mine = (plannedOf.get(t.userId) ?? []).filter((b) => b.start < deadline);
      const s = deadlineShortfall({
        now,
        deadline,
        estimatedMinutes: t.estimatedMinutes!,
        timeZone,
        workingHours,
        done: done.filter((b) => b.taskId === id && b.userId === t.userId),
        own: mine.filter((b) => b.taskId === id),
        others: mine.filter((b) => b.taskId !== id),
      });
      if (s.shortfallMinutes < 1) continue;
      const text = deadlineRiskText({ language, timeZone, taskTitle: t.title, deadline, ...s });
      const { created } = await createTrigger(ctx, {
        ...keyInput(t),
        detail: { taskId: id, title: t.title, deadline: deadline.toISOString(), estimatedMinutes: t.estimatedMinutes!, ...s },
        anomaly: { severity: 'warning', title: text.title, detail: text.detail, occurredAt: now },
      });
      if (created) fired += 1;
    }
    if (fired) ctx.logger.info({ fired }, 'deadlines at risk raised');
    return { fired };
  },
};
