/**
 * Escalation of critical anomalies nobody acknowledged, run by the maintenance job:
 * step 1, `escalation.afterMinutes` after its message was sent, buzzes the message (Feishu's
 * urgent_app); step 2, as long again later, sends it to the user's fallback channel. Each step is
 * taken once (a guarded step transition on the trigger: of two workers one takes it, and a
 * restart finds it taken), is written to the record's history, and Acknowledge stops the rest.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import type { TriggerDoc } from '../db/trigger';
import { guardedTransition, lockName } from '../db/guarded';
import { loadChannel } from '../channels/store';
import { loadUserSettings, type UserSettings } from '../settings/store';
import { requestNotification } from '../notifications/request';
import { noteEscalation } from '../notifications/transitions';
import { beginEscalationStep, settleEscalationStep } from '../triggers/transitions';
import { refreshCards } from '../cards/updates';
import { emitEvent } from '../events/emit';

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'feishuApp' | 'logger' | 'secrets'>;

export interface EscalationRun {
  buzzed: number;
  fallbacks: number;
  skipped: number;
  failed: number;
}

/** Pure: the step due now, or null (acknowledged, not sent yet, not time yet, or both steps taken). */
export function dueEscalationStep(e: { sentAt?: Date | null; step: number; afterMinutes: number; acknowledged: boolean; now: Date }): 1 | 2 | null {
  if (e.acknowledged || !e.sentAt || e.step >= 2) return null;
  const next = (e.step + 1) as 1 | 2;
  return e.now.getTime() >= e.sentAt.getTime() + next * e.afterMinutes * 60_000 ? next : null;
}

const escalatedTitle = { 'zh-CN': '升级提醒：', en: 'Escalated: ' } as const;
/** Anomalies older than this are not escalated any more (their moment has passed). */
const lookBackMs = 7 * 86_400_000;

export async function escalateAnomalies(ctx: Ctx, now = new Date()): Promise<EscalationRun> {
  const run: EscalationRun = { buzzed: 0, fallbacks: 0, skipped: 0, failed: 0 };
  const candidates = await ctx.models.triggers
    .find({
      'anomaly.severity': 'critical',
      createdAt: { $gt: new Date(now.getTime() - lookBackMs) },
      'anomaly.acknowledgedAt': { $exists: false },
      notificationId: { $exists: true },
      'escalation.step': { $ne: 2 },
    })
    .limit(200)
    .lean<TriggerDoc[]>();
  for (const trigger of candidates) {
    const record = await ctx.models.notificationRecords
      .findById(trigger.notificationId, { history: 0, providerRequest: 0, providerResponse: 0 })
      .lean<NotificationRecord>();
    if (!record) continue;
    const settings = await loadUserSettings(ctx, trigger.userId);
    const step = dueEscalationStep({
      sentAt: record.sentAt,
      step: trigger.escalation?.step ?? 0,
      afterMinutes: settings.escalation.afterMinutes,
      acknowledged: false,
      now,
    });
    if (!step) continue;
    const triggerId = String(trigger._id);
    const begun = await guardedTransition(ctx, lockName('trigger', triggerId), () =>
      beginEscalationStep(ctx.models.triggers, { id: triggerId, step, at: now }),
    );
    if (!begun) continue;
    const result = step === 1 ? await buzz(ctx, record) : await fallback(ctx, { trigger, record, settings });
    const action = step === 1 ? 'buzz' : 'fallback';
    await guardedTransition(ctx, lockName('trigger', triggerId), () => settleEscalationStep(ctx.models.triggers, { id: triggerId, action, ...result }));
    await guardedTransition(ctx, lockName('notification', String(record._id)), () =>
      noteEscalation(ctx.models.notificationRecords, record._id, { at: now, action, outcome: result.outcome, detail: result.detail }),
    );
    if (step === 1 && result.outcome === 'done') await refreshCards(ctx, { recordId: String(record._id) });
    await emitEvent(ctx, {
      type: 'anomaly.escalated',
      key: `${triggerId}:${step}`,
      userId: trigger.userId,
      at: now,
      data: {
        anomalyId: triggerId,
        userId: trigger.userId,
        type: trigger.type,
        step,
        action,
        outcome: result.outcome,
        ...(result.detail ? { detail: result.detail } : {}),
        ...(result.recordId ? { fallbackRecordId: result.recordId } : {}),
      },
    });
    if (result.outcome === 'failed') run.failed++;
    else if (result.outcome === 'skipped') run.skipped++;
    else if (step === 1) run.buzzed++;
    else run.fallbacks++;
    ctx.logger.info({ triggerId, recordId: String(record._id), step, action, outcome: result.outcome, detail: result.detail }, 'anomaly escalated');
  }
  return run;
}

type StepResult = { outcome: 'done' | 'skipped' | 'failed'; detail?: string; recordId?: string };

/** Step 1: the app message buzzes its recipient (urgent_app takes open_ids). */
async function buzz(ctx: Ctx, record: NotificationRecord): Promise<StepResult> {
  if (record.channel !== 'feishu_app' || !record.providerMessageId || !ctx.feishuApp)
    return { outcome: 'skipped', detail: 'not sent through the app: there is no message to buzz' };
  const channel = await loadChannel(ctx, record.userId, 'feishu_app');
  if (channel?.config.kind !== 'feishu_app' || channel.config.receiveIdType !== 'open_id')
    return { outcome: 'skipped', detail: "buzzing needs the recipient's open_id" };
  const outcome = await ctx.feishuApp.buzz({ messageId: record.providerMessageId, openIds: [channel.config.receiveId] });
  return outcome.kind === 'sent' ? { outcome: 'done' } : { outcome: 'failed', detail: `${outcome.code}: ${outcome.detail ?? ''}` };
}

/** Step 2: the same message, urgent, to the fallback channel (once: its dedupe key names the anomaly). */
async function fallback(ctx: Ctx, s: { trigger: TriggerDoc; record: NotificationRecord; settings: UserSettings }): Promise<StepResult> {
  const to = s.settings.fallbackChannel;
  if (!to || to === s.record.channel) return { outcome: 'skipped', detail: 'no fallback channel is set' };
  const m = s.record.message;
  const triggerId = String(s.trigger._id);
  const copy = await requestNotification(ctx, {
    userId: s.record.userId,
    channel: to,
    dedupeKey: `escalation|${triggerId}`,
    triggerType: s.record.triggerType,
    target: { type: s.record.target.type, id: s.record.target.id },
    message: {
      title: `${escalatedTitle[s.settings.language]}${m.title}`.slice(0, 200),
      summary: m.summary,
      ...(m.actionUrl ? { actionUrl: m.actionUrl } : {}),
      ...(m.actionText ? { actionText: m.actionText } : {}),
    },
    traceId: triggerId,
    triggerId,
    urgent: true,
    replyKind: 'anomaly',
    severity: s.record.severity ?? 'critical',
  });
  return { outcome: 'done', recordId: copy.id, detail: `sent to ${to}` };
}
