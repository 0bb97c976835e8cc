/**
 * A notification as a Feishu card (JSON 2.0), in the user's language and time zone, drawn from
 * what is true now: a suggestion waiting (Confirm / Reject) or answered, a reminder open (Done,
 * Snooze) or answered, an anomaly open (Acknowledge) or acknowledged. Pure, so the first send,
 * the redraw in a callback's answer and a later PATCH all draw the same card for the same state.
 * Button values name the action and the record only: the callback proves who pressed, not them.
 */
import { formatClock, formatSlot } from '../workflow/message';
import { fitMessage } from '../providers/http';
import type { CardState, CardView, NotificationMessage } from '../providers/types';

/** Feishu refuses cards over 30 KB; the margin covers the JSON string's escaping inside the request. */
export const MAX_CARD_BYTES = 30 * 1024 - 1024;

export const cardActions = ['confirm', 'reject', 'done', 'snooze_10m', 'snooze_1h', 'acknowledge'] as const;
export type CardAction = (typeof cardActions)[number];
export const snoozeMs: Record<'snooze_10m' | 'snooze_1h', number> = { snooze_10m: 10 * 60_000, snooze_1h: 60 * 60_000 };

export type { CardState, CardView };

const text = {
  'zh-CN': {
    confirm: '确认',
    reject: '拒绝',
    done: '完成',
    snooze_10m: '10 分钟后提醒',
    snooze_1h: '1 小时后提醒',
    acknowledge: '确认收到',
    open: '在 dueflow 中查看',
    added: (slot: string) => `已加入日程：${slot}`,
    confirmed: '已确认',
    rejected: '已拒绝',
    expired: '该建议已过期',
    doneAt: (t: string) => `已完成（${t}）`,
    snoozed: (t: string) => `已推迟到 ${t}`,
    acknowledged: (t: string) => `你已于 ${t} 确认收到`,
    buzzed: (t: string) => `未确认，已于 ${t} 加急提醒`,
  },
  en: {
    confirm: 'Confirm',
    reject: 'Reject',
    done: 'Done',
    snooze_10m: 'Snooze 10 min',
    snooze_1h: 'Snooze 1 h',
    acknowledge: 'Acknowledge',
    open: 'Open in dueflow',
    added: (slot: string) => `Added to your schedule: ${slot}`,
    confirmed: 'Confirmed',
    rejected: 'Rejected',
    expired: 'This suggestion expired',
    doneAt: (t: string) => `Done at ${t}`,
    snoozed: (t: string) => `Snoozed until ${t}`,
    acknowledged: (t: string) => `Acknowledged by you at ${t}`,
    buzzed: (t: string) => `Not acknowledged: buzzed at ${t}`,
  },
} as const;

/** The line saying how the card was answered, in the user's words; undefined while it waits. */
export function stateLine(view: Pick<CardView, 'language' | 'timeZone' | 'state'>): string | undefined {
  const t = text[view.language];
  const clock = (d: Date) => formatClock(d, view.timeZone);
  const s = view.state;
  switch (s.kind) {
    case 'preview':
      if (s.status === 'confirmed') return s.slot ? t.added(formatSlot(s.slot.start, s.slot.end, view.timeZone, view.language)) : t.confirmed;
      if (s.status === 'rejected') return t.rejected;
      if (s.status === 'expired') return t.expired;
      return undefined;
    case 'reminder':
      if (s.status === 'done') return t.doneAt(clock(s.at));
      if (s.status === 'snoozed') return t.snoozed(clock(s.until));
      return undefined;
    case 'anomaly':
      if (s.status === 'acknowledged') return t.acknowledged(clock(s.at));
      return s.buzzedAt ? t.buzzed(clock(s.buzzedAt)) : undefined;
    default:
      return undefined;
  }
}

/** The buttons that still mean something in this state. */
export function actionsFor(state: CardState): CardAction[] {
  if (state.kind === 'preview' && state.status === 'ready') return ['confirm', 'reject'];
  if (state.kind === 'reminder' && state.status === 'open') return ['done', 'snooze_10m', 'snooze_1h'];
  if (state.kind === 'anomaly' && state.status === 'open') return ['acknowledge'];
  return [];
}

function template(state: CardState): string {
  if (state.kind === 'anomaly') {
    if (state.status === 'acknowledged') return 'grey';
    return state.severity === 'critical' ? 'red' : state.severity === 'warning' ? 'orange' : 'blue';
  }
  if (state.kind === 'preview' && state.status !== 'ready') return state.status === 'confirmed' ? 'green' : 'grey';
  if (state.kind === 'reminder' && state.status !== 'open') return state.status === 'done' ? 'green' : 'grey';
  return 'blue';
}

const plain = (content: string) => ({ tag: 'plain_text', content });

function button(view: CardView, action: CardAction, primary: boolean) {
  return {
    tag: 'button',
    text: plain(text[view.language][action]),
    type: primary ? 'primary' : 'default',
    width: 'default',
    behaviors: [{ type: 'callback', value: { action, record: view.recordId } }],
  };
}

function build(view: CardView, message: NotificationMessage): object {
  const t = text[view.language];
  const elements: object[] = [{ tag: 'div', text: plain(message.summary) }];
  const line = stateLine(view);
  if (line) elements.push({ tag: 'div', text: { tag: 'plain_text', content: line, text_color: 'grey' } });
  const buttons: object[] = actionsFor(view.state).map((a, i) => button(view, a, i === 0));
  if (message.actionUrl) {
    buttons.push({
      tag: 'button',
      text: plain(message.actionText || t.open),
      type: 'default',
      width: 'default',
      behaviors: [{ type: 'open_url', default_url: message.actionUrl }],
    });
  }
  if (buttons.length) {
    elements.push({
      tag: 'column_set',
      flex_mode: 'flow',
      horizontal_spacing: '8px',
      columns: buttons.map((b) => ({ tag: 'column', width: 'auto', elements: [b] })),
    });
  }
  return {
    schema: '2.0',
    // update_multi: one card for everyone who sees it, so a PATCH redraws it in place.
    config: { update_multi: true, summary: { content: message.title } },
    header: { title: plain(message.title), template: template(view.state) },
    body: { elements },
  };
}

/** The card, its summary (then title) trimmed to fit Feishu's 30 KB: never refused for size. */
export function renderCard(view: CardView): object {
  return fitMessage(view.message, (m) => build(view, m), MAX_CARD_BYTES);
}
