/**
 * A user's schedule blocks. Overlaps are allowed (they are an anomaly to detect, not an input
 * error). Reporting a block unfinished (PATCH status, or the feedback route) creates an
 * `unfinished_feedback` trigger through createTrigger, which dedupes.
 */
import type { AppContext } from '../context';
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import { createTrigger } from '../triggers/create';
import { findUserTask } from './tasks';
import { forgetExternalId, type SyncCtx } from '../sync/forget';
import type { BlockCreateBody, BlockPatchBody, BlockView } from './schemas';
import { maxBlockMs } from './schemas';
import { isoOrNull as iso } from '../time/iso';

export function toBlockView(b: ScheduleBlockDoc & { createdAt?: Date; updatedAt?: Date }): BlockView {
  return {
    id: String(b._id),
    taskId: b.taskId ?? null,
    title: b.title,
    start: iso(b.start)!,
    end: iso(b.end)!,
    status: b.status,
    previewId: b.previewId ?? null,
    externalId: b.externalId ?? null,
    createdAt: iso(b.createdAt)!,
    updatedAt: iso(b.updatedAt)!,
  };
}

/** An input problem found after validation (it needs the database): the field and what is wrong. */
export type BlockInputError = { field: string; message: string };
export type BlockWrite =
  { ok: true; block: ScheduleBlockDoc; feedbackTrigger?: { id: string; status: string; created: boolean } } | ({ ok: false } & BlockInputError);

const isId = (id: string) => /^[0-9a-f]{24}$/.test(id);

export async function findUserBlock(ctx: Pick<AppContext, 'models'>, userId: string, id: string): Promise<ScheduleBlockDoc | null> {
  if (!isId(id)) return null;
  return ctx.models.scheduleBlocks.findOne({ _id: id, userId }).lean<ScheduleBlockDoc>();
}

export async function createBlock(ctx: AppContext, userId: string, body: BlockCreateBody): Promise<BlockWrite> {
  let title = body.title;
  if (body.taskId) {
    const task = await findUserTask(ctx, userId, body.taskId);
    if (!task) return { ok: false, field: 'body.taskId', message: 'no such task of yours' };
    title ??= task.title;
  }
  const created = await ctx.models.scheduleBlocks.create({ userId, taskId: body.taskId, title, start: body.start, end: body.end, status: body.status });
  return { ok: true, block: created.toObject() as ScheduleBlockDoc };
}

/**
 * Changes a block. A PATCH that moves it to unfinished reports it; `feedback` (the feedback route)
 * reports it whatever it was, so a report whose trigger failed can be sent again.
 */
export async function updateBlock(ctx: AppContext, userId: string, id: string, body: BlockPatchBody, feedback?: { note?: string }): Promise<BlockWrite | null> {
  const current = await findUserBlock(ctx, userId, id);
  if (!current) return null;
  if (body.taskId && !(await findUserTask(ctx, userId, body.taskId))) return { ok: false, field: 'body.taskId', message: 'no such task of yours' };
  const start = body.start ?? current.start;
  const end = body.end ?? current.end;
  if (end.getTime() <= start.getTime()) {
    return body.end
      ? { ok: false, field: 'body.end', message: 'must be after start' }
      : { ok: false, field: 'body.start', message: `must be before the block's end (${end.toISOString()})` };
  }
  if (end.getTime() - start.getTime() > maxBlockMs) return { ok: false, field: body.end ? 'body.end' : 'body.start', message: 'a block lasts at most 7 days' };

  const set: Record<string, unknown> = {};
  const unset: Record<string, ''> = {};
  for (const key of ['taskId', 'title', 'start', 'end', 'status'] as const) {
    const value = body[key];
    if (value === undefined) continue;
    if (value === null) unset[key] = '';
    else set[key] = value;
  }
  const update: Record<string, unknown> = {};
  if (Object.keys(set).length) update.$set = set;
  if (Object.keys(unset).length) update.$unset = unset;
  const block = Object.keys(update).length
    ? await ctx.models.scheduleBlocks.findOneAndUpdate({ _id: id, userId }, update, { returnDocument: 'after' }).lean<ScheduleBlockDoc>()
    : current;
  if (!block) return null;
  const report = feedback ?? (body.status === 'unfinished' && current.status !== 'unfinished' ? {} : undefined);
  const feedbackTrigger = report ? await reportUnfinished(ctx, block, report.note) : undefined;
  return { ok: true, block, feedbackTrigger };
}

/** Removes the block; a synced one's externalId is released, so the host product's next PUT of it creates it again. */
export async function deleteBlock(ctx: SyncCtx, userId: string, id: string): Promise<boolean> {
  if (!isId(id)) return false;
  const block = await ctx.models.scheduleBlocks.findOneAndDelete({ _id: id, userId }).lean<ScheduleBlockDoc>();
  if (!block) return false;
  if (block.externalId) await forgetExternalId(ctx, 'block', { _id: block._id, userId, externalId: block.externalId });
  return true;
}

/** Blocks overlapping [from, to), by start. Blocks last at most maxBlockMs, which bounds the index range. */
export async function listBlocks(ctx: Pick<AppContext, 'models'>, userId: string, from: Date, to: Date): Promise<ScheduleBlockDoc[]> {
  return ctx.models.scheduleBlocks
    .find({ userId, start: { $lt: to, $gt: new Date(from.getTime() - maxBlockMs - 1) }, end: { $gt: from } })
    .sort({ start: 1, _id: 1 })
    .limit(2000)
    .lean<ScheduleBlockDoc[]>();
}

/** Reports the block unfinished: an unfinished_feedback trigger (createTrigger dedupes). */
export async function reportUnfinished(ctx: AppContext, block: ScheduleBlockDoc, note?: string) {
  const { trigger, created } = await createTrigger(ctx, {
    userId: block.userId,
    type: 'unfinished_feedback',
    source: 'user_feedback',
    target: { type: 'schedule_block', id: String(block._id) },
    at: new Date(),
    detail: {
      blockId: String(block._id),
      taskId: block.taskId ?? null,
      title: block.title,
      start: block.start.toISOString(),
      end: block.end.toISOString(),
      ...(note ? { note } : {}),
    },
  });
  return { id: String(trigger._id), status: trigger.status, created };
}
