/**
 * Reads what the workflow plans with: the task (through the trigger's target), the user's time
 * zone, language and working hours, their blocks in the rolling 24-hour window from now, and the
 * free slots. Reads only: the dry run uses it too. A caller that read the task and the blocks at
 * the same `now` already (a fired due job) hands them over and they are not read again.
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import { loadUserSettings, type UserSettings } from '../settings/store';
import type { PlanningBlock, PlanningContext, TriggerType } from './candidates';
import { DEFAULT_ESTIMATE_MINUTES, isMakeupTrigger } from './candidates';
import { defaultWorkingHours, freeSlots, type WorkingHours } from './freeSlots';
import { languages, type Language } from './message';
import { DAY, MINUTE } from '../time/zonedTime';
import type { TaskDoc } from '../db/task';
import type { ScheduleBlockDoc } from '../db/scheduleBlock';

type Ctx = Pick<AppContext, 'models'>;

export const WINDOW_MS = DAY;
export const blockTargetTypes = ['schedule_block', 'block'];

export interface PlanningInput {
  userId: string;
  triggerType: TriggerType;
  target: { type: string; id: string };
  now: Date;
  detail?: Record<string, unknown>;
  /** The target task and the window's blocks, read at `now` by the caller. */
  loaded?: PlanningReads;
}

/** What planning reads of a task: its fields below (a projection, for those who read it for planning). */
export const planningTaskFields = { userId: 1, title: 1, priority: 1, status: 1, deadline: 1, estimatedMinutes: 1, urgencyThresholdAt: 1 } as const;
export type PlanningTask = Pick<TaskDoc, '_id' | 'userId' | 'title' | 'priority' | 'status' | 'deadline' | 'estimatedMinutes' | 'urgencyThresholdAt'>;
export type PlanningBlockDoc = Pick<ScheduleBlockDoc, '_id' | 'title' | 'taskId' | 'start' | 'end' | 'status'>;
export interface PlanningReads {
  now: Date;
  task: PlanningTask;
  blocks: PlanningBlockDoc[];
}

/** The user's blocks that overlap the window [now, now + WINDOW_MS), by start: every one takes its time. */
export function readPlanningBlocks(ctx: Ctx, userId: string, now: Date): Promise<PlanningBlockDoc[]> {
  return ctx.models.scheduleBlocks
    .find({ userId, start: { $lt: new Date(now.getTime() + WINDOW_MS) }, end: { $gt: now } }, { title: 1, taskId: 1, start: 1, end: 1, status: 1 })
    .sort({ start: 1 })
    .lean<PlanningBlockDoc[]>();
}

/** A context to plan with, or why there is nothing to do (the trigger is closed with it). */
export type PlanningResult = { context: PlanningContext; closeReason: null } | { context: PlanningContext | null; closeReason: string };

/** Working hours and language are being added to UserSettings; read them so either shape works. */
export function planningSettings(s: UserSettings): { timeZone: string; workingHours: WorkingHours; language: Language } {
  const extra = s as UserSettings & { workingHours?: WorkingHours | null; language?: string };
  const language = (languages as readonly string[]).includes(extra.language ?? '') ? (extra.language as Language) : 'zh-CN';
  return { timeZone: s.timeZone, workingHours: extra.workingHours ?? defaultWorkingHours, language };
}

const toBlock = (b: { _id: unknown; title: string; taskId?: string | null; start: Date; end: Date; status: string }): PlanningBlock => ({
  id: String(b._id),
  title: b.title,
  taskId: b.taskId ?? null,
  start: b.start,
  end: b.end,
  status: b.status,
});

export async function loadPlanningContext(ctx: Ctx, input: PlanningInput): Promise<PlanningResult> {
  const { models } = ctx;
  const { userId, now } = input;
  let taskId: string | undefined;
  let block: PlanningBlock | null = null;
  if (input.target.type === 'task') taskId = input.target.id;
  else if (blockTargetTypes.includes(input.target.type)) {
    const doc = isValidObjectId(input.target.id) ? await models.scheduleBlocks.findOne({ _id: input.target.id, userId }).lean() : null;
    if (!doc) return { context: null, closeReason: 'block_not_found' };
    block = toBlock(doc);
    taskId = doc.taskId ?? (typeof input.detail?.taskId === 'string' ? input.detail.taskId : undefined);
    if (!taskId) return { context: null, closeReason: 'block_has_no_task' };
  } else return { context: null, closeReason: 'unsupported_target' };

  // Handed over only when read for this very task, user and instant.
  const loaded =
    input.loaded && input.loaded.now.getTime() === now.getTime() && String(input.loaded.task._id) === taskId && input.loaded.task.userId === userId;
  const task = loaded
    ? input.loaded!.task
    : isValidObjectId(taskId)
      ? await models.tasks.findOne({ _id: taskId, userId }, planningTaskFields).lean<PlanningTask>()
      : null;
  if (!task) return { context: null, closeReason: 'task_not_found' };

  const { timeZone, workingHours, language } = planningSettings(await loadUserSettings(ctx, userId));
  const window = { start: now, end: new Date(now.getTime() + WINDOW_MS) };
  const blocks = (loaded ? input.loaded!.blocks : await readPlanningBlocks(ctx, userId, now)).map(toBlock);

  const remaining = Number(input.detail?.remainingMinutes);
  const neededMinutes = Math.max(
    5,
    Math.round(
      isMakeupTrigger(input.triggerType) && Number.isFinite(remaining) && remaining > 0
        ? remaining
        : isMakeupTrigger(input.triggerType) && block
          ? (block.end.getTime() - block.start.getTime()) / MINUTE
          : (task.estimatedMinutes ?? DEFAULT_ESTIMATE_MINUTES),
    ),
  );

  const context: PlanningContext = {
    userId,
    triggerType: input.triggerType,
    now,
    window,
    timeZone,
    language,
    workingHours,
    task: {
      id: String(task._id),
      title: task.title,
      priority: task.priority,
      status: task.status,
      deadline: task.deadline ?? null,
      estimatedMinutes: task.estimatedMinutes ?? null,
    },
    block,
    neededMinutes,
    blocks,
    // Every block of the user takes its time, whatever its status: an overlap is never suggested.
    freeSlots: freeSlots({ from: window.start, to: window.end, timeZone, workingHours, busy: blocks }),
  };

  if (task.status === 'done') return { context, closeReason: 'task_completed' };
  const later = blocks.filter((b) => b.taskId === context.task.id && b.status === 'planned' && b.id !== block?.id);
  if (input.triggerType === 'important_urgent_task' && later.length > 0) return { context, closeReason: 'task_already_scheduled' };
  if (input.triggerType === 'missed_block' && block) {
    // Done (or reported) since it was detected, or moved: a moved block is a new anomaly with its own trigger.
    if (block.status !== 'planned') return { context, closeReason: 'block_not_missed' };
    const detectedEnd = typeof input.detail?.end === 'string' ? Date.parse(input.detail.end) : NaN;
    if (Number.isFinite(detectedEnd) && detectedEnd !== block.end.getTime()) return { context, closeReason: 'block_moved' };
  }
  if (isMakeupTrigger(input.triggerType) && block && later.some((b) => b.start.getTime() >= block!.end.getTime()))
    return { context, closeReason: 'makeup_already_scheduled' };
  return { context, closeReason: null };
}
