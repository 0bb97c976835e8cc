/**
 * The workflow's step for a `reminder` trigger: nothing to plan and no preview; one message with
 * the reminder's own title and summary, as they were when the occurrence fired (the trigger's
 * detail). Its dedupe key is the trigger's, so an occurrence is one message.
 */
import type { AppContext } from '../context';
import type { TriggerDoc } from '../db/trigger';
import { requestNotification } from '../notifications/request';
import { notificationDedupeKey } from '../triggers/dedupe';
import { closeUnprocessed, markNotified } from '../triggers/transitions';
import { guardedTransition, lockName } from '../db/guarded';
import type { WorkflowOutcome } from '../workflow/outcome';
import { reminderTriggerType, type ReminderTriggerDetail } from './fire';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

/** A trigger this step handles: raised by a reminder's due job (an anomaly of type `reminder` from another service is not). */
export const isReminderTrigger = (t: Pick<TriggerDoc, 'type' | 'source' | 'target'>) =>
  t.type === reminderTriggerType && t.source === 'worker_due_job' && t.target.type === 'reminder';

function readDetail(detail: string | null | undefined): ReminderTriggerDetail | undefined {
  try {
    const d = detail ? JSON.parse(detail) : undefined;
    return typeof d?.title === 'string' && d.title && typeof d?.summary === 'string' && d.summary ? d : undefined;
  } catch {
    return undefined;
  }
}

export async function notifyReminder(ctx: Ctx, trigger: TriggerDoc): Promise<WorkflowOutcome> {
  const triggerId = String(trigger._id);
  const detail = readDetail(trigger.detail);
  const notCurrent = async (): Promise<WorkflowOutcome> => {
    const current = await ctx.models.triggers.findById(triggerId, { status: 1 }).lean();
    return { status: 'not_claimed', current: current?.status ?? 'missing' };
  };
  if (!detail) {
    const closed = await guardedTransition(ctx, lockName('trigger', triggerId), () =>
      closeUnprocessed(ctx.models.triggers, triggerId, 'reminder_message_missing'),
    );
    return closed ? { status: 'closed', reason: 'reminder_message_missing' } : notCurrent();
  }
  const notification = await requestNotification(ctx, {
    userId: trigger.userId,
    dedupeKey: notificationDedupeKey(trigger.dedupeKey),
    triggerType: trigger.type,
    target: trigger.target,
    message: { title: detail.title, summary: detail.summary },
    traceId: triggerId,
    triggerId,
    replyKind: 'reminder',
  });
  const done = await guardedTransition(ctx, lockName('trigger', triggerId), () => markNotified(ctx.models.triggers, triggerId, notification.id));
  if (!done) return notCurrent();
  ctx.logger.info(
    { triggerId, notificationId: notification.id, reminderId: trigger.target.id, occurrenceAt: detail.occurrenceAt },
    'reminder notification requested',
  );
  return { status: 'notified', notificationId: notification.id };
}
