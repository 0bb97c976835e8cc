/**
 * What a press of a card's button does. The callback is already verified (signature, freshness,
 * replay: http/routes/feishuCallback.ts); here:
 * 1. who may press: the card must be a message dueflow sent (context.open_message_id is a
 *    record's providerMessageId, and the button names that record), and the presser must be its
 *    recipient (operator.open_id, or union_id / user_id, equal to the channel's receive id);
 *    anyone else gets an error toast and nothing changes;
 * 2. the action, through the same domain functions the API uses (their rules apply: conflicts,
 *    expiry, once-only answers);
 * 3. the answer: a toast in the user's language, and the card redrawn as it now is. Other cards
 *    of the same subject (a re-notified suggestion) are redrawn by jobs, after the answer.
 */
import { z } from 'zod';
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import { loadChannel } from '../channels/store';
import { confirmPreview, rejectPreview } from '../previews/answer';
import { replyToReminder } from '../reminders/reply';
import { acknowledge } from '../anomalies/acknowledge';
import { loadUserSettings } from '../settings/store';
import type { Language } from '../workflow/message';
import { cardActions, renderCard, snoozeMs, stateLine, type CardAction } from './render';
import { loadCardView } from './load';
import { refreshCards } from './updates';

/** A card.action.trigger callback, verified and decrypted. */
export interface CardActionEvent {
  eventId: string;
  operator: { openId?: string; unionId?: string; userId?: string };
  /** The button's value, as dueflow put it on the card: it names the action and carries no authority. */
  value: unknown;
  openMessageId: string;
  openChatId?: string;
}

/** Feishu's callback answer: a toast, and the card redrawn in its new state. */
export interface CardActionAnswer {
  toast: { type: 'success' | 'info' | 'warning' | 'error'; content: string };
  card?: { type: 'raw'; data: object };
}

export type CardActionHandler = (event: CardActionEvent) => Promise<CardActionAnswer>;

type Ctx = Pick<AppContext, 'models' | 'store' | 'redis' | 'config' | 'queues' | 'feishuApp' | 'logger' | 'secrets'>;

const buttonValue = z.object({ action: z.enum(cardActions), record: z.string().regex(/^[0-9a-f]{24}$/) });

/** Which answers each kind of card takes. */
const actionsOf: Record<string, readonly CardAction[]> = {
  preview: ['confirm', 'reject'],
  reminder: ['done', 'snooze_10m', 'snooze_1h'],
  anomaly: ['acknowledge'],
};

const words = {
  'zh-CN': {
    notOurs: '这张卡片不是 dueflow 发送的，或按钮已失效。',
    notYou: '只有这条消息的接收人可以操作。',
    unknown: '这个按钮已不可用。',
    conflict: '该时段已被占用，未加入日程。',
    busy: '正在处理，请稍候。',
    alreadyAnswered: '已经处理过了。',
    expired: '该建议已过期。',
    rejectedAlready: '该建议已被拒绝。',
    confirmedAlready: '该建议已确认。',
    rejected: '已拒绝该建议。',
    done: '已标记完成。',
    acknowledgedAlready: '已确认过。',
  },
  en: {
    notOurs: 'This card was not sent by dueflow, or its button is no longer valid.',
    notYou: 'Only the person this message was sent to can answer it.',
    unknown: 'This button is no longer available.',
    conflict: 'That slot is no longer free: nothing was added.',
    busy: 'Still working on it: try again in a moment.',
    alreadyAnswered: 'Already answered.',
    expired: 'This suggestion expired.',
    rejectedAlready: 'This suggestion was rejected.',
    confirmedAlready: 'This suggestion was confirmed already.',
    rejected: 'Suggestion rejected.',
    done: 'Marked as done.',
    acknowledgedAlready: 'Acknowledged already.',
  },
} as const;

const toast = (type: CardActionAnswer['toast']['type'], content: string): CardActionAnswer['toast'] => ({ type, content });

/** Pure: whether the presser is the card's recipient. An email recipient is not in the callback: the message id alone proves it. */
export function isRecipient(operator: CardActionEvent['operator'], channel: { receiveIdType: string; receiveId: string }): boolean {
  switch (channel.receiveIdType) {
    case 'open_id':
      return operator.openId === channel.receiveId;
    case 'union_id':
      return operator.unionId === channel.receiveId;
    case 'user_id':
      return operator.userId === channel.receiveId;
    default:
      return true;
  }
}

export function createCardActionHandler(ctx: Ctx): CardActionHandler {
  return async (event) => {
    const value = buttonValue.safeParse(event.value);
    const record = value.success ? await cardRecord(ctx, value.data.record, event.openMessageId) : null;
    if (!record || !value.success) {
      ctx.logger.info({ eventId: event.eventId, openMessageId: event.openMessageId }, 'card press refused: not a card dueflow sent');
      return { toast: toast('error', `${words.en.notOurs} ${words['zh-CN'].notOurs}`) };
    }
    const { language } = await loadUserSettings(ctx, record.userId);
    const t = words[language];
    const channel = await loadChannel(ctx, record.userId, 'feishu_app');
    if (!channel || channel.config.kind !== 'feishu_app' || !isRecipient(event.operator, channel.config)) {
      ctx.logger.warn({ eventId: event.eventId, recordId: String(record._id) }, 'card press refused: not the recipient');
      return { toast: toast('error', t.notYou) };
    }
    const action = value.data.action;
    if (!actionsOf[record.replyKind ?? '']?.includes(action)) return { toast: toast('error', t.unknown) };
    const answer = await act(ctx, record, action, language);
    const view = await loadCardView(ctx, await reread(ctx, record));
    ctx.logger.info({ eventId: event.eventId, recordId: String(record._id), action, toast: answer.type }, 'card press answered');
    return { toast: answer, card: { type: 'raw', data: renderCard(view) } };
  };
}

/**
 * The record the button names, if it is the message the callback came from. A press can beat
 * the write of Feishu's message_id (the card is on screen as soon as Feishu accepted it): a
 * record still `sending` is given a moment.
 */
async function cardRecord(ctx: Ctx, recordId: string, openMessageId: string): Promise<NotificationRecord | null> {
  for (let waited = 0; ; waited += 100) {
    const record = await ctx.models.notificationRecords.findById(recordId).lean<NotificationRecord>();
    if (!record || record.channel !== 'feishu_app') return null;
    if (record.providerMessageId === openMessageId) return record;
    if (record.status !== 'sending' || record.providerMessageId || waited >= 2000) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The record as it is after the press (a reminder's answer lives on it). */
async function reread(ctx: Ctx, record: NotificationRecord): Promise<NotificationRecord> {
  return (await ctx.models.notificationRecords.findById(record._id).lean<NotificationRecord>()) ?? record;
}

/** Does what the button says; answers the toast. */
async function act(ctx: Ctx, record: NotificationRecord, action: CardAction, language: Language): Promise<CardActionAnswer['toast']> {
  const t = words[language];
  const recordId = String(record._id);
  const stateToast = async () => {
    const view = await loadCardView(ctx, await reread(ctx, record));
    return toast('success', stateLine(view) ?? t.alreadyAnswered);
  };
  switch (action) {
    case 'confirm': {
      const r = await confirmPreview(ctx, { userId: record.userId, previewId: record.previewId ?? '', via: 'feishu' });
      if (r.kind === 'confirmed') {
        if (!r.replayed) await refreshCards(ctx, { previewId: record.previewId! }, recordId);
        return r.replayed ? toast('info', t.confirmedAlready) : stateToast();
      }
      if (r.kind === 'conflict') return toast('error', t.conflict);
      if (r.kind === 'expired') return toast('warning', t.expired);
      if (r.kind === 'rejected') return toast('info', t.rejectedAlready);
      if (r.kind === 'in_progress') return toast('info', t.busy);
      return toast('error', t.unknown);
    }
    case 'reject': {
      const r = await rejectPreview(ctx, { userId: record.userId, previewId: record.previewId ?? '', via: 'feishu' });
      if (r.kind === 'rejected') {
        if (!r.replayed) await refreshCards(ctx, { previewId: record.previewId! }, recordId);
        return toast('success', t.rejected);
      }
      if (r.kind === 'confirmed') return toast('info', t.confirmedAlready);
      if (r.kind === 'expired') return toast('warning', t.expired);
      if (r.kind === 'in_progress') return toast('info', t.busy);
      return toast('error', t.unknown);
    }
    case 'done':
    case 'snooze_10m':
    case 'snooze_1h': {
      const r = await replyToReminder(ctx, record, action === 'done' ? { kind: 'done' } : { kind: 'snoozed', forMs: snoozeMs[action] });
      if (r.kind === 'already') return toast('info', t.alreadyAnswered);
      return action === 'done' ? toast('success', t.done) : stateToast();
    }
    case 'acknowledge': {
      const r = await acknowledge(ctx, { userId: record.userId, triggerId: record.triggerId ?? '', via: 'feishu', exceptRecordId: recordId });
      if (r.kind === 'already') return toast('info', t.acknowledgedAlready);
      if (r.kind === 'not_found') return toast('error', t.unknown);
      return stateToast();
    }
  }
}
