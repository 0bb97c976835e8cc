/**
 * A user acknowledges an anomaly (on its card, on /app, or through the API): its escalation
 * stops, its cards are redrawn, and its record's history says so.
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { AnswerPlace, TriggerDoc } from '../db/trigger';
import { guardedTransition, lockName } from '../db/guarded';
import { acknowledgeAnomaly } from '../triggers/transitions';
import { noteAcknowledged } from '../notifications/transitions';
import { refreshCards } from '../cards/updates';
import { emitEvent } from '../events/emit';

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'feishuApp' | 'logger'>;

export type AcknowledgeOutcome = { kind: 'acknowledged'; trigger: TriggerDoc } | { kind: 'already'; trigger: TriggerDoc } | { kind: 'not_found' };

export async function acknowledge(
  ctx: Ctx,
  a: { userId: string; triggerId: string; via: AnswerPlace; exceptRecordId?: string; now?: Date },
): Promise<AcknowledgeOutcome> {
  if (!isValidObjectId(a.triggerId)) return { kind: 'not_found' };
  const at = a.now ?? new Date();
  const done = await guardedTransition(ctx, lockName('trigger', a.triggerId), () =>
    acknowledgeAnomaly(ctx.models.triggers, { id: a.triggerId, userId: a.userId, at, via: a.via }).lean<TriggerDoc>(),
  );
  if (!done) {
    const current = await ctx.models.triggers.findOne({ _id: a.triggerId, userId: a.userId, anomaly: { $exists: true } }).lean<TriggerDoc>();
    return current ? { kind: 'already', trigger: current } : { kind: 'not_found' };
  }
  const records = await ctx.models.notificationRecords.find({ triggerId: a.triggerId }, { _id: 1 }).lean();
  await Promise.all(
    records.map((r) =>
      guardedTransition(ctx, lockName('notification', String(r._id)), () => noteAcknowledged(ctx.models.notificationRecords, r._id, { at, via: a.via })),
    ),
  );
  await emitEvent(ctx, {
    type: 'anomaly.acknowledged',
    key: a.triggerId,
    userId: a.userId,
    at,
    data: { anomalyId: a.triggerId, userId: a.userId, type: done.type, acknowledgedAt: at.toISOString(), acknowledgedVia: a.via },
  });
  await refreshCards(ctx, { triggerId: a.triggerId }, a.exceptRecordId);
  ctx.logger.info({ triggerId: a.triggerId, userId: a.userId, via: a.via }, 'anomaly acknowledged');
  return { kind: 'acknowledged', trigger: done };
}
