/**
 * Creating, replacing and deleting the host product's tasks and blocks by its own ids.
 *
 * Upsert: read the mapping (external_ids, by _id); if there is none, claim one with a fresh
 * ObjectId first (losing that race means using the winner's), then write the resource AT that id:
 * replace it when it is there, insert it when not (a crash between claim and insert, or a delete
 * through the user routes, left a mapping to nothing). A crash anywhere loses nothing and never
 * makes two resources of one externalId: the resource's id is fixed before it exists.
 * The body is the whole resource: what it leaves out goes back to its default or is absent.
 * An upsert that changes nothing writes nothing, so repeating a sync changes nothing more.
 */
import { Types, type Model } from 'mongoose';
import type { AppContext } from '../context';
import { externalIdKey, type ExternalIdDoc, type ExternalKind, type ExternalRef } from '../db/externalId';
import { guardedTransition, StoreBusyError } from '../db/guarded';
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import type { TaskDoc } from '../db/task';
import { deleteBlock, reportUnfinished } from '../planning/blocks';
import type { TaskCreateBody } from '../planning/schemas';
import { deleteTask, findUserTask } from '../planning/tasks';
import { syncDueJobForTask } from '../scheduling/dueJobs';
import { externalIdLock, forgetExternalId, type SyncCtx } from './forget';
import type { BlockSyncBody } from './schemas';
import { claimExternalId, insertResourceAt, replaceResourceAt } from './transitions';

/** Races lost in a row before giving up with StoreBusyError (answered 409: try again). */
const maxRounds = 10;
/** A loaded store can hold a mapping's lock a while: wait for it rather than answer 409 at once. */
const lockWaitMs = 10_000;

type Stored = { _id: Types.ObjectId; userId: string; createdAt?: Date };

/** How one kind is written at a mapped id. */
interface Writer<D extends Stored> {
  kind: ExternalKind;
  /** tasks or schedule_blocks. */
  resources: Model<any>;
  /** The whole document to store, given the one stored now (null: none). */
  build(current: D | null): Record<string, unknown>;
  /** Fields compared to tell an upsert that changes nothing. */
  fields: readonly string[];
  /** Brings what follows the resource in line (a task's due job), before the mapping is looked at again. */
  settle?(doc: D): Promise<void>;
  /** Removes a resource written for a mapping that a concurrent delete released meanwhile. */
  discard(doc: D): Promise<void>;
}

export interface Upserted<D> {
  created: boolean;
  doc: D;
  /** What was stored before (null when created). */
  previous: D | null;
}

const sameValue = (a: unknown, b: unknown) =>
  a instanceof Date || b instanceof Date ? a instanceof Date && b instanceof Date && a.getTime() === b.getTime() : (a ?? null) === (b ?? null);

function unchanged(current: Record<string, unknown>, next: Record<string, unknown>, fields: readonly string[]): boolean {
  return fields.every((f) => sameValue(current[f], next[f]));
}

/** The mapping of ref, claimed with a fresh resource id when there is none. */
async function mappingOf(ctx: SyncCtx, kind: ExternalKind, ref: ExternalRef): Promise<ExternalIdDoc> {
  const ExternalIds = ctx.models.externalIds;
  const key = externalIdKey(kind, ref);
  for (let round = 0; round < maxRounds; round++) {
    const found = await ExternalIds.findById(key).lean<ExternalIdDoc>();
    if (found) return found;
    const claimed = await guardedTransition(ctx, externalIdLock(key), () => claimExternalId(ExternalIds, kind, ref, new Types.ObjectId()), lockWaitMs);
    if (claimed) return claimed;
    // A concurrent upsert claimed it first: read its mapping (gone again only if a delete raced too).
  }
  throw new StoreBusyError(externalIdLock(key));
}

/** Writes the resource at id: replaced when there, inserted when not (each one's race falls back to the other). */
async function writeAt<D extends Stored>(w: Writer<D>, id: Types.ObjectId, ref: ExternalRef): Promise<Upserted<D>> {
  const Resources = w.resources;
  for (let round = 0; round < maxRounds; round++) {
    const current = await Resources.findById(id).lean<D>();
    if (current) {
      // The id was minted for this user's mapping: another user's document there is a bug, not input.
      if (current.userId !== ref.userId) throw new Error(`${w.kind} ${String(id)} mapped for ${ref.userId} belongs to another user`);
      const next = w.build(current);
      if (unchanged(current as Record<string, unknown>, next, w.fields)) return { created: false, doc: current, previous: current };
      const replaced = await replaceResourceAt<D>(Resources, id, { ...next, createdAt: current.createdAt });
      if (replaced) return { created: false, doc: replaced, previous: current };
      continue; // deleted between the read and the replace: insert it
    }
    const inserted = await insertResourceAt<D>(Resources, id, w.build(null));
    if (inserted) return { created: true, doc: inserted, previous: null };
    // inserted by a concurrent upsert between the read and the insert: replace it
  }
  throw new StoreBusyError(`${w.kind}:${id}`);
}

async function upsertByExternalId<D extends Stored>(ctx: SyncCtx, w: Writer<D>, ref: ExternalRef): Promise<Upserted<D>> {
  const mapping = await mappingOf(ctx, w.kind, ref);
  const written = await writeAt(w, mapping.resourceId, ref);
  await w.settle?.(written.doc);
  // A delete that read the mapping before we wrote may have released it since: this write then
  // came first and the delete wins. The delete removes the resource (and cancels its due job)
  // again after releasing, and we look after settling, so whichever of us is last cleans up.
  const still = await ctx.models.externalIds.findById(externalIdKey(w.kind, ref), { resourceId: 1 }).lean<Pick<ExternalIdDoc, 'resourceId'>>();
  if (String(still?.resourceId) !== String(mapping.resourceId)) await w.discard(written.doc);
  return written;
}

const taskFields = ['userId', 'externalId', 'title', 'priority', 'deadline', 'urgencyThresholdAt', 'estimatedMinutes', 'status', 'completedAt'] as const;

/** Creates or replaces the user's task of this externalId; its due job follows (created, moved or canceled). */
export async function upsertTask(ctx: SyncCtx, ref: ExternalRef, body: TaskCreateBody, now = new Date()): Promise<Upserted<TaskDoc>> {
  return upsertByExternalId<TaskDoc>(
    ctx,
    {
      kind: 'task',
      resources: ctx.models.tasks,
      fields: taskFields,
      build: (current) => {
        const doc: Record<string, unknown> = {
          userId: ref.userId,
          externalId: ref.externalId,
          title: body.title,
          priority: body.priority,
          status: body.status,
        };
        for (const key of ['deadline', 'urgencyThresholdAt', 'estimatedMinutes'] as const) if (body[key] != null) doc[key] = body[key];
        // Done since before keeps when it was done; a task done now is done now.
        if (body.status === 'done') doc.completedAt = current?.status === 'done' && current.completedAt ? current.completedAt : now;
        return doc;
      },
      settle: async (task) => {
        await syncDueJobForTask(ctx, task, now);
      },
      discard: async (task) => {
        await ctx.models.tasks.deleteOne({ _id: task._id });
        await syncDueJobForTask(ctx, { ...task, deleted: true }, now);
      },
    },
    ref,
  );
}

export type BlockUpsert =
  | ({ ok: true } & Upserted<ScheduleBlockDoc> & { feedbackTrigger?: { id: string; status: string; created: boolean } })
  /** An input problem found after validation (it needs the database); field is inside the body (taskExternalId). */
  | { ok: false; field: string; message: string };

const blockFields = ['userId', 'externalId', 'taskId', 'title', 'start', 'end', 'status', 'previewId'] as const;

/**
 * Creates or replaces the user's block of this externalId. Its task may be named by taskId or by
 * the host product's taskExternalId. A replace that moves it to unfinished reports it, as PATCH does.
 */
export async function upsertBlock(ctx: AppContext, ref: ExternalRef, body: BlockSyncBody): Promise<BlockUpsert> {
  let task: TaskDoc | null = null;
  if (body.taskExternalId) {
    const mapping = await ctx.models.externalIds.findById(externalIdKey('task', { userId: ref.userId, externalId: body.taskExternalId })).lean<ExternalIdDoc>();
    // By _id alone (FerretDB v1 scans for anything else), then whose it is.
    const mapped = mapping ? await ctx.models.tasks.findById(mapping.resourceId).lean<TaskDoc>() : null;
    task = mapped?.userId === ref.userId ? mapped : null;
    if (!task) return { ok: false, field: 'taskExternalId', message: 'no task of this user has this externalId' };
  } else if (body.taskId) {
    task = await findUserTask(ctx, ref.userId, body.taskId);
    if (!task) return { ok: false, field: 'taskId', message: 'no such task of this user' };
  }
  const doc: Record<string, unknown> = {
    userId: ref.userId,
    externalId: ref.externalId,
    title: body.title ?? task!.title,
    start: body.start,
    end: body.end,
    status: body.status,
  };
  if (task) doc.taskId = String(task._id);

  const written = await upsertByExternalId<ScheduleBlockDoc>(
    ctx,
    {
      kind: 'block',
      resources: ctx.models.scheduleBlocks,
      fields: blockFields,
      build: () => doc,
      discard: async (block) => {
        await ctx.models.scheduleBlocks.deleteOne({ _id: block._id });
      },
    },
    ref,
  );
  const reported = written.previous && written.previous.status !== 'unfinished' && written.doc.status === 'unfinished';
  return { ok: true, ...written, feedbackTrigger: reported ? await reportUnfinished(ctx, written.doc) : undefined };
}

/**
 * Deletes the user's task or block of this externalId (a task through deleteTask, so its due job
 * is canceled; both release the mapping). Returns the id it had, or null when there is none.
 */
export async function deleteByExternalId(ctx: SyncCtx, kind: ExternalKind, ref: ExternalRef, now = new Date()): Promise<{ id: string } | null> {
  const mapping = await ctx.models.externalIds.findById(externalIdKey(kind, ref)).lean<ExternalIdDoc>();
  if (!mapping) return null;
  const id = String(mapping.resourceId);
  const deleted = kind === 'task' ? await deleteTask(ctx, ref.userId, id, now) : await deleteBlock(ctx, ref.userId, id);
  // Nothing to delete: a mapping to nothing (a crash before its insert, or a delete racing this one).
  if (!deleted) await forgetExternalId(ctx, kind, { _id: mapping.resourceId, ...ref }, now);
  return { id };
}
