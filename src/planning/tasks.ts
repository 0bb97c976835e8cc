/**
 * A user's tasks. Every write also brings the task's due job in line (created, moved or canceled)
 * before the request answers, under the due job's lock (hence a SyncCtx: the store and Redis).
 * A task of another user does not exist (null, never "forbidden").
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { TaskDoc } from '../db/task';
import { syncDueJobForTask } from '../scheduling/dueJobs';
import { forgetExternalId, type SyncCtx } from '../sync/forget';
import type { TaskCreateBody, TaskPatchBody, TaskView } from './schemas';
import { isoOrNull as iso } from '../time/iso';

type Ctx = Pick<AppContext, 'models'>;

export function toTaskView(t: TaskDoc & { createdAt?: Date; updatedAt?: Date }): TaskView {
  return {
    id: String(t._id),
    title: t.title,
    priority: t.priority,
    deadline: iso(t.deadline),
    urgencyThresholdAt: iso(t.urgencyThresholdAt),
    estimatedMinutes: t.estimatedMinutes ?? null,
    status: t.status,
    completedAt: iso(t.completedAt),
    externalId: t.externalId ?? null,
    createdAt: iso(t.createdAt)!,
    updatedAt: iso(t.updatedAt)!,
  };
}

/** The user's task, or null when it does not exist or is someone else's. */
export async function findUserTask(ctx: Ctx, userId: string, id: string): Promise<TaskDoc | null> {
  if (!isValidObjectId(id) || !/^[0-9a-f]{24}$/.test(id)) return null;
  return ctx.models.tasks.findOne({ _id: id, userId }).lean<TaskDoc>();
}

/** Splits a body into $set / $unset: undefined means "leave as is", null means "clear". */
function changes(body: Partial<TaskPatchBody>, now: Date, current?: TaskDoc) {
  const set: Record<string, unknown> = {};
  const unset: Record<string, ''> = {};
  for (const key of ['title', 'priority', 'deadline', 'urgencyThresholdAt', 'estimatedMinutes', 'status'] as const) {
    const value = body[key];
    if (value === undefined) continue;
    if (value === null) unset[key] = '';
    else set[key] = value;
  }
  if (body.status === 'done' && current?.status !== 'done') set.completedAt = now;
  if (body.status === 'todo') unset.completedAt = '';
  return { set, unset };
}

export async function createTask(ctx: SyncCtx, userId: string, body: TaskCreateBody, now = new Date()): Promise<TaskDoc> {
  const { set } = changes(body, now);
  const created = await ctx.models.tasks.create({ ...set, userId });
  const task = created.toObject() as TaskDoc;
  await syncDueJobForTask(ctx, task, now);
  return task;
}

export async function updateTask(ctx: SyncCtx, userId: string, id: string, body: TaskPatchBody, now = new Date()): Promise<TaskDoc | null> {
  const current = await findUserTask(ctx, userId, id);
  if (!current) return null;
  const { set, unset } = changes(body, now, current);
  const update: Record<string, unknown> = {};
  if (Object.keys(set).length) update.$set = set;
  if (Object.keys(unset).length) update.$unset = unset;
  const task = Object.keys(update).length
    ? await ctx.models.tasks.findOneAndUpdate({ _id: id, userId }, update, { returnDocument: 'after', runValidators: true }).lean<TaskDoc>()
    : current;
  if (!task) return null;
  await syncDueJobForTask(ctx, task, now);
  return task;
}

/** Deletes the task and cancels its due job; a synced one's externalId is released, so the host product's next PUT of it creates it again. */
export async function deleteTask(ctx: SyncCtx, userId: string, id: string, now = new Date()): Promise<boolean> {
  const task = await findUserTask(ctx, userId, id);
  if (!task) return false;
  const { deletedCount } = await ctx.models.tasks.deleteOne({ _id: id, userId });
  if (!deletedCount) return false;
  await syncDueJobForTask(ctx, { ...task, deleted: true }, now);
  if (task.externalId) await forgetExternalId(ctx, 'task', { _id: task._id, userId, externalId: task.externalId }, now);
  return true;
}

export async function listTasks(ctx: Ctx, userId: string, query: { status?: string; limit: number; cursor?: string }) {
  const filter: Record<string, unknown> = { userId };
  if (query.status) filter.status = query.status;
  if (query.cursor) filter._id = { $lt: query.cursor };
  const docs = await ctx.models.tasks
    .find(filter)
    .sort({ _id: -1 })
    .limit(query.limit + 1)
    .lean<TaskDoc[]>();
  const page = docs.slice(0, query.limit);
  return { items: page.map(toTaskView), nextCursor: docs.length > query.limit ? String(page[page.length - 1]._id) : null };
}
