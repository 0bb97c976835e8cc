/**
 * Free slots: the user's working hours inside a window, minus their blocks. Pure: no I/O.
 *
 * - Working hours are read on the user's wall clock, every local day the window touches; when
 *   start > end they cross midnight (22:00–06:00), when start = end they are the whole day.
 * - A slot starts on a 5-minute mark (so a suggestion reads 14:05, not 14:03:17) and is at least
 *   `minMinutes` long; shorter gaps are not worth suggesting.
 */
import { DAY, instantAtWall, localDay, MINUTE, minutesOf } from '../time/zonedTime';

export interface Interval {
  start: Date;
  end: Date;
}
export interface WorkingHours {
  start: string;
  end: string;
}

export const defaultWorkingHours: WorkingHours = { start: '08:00', end: '22:00' };
export const SLOT_STEP_MINUTES = 5;
export const MIN_SLOT_MINUTES = 15;

/** Working-hours intervals that overlap [from, to), clipped to it, in order. */
export function workingIntervals(from: Date, to: Date, timeZone: string, hours: WorkingHours): Interval[] {
  const startMin = minutesOf(hours.start);
  const endMin = minutesOf(hours.end);
  const lengthDays = endMin > startMin ? 0 : 1; // end on the next local day (or a whole day when equal)
  const out: Interval[] = [];
  // One day before, so hours that began yesterday and cross midnight are included.
  for (let day = localDay(from.getTime(), timeZone) - DAY; day <= localDay(to.getTime(), timeZone); day += DAY) {
    const s = instantAtWall(day + startMin * MINUTE, timeZone);
    const e = instantAtWall(day + lengthDays * DAY + endMin * MINUTE, timeZone);
    const start = Math.max(s, from.getTime());
    const end = Math.min(e, to.getTime());
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && last.end.getTime() >= start)
      last.end = new Date(Math.max(end, last.end.getTime())); // whole days join up
    else out.push({ start: new Date(start), end: new Date(end) });
  }
  return out;
}

/** `intervals` minus every busy interval (busy ones may overlap each other and be in any order). */
export function subtract(intervals: Interval[], busy: Interval[]): Interval[] {
  const sorted = [...busy].sort((a, b) => a.start.getTime() - b.start.getTime());
  const out: Interval[] = [];
  for (const free of intervals) {
    let cursor = free.start.getTime();
    const end = free.end.getTime();
    for (const b of sorted) {
      if (b.end.getTime() <= cursor || b.start.getTime() >= end) continue;
      if (b.start.getTime() > cursor) out.push({ start: new Date(cursor), end: b.start });
      cursor = Math.max(cursor, b.end.getTime());
      if (cursor >= end) break;
    }
    if (cursor < end) out.push({ start: new Date(cursor), end: new Date(end) });
  }
  return out;
}

export interface FreeSlotInput {
  from: Date;
  to: Date;
  timeZone: string;
  workingHours: WorkingHours;
  busy: Interval[];
  minMinutes?: number;
}

export function freeSlots(input: FreeSlotInput): Interval[] {
  const step = SLOT_STEP_MINUTES * MINUTE;
  const min = (input.minMinutes ?? MIN_SLOT_MINUTES) * MINUTE;
  return subtract(workingIntervals(input.from, input.to, input.timeZone, input.workingHours), input.busy)
    .map((s) => ({ start: new Date(Math.ceil(s.start.getTime() / step) * step), end: s.end }))
    .filter((s) => s.end.getTime() - s.start.getTime() >= min);
}

export const overlaps = (a: Interval, b: Interval) => a.start.getTime() < b.end.getTime() && b.start.getTime() < a.end.getTime();
