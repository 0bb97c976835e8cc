/**
 * The user's answer to a preview. No transactions (FerretDB v1), so confirming is made safe by:
 * 1. a guarded update ready → confirming (with a lease): of two confirms, one proceeds and the
 *    other waits for its result (double confirm → one block, the same answer twice). Each
 *    transition goes through the store seam (db/guarded.ts);
 * 2. the block carries the previewId and is looked up before one is created, so a confirm that
 *    takes over an expired lease finds the block of the one that died;
 * 3. the conflict check and the insert run exclusively per user (the seam's `exclusively`), so of
 *    two confirms into overlapping slots one creates the block and the other answers 409.
 * Remaining race: a confirm whose lease (30 s) ran out while it was still running (not dead, just
 * slow) and was taken over can create a second block; a unique index on previewId would close it,
 * but FerretDB v1 has no partial (or sparse) unique index to leave other blocks out.
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
import type { ScheduleBlockDoc } from '../db/scheduleBlock';
import { exclusively, guardedOrNull, guardedTransition, lockName, StoreBusyError } from '../db/guarded';
import { claimForConfirm, expirePreview, markConfirmed, markRejected, releaseConfirm } from './transitions';
import { closeByPreview } from '../triggers/transitions';
import type { AnswerPlace } from '../db/trigger';
import { emitEvent } from '../events/emit';
import { isStoredId } from '../db/ids';

type Ctx = Pick<AppContext, 'models' | 'logger' | 'redis' | 'config' | 'queues' | 'store'>;

/** Who answers which preview, and where: the dueflow page, a Feishu card, the API. */
export interface PreviewAnswer {
  userId: string;
  previewId: string;
  via: AnswerPlace;
  now?: Date;
}

export const confirmLeaseMs = 30_000;
/** How long a confirm waits for a concurrent one of the same preview to finish. */
const WAIT_FOR_OTHER_MS = 5_000;

export type ConfirmOutcome =
  | { kind: 'confirmed'; preview: PreviewDoc; block: ScheduleBlockDoc | null; replayed: boolean }
  | { kind: 'not_found' }
  | { kind: 'expired'; preview: PreviewDoc }
  | { kind: 'rejected'; preview: PreviewDoc }
  | { kind: 'conflict'; preview: PreviewDoc; blocks: ScheduleBlockDoc[] }
  | { kind: 'in_progress'; preview: PreviewDoc };

export type RejectOutcome =
  { kind: 'rejected'; preview: PreviewDoc; replayed: boolean } | { kind: 'not_found' } | { kind: 'expired' | 'confirmed' | 'in_progress'; preview: PreviewDoc };

/** One transition of preview `id`; null when the guard did not match or its lock stayed taken. */
const locked = <T>(ctx: Ctx, id: unknown, transition: () => Promise<T | null>): Promise<T | null> => guardedOrNull(ctx, lockName('preview', id), transition);

/** The user answered: the trigger is closed (or rejected). Best effort: a confirm that is replayed tries again. */
async function closeTrigger(ctx: Ctx, p: PreviewDoc, answer: 'confirmed' | 'rejected') {
  try {
    await guardedTransition(ctx, lockName('trigger', p.triggerId), () => closeByPreview(ctx.models.triggers, p.triggerId, answer));
  } catch (err) {
    ctx.logger.warn({ previewId: String(p._id), triggerId: p.triggerId, err: (err as Error).message }, 'could not close the trigger of an answered preview');
  }
}
const places = (p: PreviewDoc) =>
  (p.candidate.kind === 'add_task_to_schedule' || p.candidate.kind === 'create_makeup_block') && p.candidate.start && p.candidate.end;
const overlapFilter = (userId: string, start: Date, end: Date) => ({ userId, start: { $lt: end }, end: { $gt: start } });

async function findBlock(ctx: Ctx, p: PreviewDoc): Promise<ScheduleBlockDoc | null> {
  if (p.blockId && isValidObjectId(p.blockId)) {
    const byId = await ctx.models.scheduleBlocks.findById(p.blockId).lean<ScheduleBlockDoc>();
    if (byId) return byId;
  }
  return ctx.models.scheduleBlocks.findOne({ userId: p.userId, previewId: String(p._id) }).lean<ScheduleBlockDoc>();
}

export async function confirmPreview(ctx: Ctx, answer: PreviewAnswer): Promise<ConfirmOutcome> {
  const { userId, previewId, via } = answer;
  const now = answer.now ?? new Date();
  if (!isStoredId(previewId)) return { kind: 'not_found' };
  const Previews = ctx.models.previews;
  const waitUntil = Date.now() + WAIT_FOR_OTHER_MS;
  for (;;) {
    const p = await Previews.findOne({ _id: previewId, userId }).lean<PreviewDoc>();
    if (!p) return { kind: 'not_found' };
    if (p.status === 'confirmed') {
      await closeTrigger(ctx, p, 'confirmed');
      return { kind: 'confirmed', preview: p, block: await findBlock(ctx, p), replayed: true };
    }
    if (p.status === 'rejected') return { kind: 'rejected', preview: p };
    if (p.status === 'expired') return { kind: 'expired', preview: p };
    if (p.status === 'ready' && p.expiresAt.getTime() <= now.getTime()) {
      const expired = await locked(ctx, p._id, () => expirePreview(Previews, p._id, now).lean<PreviewDoc>());
      if (expired) await emitPreviewExpired(ctx, expired);
      return { kind: 'expired', preview: { ...p, status: 'expired' } };
    }
    const leaseOver = new Date(now.getTime() - confirmLeaseMs);
    const claimed = await locked(ctx, p._id, () => claimForConfirm(Previews, { id: p._id, userId, now, leaseOver }).lean<PreviewDoc>());
    if (claimed) return apply(ctx, claimed, { now, via });
    // Another confirm holds it: wait for its answer, which is ours too.
    if (Date.now() > waitUntil) return { kind: 'in_progress', preview: p };
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function apply(ctx: Ctx, p: PreviewDoc, { now, via }: { now: Date; via: AnswerPlace }): Promise<ConfirmOutcome> {
  const { models } = ctx;
  const previewId = String(p._id);
  const release = () => locked(ctx, p._id, () => releaseConfirm(models.previews, p._id, p.confirmingSince));
  let block: ScheduleBlockDoc | null = null;
  if (places(p)) {
    const start = p.candidate.start!;
    const end = p.candidate.end!;
    block = await findBlock(ctx, p);
    if (!block) {
      // Check and insert under the user's schedule lock: two confirms into overlapping slots
      // cannot both see a free slot (ids alone cannot order them: an id is made before its insert).
      const placed = await exclusively(
        ctx,
        lockName('schedule', p.userId),
        async () => {
          const taken = await models.scheduleBlocks.find({ ...overlapFilter(p.userId, start, end), previewId: { $ne: previewId } }).lean<ScheduleBlockDoc[]>();
          if (taken.length > 0) return { taken };
          const created = await models.scheduleBlocks.create({
            userId: p.userId,
            taskId: p.candidate.taskId,
            title: p.candidate.title ?? 'task',
            start,
            end,
            status: 'planned',
            previewId,
          });
          return { created };
        },
        10_000,
      ).catch((err) => {
        if (err instanceof StoreBusyError) return { taken: [] as ScheduleBlockDoc[] };
        throw err;
      });
      if (placed.taken) {
        await release();
        return { kind: 'conflict', preview: p, blocks: placed.taken };
      }
      const created = placed.created!;
      block = created.toObject() as ScheduleBlockDoc;
    }
  }
  const confirmed = await locked(ctx, p._id, () =>
    markConfirmed(models.previews, { id: p._id, since: p.confirmingSince, now, via, blockId: block ? String(block._id) : undefined }).lean<PreviewDoc>(),
  );
  if (confirmed) await emitPreviewAnswered(ctx, { preview: confirmed, block });
  const final = confirmed ?? (await models.previews.findById(p._id).lean<PreviewDoc>())!;
  await closeTrigger(ctx, final, 'confirmed');
  ctx.logger.info({ previewId, triggerId: p.triggerId, blockId: block ? String(block._id) : undefined }, 'preview confirmed');
  return { kind: 'confirmed', preview: final, block, replayed: false };
}

export async function rejectPreview(ctx: Ctx, answer: PreviewAnswer): Promise<RejectOutcome> {
  const { userId, previewId, via } = answer;
  const now = answer.now ?? new Date();
  if (!isStoredId(previewId)) return { kind: 'not_found' };
  const rejected = await locked(ctx, previewId, () => markRejected(ctx.models.previews, { id: previewId, userId, now, via }).lean<PreviewDoc>());
  if (rejected) {
    await emitPreviewAnswered(ctx, { preview: rejected, block: null });
    await closeTrigger(ctx, rejected, 'rejected');
    return { kind: 'rejected', preview: rejected, replayed: false };
  }
  const p = await ctx.models.previews.findOne({ _id: previewId, userId }).lean<PreviewDoc>();
  if (!p) return { kind: 'not_found' };
  if (p.status === 'rejected') {
    await closeTrigger(ctx, p, 'rejected');
    return { kind: 'rejected', preview: p, replayed: true };
  }
  if (p.status === 'confirmed') return { kind: 'confirmed', preview: p };
  // confirming, or still ready (the lock stayed taken: another answer is being written)
  if (p.status === 'confirming' || (p.status === 'ready' && p.expiresAt.getTime() > now.getTime())) return { kind: 'in_progress', preview: p };
  return { kind: 'expired', preview: p };
}

/** The task the preview was about, as the host product knows it (its externalId, when it synced it). */
async function taskRef(ctx: Ctx, p: PreviewDoc): Promise<{ id: string; externalId: string | null } | null> {
  const id = p.candidate.taskId;
  if (!id || !isValidObjectId(id)) return null;
  const task = await ctx.models.tasks.findById(id, { externalId: 1 }).lean<{ externalId?: string }>();
  return { id, externalId: task?.externalId ?? null };
}

/** preview.confirmed / preview.rejected, once per preview (the event's key is the preview). */
export async function emitPreviewAnswered(ctx: Ctx, a: { preview: PreviewDoc; block: ScheduleBlockDoc | null }): Promise<void> {
  const p = a.preview;
  const base = { previewId: String(p._id), userId: p.userId, triggerId: p.triggerId, task: await taskRef(ctx, p) };
  if (p.status === 'confirmed') {
    const block = a.block ? { id: String(a.block._id), start: a.block.start.toISOString(), end: a.block.end.toISOString() } : null;
    await emitEvent(ctx, {
      type: 'preview.confirmed',
      key: String(p._id),
      userId: p.userId,
      at: p.confirmedAt ?? undefined,
      data: { ...base, block, confirmedVia: p.answeredVia ?? 'api' },
    });
  } else if (p.status === 'rejected') {
    await emitEvent(ctx, {
      type: 'preview.rejected',
      key: String(p._id),
      userId: p.userId,
      at: p.rejectedAt ?? undefined,
      data: { ...base, rejectedVia: p.answeredVia ?? 'api' },
    });
  }
}

export async function emitPreviewExpired(ctx: Ctx, p: PreviewDoc): Promise<void> {
  await emitEvent(ctx, {
    type: 'preview.expired',
    key: String(p._id),
    userId: p.userId,
    at: p.expiresAt,
    data: { previewId: String(p._id), userId: p.userId, triggerId: p.triggerId, task: await taskRef(ctx, p), expiresAt: p.expiresAt.toISOString() },
  });
}
