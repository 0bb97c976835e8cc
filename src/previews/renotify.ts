/**
 * The one reminder before a preview expires: a preview of an important_urgent_task trigger still
 * `ready` within PREVIEW_RENOTIFY_BEFORE_MS of its expiry is re-notified once (0 disables). Run by
 * the maintenance `reconcile` job (every RECONCILE_INTERVAL_MS), so a preview is reminded of at
 * most that late inside the window.
 *
 * Once, never more: the reminder's dedupe key is `preview-reminder|<previewId>` and the unique
 * (channel, dedupeKey) index of notification records decides between concurrent runs and
 * processes; a record under that key on any channel counts (a user who switched channels in between
 * is not reminded twice). `reminderRequestedAt` on the preview only spares later runs the work.
 */
import type { AppContext } from '../context';
import type { PreviewDoc } from '../db/preview';
import { channelKinds } from '../db/notificationRecord';
import { requestNotification } from '../notifications/request';
import { loadUserSettings } from '../settings/store';
import { wallClock } from '../time/zonedTime';
import { planningSettings } from '../workflow/context';
import { languages, type Language } from '../workflow/message';
import { previewUrl } from '../workflow/plan';
import { guardedOrNull, lockName } from '../db/guarded';
import { markReminderRequested } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'store' | 'redis'>;

export const reminderTriggerType = 'important_urgent_task';
export const reminderDedupeKey = (previewId: string) => `preview-reminder|${previewId}`;
/** Previews one run handles at most (the soonest to expire first); the next run takes the rest. */
const BATCH = 500;

const pad = (n: number) => String(n).padStart(2, '0');
/** "14:05" in the time zone. */
export function formatClock(t: Date, timeZone: string): string {
  const w = new Date(wallClock(t.getTime(), timeZone));
  return `${pad(w.getUTCHours())}:${pad(w.getUTCMinutes())}`;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The reminder: the preview's own message, prefixed, with its expiry in the user's time zone and the same link. */
export function buildReminderMessage(
  p: Pick<PreviewDoc, 'message' | 'summaryText' | 'candidate' | 'expiresAt'>,
  language: Language,
  timeZone: string,
  actionUrl: string,
) {
  const zh = language === 'zh-CN';
  const at = formatClock(p.expiresAt, timeZone);
  const original = p.message?.title ?? (p.candidate.title ? (zh ? `「${p.candidate.title}」` : `"${p.candidate.title}"`) : 'dueflow');
  const summary = p.message?.summary || p.summaryText;
  return zh
    ? {
        title: clip(`提醒：${original}`, 200),
        summary: clip(`这条建议将在 ${at} 过期，还没有确认。\n${summary}`, 20_000),
        actionText: p.message?.actionText ?? '确认安排',
        actionUrl,
      }
    : {
        title: clip(`Reminder: ${original}`, 200),
        summary: clip(`This suggestion expires at ${at} and is not confirmed yet.\n${summary}`, 20_000),
        actionText: p.message?.actionText ?? 'Confirm',
        actionUrl,
      };
}

export async function renotifyExpiringPreviews(ctx: Ctx, now = new Date()): Promise<{ renotified: number }> {
  const { models, config, logger } = ctx;
  const before = config.PREVIEW_RENOTIFY_BEFORE_MS;
  if (!before) return { renotified: 0 };
  const due = await models.previews
    .find({
      status: 'ready',
      expiresAt: { $gt: now, $lte: new Date(now.getTime() + before) },
      triggerType: reminderTriggerType,
      reminderRequestedAt: { $exists: false },
    })
    .sort({ expiresAt: 1 })
    .limit(BATCH)
    .lean<PreviewDoc[]>();
  let renotified = 0;
  for (const p of due) {
    const previewId = String(p._id);
    const dedupeKey = reminderDedupeKey(previewId);
    try {
      // Already reminded (on any channel): nothing to send, just spare the next runs.
      if (!(await models.notificationRecords.exists({ channel: { $in: [...channelKinds] }, dedupeKey }))) {
        const trigger = await models.triggers.findById(p.triggerId, { target: 1 }).lean<{ target?: { type: string; id: string } }>();
        const target =
          trigger?.target?.type && trigger.target.id
            ? { type: trigger.target.type, id: trigger.target.id }
            : { type: 'task', id: p.candidate.taskId ?? p.triggerId };
        let language = (languages as readonly string[]).includes(p.language ?? '') ? (p.language as Language) : undefined;
        let timeZone = p.timeZone ?? undefined;
        if (!language || !timeZone) {
          const s = planningSettings(await loadUserSettings(ctx, p.userId));
          language ??= s.language;
          timeZone ??= s.timeZone;
        }
        const actionUrl = p.message?.actionUrl ?? previewUrl(config, previewId);
        const result = await requestNotification(ctx, {
          userId: p.userId,
          dedupeKey,
          triggerType: p.triggerType,
          target,
          message: buildReminderMessage(p, language, timeZone, actionUrl),
          traceId: p.triggerId,
          triggerId: p.triggerId,
          previewId,
          replyKind: 'preview',
        });
        if (!result.reused) {
          renotified++;
          logger.info({ previewId, triggerId: p.triggerId, notificationId: result.id, expiresAt: p.expiresAt }, 'preview reminder requested');
        }
      }
      // Under the preview's lock: an answer being written now is not written back over.
      await guardedOrNull(ctx, lockName('preview', previewId), () => markReminderRequested(models.previews, p._id, now));
    } catch (err) {
      // One preview's failure does not stop the others; the next run tries it again.
      logger.warn({ previewId, err: (err as Error).message }, 'could not request a preview reminder');
    }
  }
  return { renotified };
}
