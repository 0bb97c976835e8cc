/**
 * Quiet hours, decided on the user's wall clock. Pure: no I/O, `now` is given.
 *
 * "Inside" means the local time of day is in [start, end) (or, when start > end, the range crosses
 * midnight). The end returned is the first instant from `now` on when that stops being true, so:
 * - an end that does not exist locally (a DST gap: 02:30 on a spring-forward day) ends at the jump (03:00);
 * - an end that happens twice (fall back) ends at the first occurrence not before `now`.
 */

import { DAY, instantAtWall, MINUTE, minutesOf, wallClock } from '../time/zonedTime';

/** When `now` falls inside the user's quiet hours (in their time zone), the moment they end; otherwise null. */
export function quietHoursEnd(quietHours: { start: string; end: string } | null | undefined, timeZone: string, now: Date): Date | null {
  if (!quietHours) return null;
  const start = minutesOf(quietHours.start);
  const end = minutesOf(quietHours.end);
  if (start === end) return null;

  const wallNow = wallClock(now.getTime(), timeZone);
  const localMidnight = Math.floor(wallNow / DAY) * DAY;
  const minute = Math.floor((wallNow - localMidnight) / MINUTE);
  const crossesMidnight = start > end;
  const inside = crossesMidnight ? minute >= start || minute < end : minute >= start && minute < end;
  if (!inside) return null;

  // Before midnight in a range that crosses it, the end is tomorrow.
  const endDay = crossesMidnight && minute >= start ? localMidnight + DAY : localMidnight;
  return new Date(instantAtWall(endDay + end * MINUTE, timeZone, now.getTime()));
}
