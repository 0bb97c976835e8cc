/**
 * A user acknowledges an anomaly (on its card, on /app, or through the API): its escalation
 * stops, its cards are redrawn, and its record's history says so.
 */
import type { AppContext } from '../context';
import type { AnswerPlace, TriggerDoc } from '../db/trigger';
import { guardedTransition, lockName } from '../db/guarded';
import { acknowledgeAnomaly } from '../triggers/transitions';
import { noteAcknowledged } from '../notifications/transitions';
import { refreshCards } from '../cards/updates';
import { emitEvent } from '../events/emit';
import { isStoredId } from '../db/ids';

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'feishuApp' | 'logger'>;

export type AcknowledgeOutcome = { kind: 'acknowledged'; trigger: TriggerDoc } | { kind: 'already'; trigger: TriggerDoc } | { kind: 'not_found' };

export async function acknowledge(
  ctx: Ctx,
  a: { userId: string; triggerId: string; via: AnswerPlace; exceptRecordId?: string; now?: Date },
): Promise<AcknowledgeOutcome> {
  if (!isStoredId(a.triggerId)) return { kind: 'not_found' };
  const at = a.now ?? new Date();
  const done = await guardedTransition(ctx, lockName('trigger', a.triggerId), () =>
    acknowledgeAnomaly(ctx.models.triggers, { id: a.triggerId, userId: a.userId, at, via: a.via }).lean<TriggerDoc>(),
  );
  if (!done) {
    const current = await ctx.models.triggers.findOne({ _id: a.triggerId, userId: a.userId, anomaly: { $exists: true } }).lean<TriggerDoc>();
    if (!current) return { kind: 'not_found' };
    // An earlier attempt may have stopped after the trigger's write (a busy lock, a lost
    // connection): the notes are idempotent, and one landing now means the rest was not done.
    const earlier = current.anomaly?.acknowledgedAt && { at: current.anomaly.acknowledgedAt, via: current.anomaly.acknowledgedVia ?? a.via };
    if (earlier && (await noteRecords(ctx, { triggerId: a.triggerId, ...earlier }))) {
      await announce(ctx, { trigger: current, ...earlier, exceptRecordId: a.exceptRecordId });
    }
    return { kind: 'already', trigger: current };
  }
  await noteRecords(ctx, { triggerId: a.triggerId, at, via: a.via });
  await announce(ctx, { trigger: done, at, via: a.via, exceptRecordId: a.exceptRecordId });
  ctx.logger.info({ triggerId: a.triggerId, userId: a.userId, via: a.via }, 'anomaly acknowledged');
  return { kind: 'acknowledged', trigger: done };
}

/** Notes the acknowledgement in each of the anomaly's records; returns how many had not had it. */
async function noteRecords(ctx: Ctx, a: { triggerId: string; at: Date; via: AnswerPlace }): Promise<number> {
  const records = await ctx.models.notificationRecords.find({ triggerId: a.triggerId }, { _id: 1 }).lean();
  const noted = await Promise.all(
    records.map((r) =>
      guardedTransition(ctx, lockName('notification', String(r._id)), () => noteAcknowledged(ctx.models.notificationRecords, r._id, { at: a.at, via: a.via })),
    ),
  );
  return noted.filter(Boolean).length;
}

/** The event and the redrawn cards of an acknowledgement. */
async function announce(ctx: Ctx, a: { trigger: TriggerDoc; at: Date; via: AnswerPlace; exceptRecordId?: string }): Promise<void> {
  const anomalyId = String(a.trigger._id);
  await emitEvent(ctx, {
    type: 'anomaly.acknowledged',
    key: anomalyId,
    userId: a.trigger.userId,
    at: a.at,
    data: { anomalyId, userId: a.trigger.userId, type: a.trigger.type, acknowledgedAt: a.at.toISOString(), acknowledgedVia: a.via },
  });
  await refreshCards(ctx, { triggerId: anomalyId }, a.exceptRecordId);
}
