/**
 * The Feishu message of a preview, in the user's language and time zone: the task's title, the
 * suggested slot ("周四 14:00–15:00" / "Thu 14:00–15:00"), the deadline and the link to confirm.
 * Pure; dates are formatted by hand so the text does not depend on the runtime's ICU data.
 */
import type { candidateKinds } from '../db/preview';

type CandidateKind = (typeof candidateKinds)[number];
import { DAY, wallClock } from '../time/zonedTime';

export const languages = ['zh-CN', 'en'] as const;
export type Language = (typeof languages)[number];

const weekdays: Record<Language, string[]> = {
  'zh-CN': ['周日', '周一', '周二', '周三', '周四', '周五', '周六'],
  en: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'],
};
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n: number) => String(n).padStart(2, '0');

function parts(t: Date, timeZone: string) {
  const w = new Date(wallClock(t.getTime(), timeZone));
  return {
    day: Math.floor(w.getTime() / DAY),
    weekday: w.getUTCDay(),
    month: w.getUTCMonth(),
    date: w.getUTCDate(),
    time: `${pad(w.getUTCHours())}:${pad(w.getUTCMinutes())}`,
  };
}

/** "周四 14:00–15:00" / "Thu 14:00–15:00"; an end on the next day names its weekday too. */
export function formatSlot(start: Date, end: Date, timeZone: string, language: Language): string {
  const s = parts(start, timeZone);
  const e = parts(end, timeZone);
  const names = weekdays[language];
  const endText = e.day === s.day ? e.time : `${names[e.weekday]} ${e.time}`;
  return `${names[s.weekday]} ${s.time}–${endText}`;
}

/** "18:05" on the user's clock. */
export function formatClock(t: Date, timeZone: string): string {
  return parts(t, timeZone).time;
}

/** "11月28日 周四 18:00" / "Thu 28 Nov 18:00". */
export function formatMoment(t: Date, timeZone: string, language: Language): string {
  const p = parts(t, timeZone);
  return language === 'zh-CN'
    ? `${p.month + 1}月${p.date}日 ${weekdays['zh-CN'][p.weekday]} ${p.time}`
    : `${weekdays.en[p.weekday]} ${p.date} ${months[p.month]} ${p.time}`;
}

export interface MessageInput {
  language: Language;
  timeZone: string;
  kind: CandidateKind;
  triggerType: string;
  taskTitle: string;
  deadline?: Date | null;
  /** The suggested slot (add_task_to_schedule, create_makeup_block). */
  slot?: { start: Date; end: Date } | null;
  /** Minutes the task needs; said when the slot is shorter. */
  neededMinutes: number;
  /** Why the user is asked (ask_user): no free slot at all, or none long enough. */
  issue?: 'no_free_slot' | 'not_enough_capacity';
  /** The block not done (missed_block): named with its planned time. */
  block?: { title: string; start: Date; end: Date } | null;
  /** PUBLIC_BASE_URL/app/previews/<id> */
  actionUrl: string;
}

export interface Message {
  title: string;
  summary: string;
  actionText: string;
  actionUrl: string;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function buildMessage(m: MessageInput): Message {
  const title = clip(m.taskTitle.trim(), 80);
  const zh = m.language === 'zh-CN';
  const deadline = m.deadline ? formatMoment(m.deadline, m.timeZone, m.language) : zh ? '未设置' : 'none';
  const slotMinutes = m.slot ? Math.round((m.slot.end.getTime() - m.slot.start.getTime()) / 60_000) : 0;
  const slot = m.slot ? formatSlot(m.slot.start, m.slot.end, m.timeZone, m.language) : '';
  const short =
    m.slot && slotMinutes < m.neededMinutes
      ? zh
        ? `（预计需要 ${m.neededMinutes} 分钟，这段空闲只有 ${slotMinutes} 分钟）`
        : ` (it needs ${m.neededMinutes} min; this is the longest free slot)`
      : '';
  const blockTitle = m.block ? clip(m.block.title.trim(), 80) : title;
  const blockTime = m.block ? formatSlot(m.block.start, m.block.end, m.timeZone, m.language) : '';
  const missed = m.triggerType === 'missed_block';
  const why = missed
    ? zh
      ? `计划在 ${blockTime} 的「${blockTitle}」已经结束，但还没有标记完成`
      : `"${blockTitle}", planned for ${blockTime}, has ended but is not marked done`
    : m.triggerType === 'unfinished_feedback'
      ? zh
        ? `你反馈「${title}」没有完成`
        : `You reported "${title}" as unfinished`
      : zh
        ? `重要且紧急的任务「${title}」还没有排进日程`
        : `"${title}" is important and urgent but not in your schedule yet`;

  switch (m.kind) {
    case 'add_task_to_schedule':
    case 'create_makeup_block': {
      const makeup = m.kind === 'create_makeup_block';
      return zh
        ? {
            title: missed ? `要重新安排「${blockTitle}」吗？` : makeup ? `为「${title}」补一段时间？` : `把「${title}」排进日程？`,
            summary: `${why}。\n${makeup ? '建议补做时段' : '建议时段'}：${slot}（${slotMinutes} 分钟）${short}\n截止时间：${deadline}\n${missed ? '要改到这个时段吗？确认后会加入你的日程。' : '确认后会加入你的日程。'}`,
            actionText: '确认安排',
            actionUrl: m.actionUrl,
          }
        : {
            title: missed ? `Reschedule "${blockTitle}"?` : makeup ? `Make up for "${title}"?` : `Schedule "${title}"?`,
            summary: `${why}.\n${makeup ? 'Suggested make-up slot' : 'Suggested slot'}: ${slot} (${slotMinutes} min)${short}\nDeadline: ${deadline}\n${missed ? 'Reschedule it to this slot? Confirm to add it to your schedule.' : 'Confirm to add it to your schedule.'}`,
            actionText: 'Confirm',
            actionUrl: m.actionUrl,
          };
    }
    case 'ask_user': {
      const gap =
        m.issue === 'not_enough_capacity'
          ? zh
            ? `接下来 24 小时的工作时间里没有足够长的空闲（需要 ${m.neededMinutes} 分钟）`
            : `your working hours in the next 24 h have no free slot long enough (it needs ${m.neededMinutes} min)`
          : zh
            ? '接下来 24 小时的工作时间里没有空闲时段'
            : 'your working hours in the next 24 h have no free slot';
      return zh
        ? {
            title: `「${title}」需要你来安排`,
            summary: `${why}，${gap}。\n截止时间：${deadline}\n请打开看看怎么安排。`,
            actionText: '查看',
            actionUrl: m.actionUrl,
          }
        : {
            title: `"${title}" needs your decision`,
            summary: `${why}, and ${gap}.\nDeadline: ${deadline}\nOpen it to decide what to do.`,
            actionText: 'Open',
            actionUrl: m.actionUrl,
          };
    }
    case 'notify_only':
      return zh
        ? { title: `「${title}」需要注意`, summary: `${why}。\n截止时间：${deadline}`, actionText: '查看', actionUrl: m.actionUrl }
        : { title: `"${title}" needs attention`, summary: `${why}.\nDeadline: ${deadline}`, actionText: 'Open', actionUrl: m.actionUrl };
  }
}
