/**
 * A reminder card's answer: Done, or Snooze (10 min, 1 h): one more message at that time, once.
 * The answer is written first (once per card); the snoozed copy is a notification of its own,
 * keyed by the card's record (dedupe key snooze|<record>), not sent before its time. A crash
 * between the two leaves a snoozed card without its copy: the reconciler requests it then
 * (requestMissingSnoozeCopies), and the dedupe key makes it one.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import { guardedTransition, lockName } from '../db/guarded';
import { requestNotification } from '../notifications/request';
import { markReplied, noteSnoozeCopy } from '../notifications/transitions';
import { emitEvent } from '../events/emit';

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'logger'>;
type CardRecord = Pick<NotificationRecord, '_id' | 'userId' | 'channel' | 'triggerType' | 'target' | 'message' | 'traceId' | 'triggerId'>;

export type ReminderReply = { kind: 'done' } | { kind: 'snoozed'; forMs: number };
export type ReplyOutcome = { kind: 'replied'; record: NotificationRecord } | { kind: 'already' };

export async function replyToReminder(ctx: Ctx, record: CardRecord, reply: ReminderReply, now = new Date()): Promise<ReplyOutcome> {
  const id = String(record._id);
  const answer =
    reply.kind === 'done' ? { kind: 'done' as const, at: now } : { kind: 'snoozed' as const, at: now, until: new Date(now.getTime() + reply.forMs) };
  const replied = await guardedTransition(ctx, lockName('notification', id), () =>
    markReplied(ctx.models.notificationRecords, id, answer).lean<NotificationRecord>(),
  );
  if (!replied) return { kind: 'already' };
  if (answer.kind === 'snoozed') await requestSnoozeCopy(ctx, replied);
  await emitEvent(ctx, {
    type: answer.kind === 'done' ? 'reminder.done' : 'reminder.snoozed',
    key: id,
    userId: record.userId,
    at: now,
    data: {
      recordId: id,
      userId: record.userId,
      reminderId: record.target.type === 'reminder' ? record.target.id : null,
      ...(answer.kind === 'snoozed' ? { until: answer.until.toISOString() } : {}),
    },
  });
  ctx.logger.info({ recordId: id, reply: answer.kind, until: answer.kind === 'snoozed' ? answer.until : undefined }, 'reminder answered');
  return { kind: 'replied', record: replied };
}

async function requestSnoozeCopy(ctx: Ctx, record: CardRecord & Pick<NotificationRecord, 'reply'>): Promise<void> {
  const id = String(record._id);
  const m = record.message;
  const copy = await requestNotification(ctx, {
    userId: record.userId,
    channel: record.channel,
    dedupeKey: `snooze|${id}`,
    triggerType: record.triggerType,
    target: { type: record.target.type, id: record.target.id },
    message: { title: m.title, summary: m.summary, ...(m.actionText ? { actionText: m.actionText } : {}), ...(m.actionUrl ? { actionUrl: m.actionUrl } : {}) },
    traceId: record.traceId ?? undefined,
    triggerId: record.triggerId ?? undefined,
    replyKind: 'reminder',
    notBefore: record.reply?.until ?? undefined,
  });
  await guardedTransition(ctx, lockName('notification', id), () => noteSnoozeCopy(ctx.models.notificationRecords, id, copy.id));
}

/** Snoozed cards whose copy was never requested (the process stopped in between), older than `settleMs`. */
export async function requestMissingSnoozeCopies(ctx: Ctx, now = new Date(), settleMs = 30_000): Promise<number> {
  const orphans = await ctx.models.notificationRecords
    .find({ 'reply.kind': 'snoozed', 'reply.snoozeRecordId': { $exists: false }, 'reply.at': { $lt: new Date(now.getTime() - settleMs) } })
    .limit(100)
    .lean<NotificationRecord[]>();
  for (const record of orphans) await requestSnoozeCopy(ctx, record);
  return orphans.length;
}
