/**
 * runWorkflow: what happens to a trigger. Safe to run twice (a retry, a stalled job picked up by
 * another worker): the trigger is claimed by a guarded update, the preview is unique per trigger
 * and reused, and the notification is unique per dedupe key.
 *
 * claim → plan (context, issues, candidates, choice) → preview (expires in PREVIEW_TTL_MS) →
 * notification → preview_generated; or closed with a reason when there is nothing to do.
 * A fired due job skips the claim: its trigger is inserted claimed and run at once
 * (runClaimedWorkflow), with the task and blocks the firing read.
 */
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
import type { TriggerDoc } from '../db/trigger';
import { requestNotification } from '../notifications/request';
import { notificationDedupeKey } from '../triggers/dedupe';
import { claimTrigger, closeUnprocessed, failTrigger, markNotified, markPreviewGenerated, processingLeaseMs, releaseTrigger } from '../triggers/transitions';
import { guardedTransition, lockName, StoreBusyError } from '../db/guarded';
import { buildAnomalyMessage } from '../anomalies/message';
import { loadUserSettings } from '../settings/store';
import { planningSettings, type PlanningReads } from './context';
import { messageFor, plan, previewUrl } from './plan';
import type { TriggerType } from './candidates';
import { insertPreview } from '../previews/transitions';
import { enqueueTriggerWorkflow } from '../triggers/enqueue';
import { isReminderTrigger, notifyReminder } from '../reminders/notify';
import type { WorkflowOutcome } from './outcome';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

const triggerLock = (id: unknown) => lockName('trigger', id);

export type { WorkflowOutcome };

function parseDetail(detail: string | null | undefined): Record<string, unknown> | undefined {
  if (!detail) return undefined;
  try {
    return JSON.parse(detail);
  } catch {
    return undefined;
  }
}

export async function runWorkflow(ctx: Ctx, triggerId: string, opts: { now?: Date; finalAttempt?: boolean } = {}): Promise<WorkflowOutcome> {
  const Triggers = ctx.models.triggers;
  const now = opts.now ?? new Date();
  const claimed = await guardedTransition(ctx, triggerLock(triggerId), () => claimTrigger(Triggers, triggerId, now).lean<TriggerDoc>()).catch((err) => {
    if (err instanceof StoreBusyError) return null;
    throw err;
  });
  if (!claimed) {
    const current = await Triggers.findById(triggerId, { status: 1, processingSince: 1 }).lean();
    // Held by another run until its lease ends; still pending means its claim lock was busy: look again soon.
    const leaseEndsAt =
      current?.status === 'processing' && current.processingSince
        ? new Date(current.processingSince.getTime() + processingLeaseMs)
        : current?.status === 'pending'
          ? new Date(Date.now() + 1000)
          : undefined;
    return { status: 'not_claimed', current: current?.status ?? 'missing', ...(leaseEndsAt ? { leaseEndsAt } : {}) };
  }
  try {
    return await advance(ctx, claimed, now);
  } catch (err) {
    await handBack(ctx, triggerId, err, opts.finalAttempt ?? false);
    throw err;
  }
}

/** Hand the trigger back so the retry claims it at once; after the last attempt it has failed. */
async function handBack(ctx: Ctx, triggerId: string, err: unknown, finalAttempt: boolean): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  const back = () => (finalAttempt ? failTrigger(ctx.models.triggers, triggerId, message) : releaseTrigger(ctx.models.triggers, triggerId, message));
  await guardedTransition(ctx, triggerLock(triggerId), back).catch(() => undefined);
}

/**
 * The workflow of a trigger its creator inserted claimed (processing, attempts 1: a fired due
 * job), with what the creator read at `planning.now`. It is the first attempt: an error hands the
 * trigger back (pending) and gives it its workflow job for the retries, then is thrown.
 */
export async function runClaimedWorkflow(ctx: Ctx, trigger: TriggerDoc, planning: PlanningReads): Promise<WorkflowOutcome> {
  const triggerId = String(trigger._id);
  try {
    return await advance(ctx, trigger, planning.now, planning);
  } catch (err) {
    await handBack(ctx, triggerId, err, false);
    // Not enqueued (Redis away, as likely as not the error): pending, recoverTriggers requeues it.
    await enqueueTriggerWorkflow(ctx, triggerId, trigger.attempts).catch(() => undefined);
    throw err;
  }
}

async function advance(ctx: Ctx, trigger: TriggerDoc, now: Date, loaded?: PlanningReads): Promise<WorkflowOutcome> {
  const { models, config, logger } = ctx;
  const triggerId = String(trigger._id);
  if (trigger.anomaly) return notifyAnomaly(ctx, trigger, trigger.anomaly);
  // A reminder's occurrence: the user's own message, nothing to plan (src/reminders/notify.ts).
  if (isReminderTrigger(trigger)) return notifyReminder(ctx, trigger);
  // A previous attempt got as far as the preview: send what it wrote rather than plan again. On the
  // first claim (attempts 1) there was none: the insert below looks only if the triggerId is taken.
  let preview = trigger.attempts === 1 ? null : await models.previews.findOne({ triggerId }).lean<PreviewDoc>();
  if (!preview) {
    const p = await plan(ctx, {
      userId: trigger.userId,
      triggerType: trigger.type as TriggerType,
      target: trigger.target,
      now,
      detail: parseDetail(trigger.detail),
      loaded,
    });
    if (p.closeReason || !p.context || !p.chosen) {
      const reason = p.closeReason ?? 'no_candidate';
      await guardedTransition(ctx, triggerLock(triggerId), () => closeUnprocessed(models.triggers, triggerId, reason));
      logger.info({ triggerId, reason }, 'trigger closed: nothing to do');
      return { status: 'closed', reason };
    }
    const previewId = new Types.ObjectId();
    const message = messageFor(p.context, p.chosen, previewUrl(config, String(previewId)), p.issues);
    preview =
      (await insertPreview(models.previews, {
        _id: previewId,
        userId: trigger.userId,
        triggerId,
        triggerType: trigger.type,
        language: p.context.language,
        timeZone: p.context.timeZone,
        candidate: p.chosen,
        alternatives: JSON.stringify(p.candidates.slice(1)),
        summaryText: message.summary,
        message,
        expiresAt: new Date(now.getTime() + config.PREVIEW_TTL_MS),
      })) ?? (await models.previews.findOne({ triggerId }).lean<PreviewDoc>());
    if (!preview) throw new Error(`the preview of trigger ${triggerId} was a duplicate and is gone`);
  }

  const previewId = String(preview._id);
  const message =
    preview.message?.title && preview.message.summary
      ? {
          title: preview.message.title,
          summary: preview.message.summary,
          actionText: preview.message.actionText ?? undefined,
          actionUrl: preview.message.actionUrl ?? previewUrl(config, previewId),
        }
      : { title: preview.candidate.title ?? 'dueflow', summary: preview.summaryText, actionUrl: previewUrl(config, previewId) };
  const notification = await requestNotification(ctx, {
    userId: trigger.userId,
    dedupeKey: notificationDedupeKey(trigger.dedupeKey),
    triggerType: trigger.type,
    target: trigger.target,
    message,
    traceId: triggerId,
    triggerId,
    previewId,
    replyKind: 'preview',
  });
  const done = await guardedTransition(ctx, triggerLock(triggerId), () => markPreviewGenerated(models.triggers, triggerId, previewId, notification.id));
  if (!done) {
    // The user answered the preview before we got here (or the lease was taken over): keep their answer.
    const current = await models.triggers.findById(triggerId, { status: 1 }).lean();
    return { status: 'not_claimed', current: current?.status ?? 'missing' };
  }
  logger.info({ triggerId, previewId, notificationId: notification.id, kind: preview.candidate.kind }, 'preview generated');
  return { status: 'preview_generated', previewId, notificationId: notification.id };
}

/** An anomaly from another service: nothing to plan, so no preview; one message built from its title and detail. */
async function notifyAnomaly(ctx: Ctx, trigger: TriggerDoc, anomaly: NonNullable<TriggerDoc['anomaly']>): Promise<WorkflowOutcome> {
  const triggerId = String(trigger._id);
  const { timeZone, language } = planningSettings(await loadUserSettings(ctx, trigger.userId));
  const message = buildAnomalyMessage({
    language,
    timeZone,
    severity: anomaly.severity,
    title: anomaly.title,
    detail: anomaly.detail,
    occurredAt: anomaly.occurredAt,
    actionUrl: anomaly.actionUrl,
  });
  const notification = await requestNotification(ctx, {
    userId: trigger.userId,
    dedupeKey: notificationDedupeKey(trigger.dedupeKey),
    triggerType: trigger.type,
    target: trigger.target,
    message,
    traceId: triggerId,
    triggerId,
    urgent: anomaly.severity === 'critical',
    digestible: true,
    replyKind: 'anomaly',
    severity: anomaly.severity,
  });
  const done = await guardedTransition(ctx, triggerLock(triggerId), () => markNotified(ctx.models.triggers, triggerId, notification.id));
  if (!done) {
    const current = await ctx.models.triggers.findById(triggerId, { status: 1 }).lean();
    return { status: 'not_claimed', current: current?.status ?? 'missing' };
  }
  ctx.logger.info({ triggerId, notificationId: notification.id, severity: anomaly.severity }, 'anomaly notification requested');
  return { status: 'notified', notificationId: notification.id };
}
