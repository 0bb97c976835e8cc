/**
 * The title and detail of the detectors' anomalies (schedule conflict, deadline risk), already in
 * the user's language and time zone: the trigger stores them as its `anomaly` and the workflow
 * sends them as they are (src/anomalies/message.ts adds the severity mark and the time). Pure.
 */
import { formatMoment, formatSlot, type Language } from '../workflow/message';

export interface TimedBlock {
  title: string;
  start: Date;
  end: Date;
}
export interface AnomalyText {
  title: string;
  detail: string;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Titles in the anomaly's title are short, so two fit in one line; the detail has room for more. */
const inTitle = (s: string) => clip(s.trim(), 40);
const inDetail = (s: string) => clip(s.trim(), 80);
const minutesBetween = (a: Date, b: Date) => Math.round((b.getTime() - a.getTime()) / 60_000);

/** "45 分钟" / "45 min"; from 2 hours on the hours too: "150 分钟（约 2.5 小时）" / "150 min (about 2.5 h)". */
export function formatDuration(minutes: number, language: Language): string {
  const hours = minutes >= 120 ? String(Math.round(minutes / 6) / 10) : null;
  return language === 'zh-CN' ? `${minutes} 分钟${hours ? `（约 ${hours} 小时）` : ''}` : `${minutes} min${hours ? ` (about ${hours} h)` : ''}`;
}

export interface ScheduleConflictText {
  language: Language;
  timeZone: string;
  /** The two blocks, the earlier first. */
  first: TimedBlock;
  second: TimedBlock;
  overlap: { start: Date; end: Date };
  /** Which of the two the user is asked to move. */
  move: 'first' | 'second';
  /** Where it fits (its own length), or null when no free slot of the coming 24 h does. */
  suggestion: { start: Date; end: Date } | null;
}

export function scheduleConflictText(m: ScheduleConflictText): AnomalyText {
  const zh = m.language === 'zh-CN';
  const slot = (b: { start: Date; end: Date }) => formatSlot(b.start, b.end, m.timeZone, m.language);
  const [a, b] = [m.first, m.second];
  const moved = m[m.move];
  const overlap = formatDuration(minutesBetween(m.overlap.start, m.overlap.end), m.language);
  const movedLength = formatDuration(minutesBetween(moved.start, moved.end), m.language);
  if (zh) {
    const advice = m.suggestion
      ? `建议把「${inDetail(moved.title)}」改到 ${slot(m.suggestion)}（接下来 24 小时工作时间里最早能放下它的空闲时段）。`
      : `接下来 24 小时的工作时间里没有能放下「${inDetail(moved.title)}」（${movedLength}）的空闲时段，请手动调整其中一个。`;
    return {
      title: `日程冲突：「${inTitle(a.title)}」与「${inTitle(b.title)}」时间重叠`,
      detail: `「${inDetail(a.title)}」（${slot(a)}）和「${inDetail(b.title)}」（${slot(b)}）重叠了 ${overlap}。\n${advice}`,
    };
  }
  const advice = m.suggestion
    ? `Suggestion: move "${inDetail(moved.title)}" to ${slot(m.suggestion)}, the first free slot in your working hours in the next 24 h that fits it.`
    : `No free slot in your working hours in the next 24 h fits "${inDetail(moved.title)}" (${movedLength}); please move one of them yourself.`;
  return {
    title: `Schedule conflict: "${inTitle(a.title)}" and "${inTitle(b.title)}" overlap`,
    detail: `"${inDetail(a.title)}" (${slot(a)}) and "${inDetail(b.title)}" (${slot(b)}) overlap by ${overlap}.\n${advice}`,
  };
}

export interface DeadlineRiskText {
  language: Language;
  timeZone: string;
  taskTitle: string;
  deadline: Date;
  /** Whole minutes, as computed by detectors/deadlineRisk.ts (shortfall = remaining − available). */
  remainingMinutes: number;
  availableMinutes: number;
  shortfallMinutes: number;
}

export function deadlineRiskText(m: DeadlineRiskText): AnomalyText {
  const zh = m.language === 'zh-CN';
  const deadline = formatMoment(m.deadline, m.timeZone, m.language);
  const d = (n: number) => formatDuration(n, m.language);
  return zh
    ? {
        title: `截止风险：「${inTitle(m.taskTitle)}」可能来不及完成`,
        detail: `「${inDetail(m.taskTitle)}」的截止时间是 ${deadline}。预计还需要 ${d(m.remainingMinutes)}，但截止前的工作时间里只有 ${d(m.availableMinutes)}空闲（已算上为它安排的时段），还差 ${d(m.shortfallMinutes)}。\n可以推迟截止时间、缩小范围，或为它腾出时间。`,
      }
    : {
        title: `Deadline at risk: "${inTitle(m.taskTitle)}"`,
        detail: `"${inDetail(m.taskTitle)}" is due ${deadline}. It needs ${d(m.remainingMinutes)} more, but your working hours before the deadline have only ${d(m.availableMinutes)} free (counting the time planned for it): ${d(m.shortfallMinutes)} short.\nConsider moving the deadline, cutting the scope or freeing time for it.`,
      };
}
