/**
 * Changes written without their event: dueflow has no transactions, so a preview answered, an
 * anomaly acknowledged or escalated, or a reminder card answered is one write and its event the
 * next; a process that stops between the two leaves the change without its event. This finds the
 * recent ones (the last day) and emits what is missing: the event ids are derived from the
 * change (ids.ts), so one read of the event log tells which exist. (A record's own end events
 * need none of this: they are written in the same update, notifications/events.ts.)
 */
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
import type { TriggerDoc } from '../db/trigger';
import type { NotificationRecord } from '../db/notificationRecord';
import { emitPreviewAnswered, emitPreviewExpired } from '../previews/answer';
import { eventIdFor } from './ids';
import { ensureEvent } from './emit';
import type { EventType } from './types';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

const windowMs = 86_400_000;
/** Changes younger than this are left alone: their event is being written right now. */
const settleMs = 10_000;

export async function reconcileDomainEvents(ctx: Ctx, now = new Date(), batchSize = 200): Promise<number> {
  const recent = { $gt: new Date(now.getTime() - windowMs), $lt: new Date(now.getTime() - settleMs) };
  const { models } = ctx;
  const [previews, anomalies, replies] = await Promise.all([
    models.previews
      .find({ status: { $in: ['confirmed', 'rejected', 'expired'] }, updatedAt: recent })
      .limit(batchSize)
      .lean<PreviewDoc[]>(),
    models.triggers.find({ 'anomaly.acknowledgedAt': recent }).limit(batchSize).lean<TriggerDoc[]>(),
    models.notificationRecords.find({ 'reply.at': recent }, { userId: 1, target: 1, reply: 1 }).limit(batchSize).lean<NotificationRecord[]>(),
  ]);
  const previewType = (p: PreviewDoc): EventType =>
    p.status === 'confirmed' ? 'preview.confirmed' : p.status === 'rejected' ? 'preview.rejected' : 'preview.expired';
  const wanted: Array<{ id: string; emit: () => Promise<void> }> = [
    ...previews.map((p) => ({
      id: eventIdFor(previewType(p), String(p._id)),
      emit: () => (p.status === 'expired' ? emitPreviewExpired(ctx, p) : emitPreviewBlock(ctx, p)),
    })),
    ...anomalies.map((t) => ({
      id: eventIdFor('anomaly.acknowledged', String(t._id)),
      emit: () =>
        ensureEvent(ctx, {
          type: 'anomaly.acknowledged',
          key: String(t._id),
          userId: t.userId,
          at: t.anomaly!.acknowledgedAt!,
          data: {
            anomalyId: String(t._id),
            userId: t.userId,
            type: t.type,
            acknowledgedAt: t.anomaly!.acknowledgedAt!.toISOString(),
            acknowledgedVia: t.anomaly!.acknowledgedVia ?? 'api',
          },
        }),
    })),
    ...replies.map((r) => {
      const type: EventType = r.reply!.kind === 'done' ? 'reminder.done' : 'reminder.snoozed';
      return {
        id: eventIdFor(type, String(r._id)),
        emit: () =>
          ensureEvent(ctx, {
            type,
            key: String(r._id),
            userId: r.userId,
            at: r.reply!.at,
            data: {
              recordId: String(r._id),
              userId: r.userId,
              reminderId: r.target.type === 'reminder' ? r.target.id : null,
              ...(r.reply!.until ? { until: r.reply!.until.toISOString() } : {}),
            },
          }),
      };
    }),
  ];
  if (!wanted.length) return 0;
  const existing = new Set((await models.events.find({ _id: { $in: wanted.map((w) => w.id) } }, { _id: 1 }).lean<Array<{ _id: string }>>()).map((e) => e._id));
  const missing = wanted.filter((w) => !existing.has(w.id));
  for (const w of missing) await w.emit();
  if (missing.length) ctx.logger.warn({ emitted: missing.length }, 'events reconciler: changes found without their event, emitted');
  return missing.length;
}

/** preview.confirmed / rejected again, with its block as it is now. */
async function emitPreviewBlock(ctx: Ctx, p: PreviewDoc): Promise<void> {
  const block = p.blockId ? await ctx.models.scheduleBlocks.findById(p.blockId).lean() : null;
  await emitPreviewAnswered(ctx, { preview: p, block: block as never });
}
