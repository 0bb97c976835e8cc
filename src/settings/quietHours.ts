/**
 * Quiet hours, decided on the user's wall clock. Pure: no I/O, `now` is given.
 *
 * "Inside" means the local time of day is in [start, end) (or, when start > end, the range crosses
 * midnight). The end returned is the first instant from `now` on when that stops being true, so:
 * - an end that does not exist locally (a DST gap: 02:30 on a spring-forward day) ends at the jump (03:00);
 * - an end that happens twice (fall back) ends at the first occurrence not before `now`.
 */

import { DAY, MINUTE, minutesOf, wallClock } from '../time/zonedTime';

/** The first instant ≥ from at which the local wall clock reads `wall` or later (the wall clock only jumps back at fall-back). */
function firstInstantAtWall(wall: number, from: number, timeZone: string): number {
  // Offsets in force around that wall time; a day either side covers any transition near it.
  const offsets = new Set([-DAY, 0, DAY].map((d) => wallClock(wall + d, timeZone) - (wall + d)));
  const exact = [...offsets].map((o) => wall - o).filter((t) => t >= from && wallClock(t, timeZone) === wall).sort((a, b) => a - b);
  if (exact.length > 0) return exact[0];
  // The wall time is skipped (DST gap): find the jump over it.
  // Before the jump the clock reads less than `wall` (at wall - largest offset), after it more (at wall - smallest).
  let lo = Math.max(from, wall - Math.max(...offsets));
  let hi = Math.max(lo + 1, wall - Math.min(...offsets));
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallClock(mid, timeZone) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

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
  return new Date(firstInstantAtWall(endDay + end * MINUTE, now.getTime(), timeZone));
}
