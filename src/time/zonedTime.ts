/**
 * Wall-clock arithmetic in a user's time zone, with Intl only. A "wall" time is the local date and
 * time written as if it were UTC, so days and minutes are plain arithmetic on it.
 */

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The local wall-clock time at instant t. */
export function wallClock(t: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(t))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) + (((t % 1000) + 1000) % 1000);
}

/**
 * The first instant (not before `from`) at which the local clock reads `wall`: the first one when
 * it happens twice (fall back), the moment of the jump when it does not happen at all (a DST gap).
 */
export function instantAtWall(wall: number, timeZone: string, from = -Infinity): number {
  // Offsets in force around that wall time; a day either side covers any transition near it.
  const offsets = new Set([-DAY, 0, DAY].map((d) => wallClock(wall + d, timeZone) - (wall + d)));
  const exact = [...offsets]
    .map((o) => wall - o)
    .filter((t) => t >= from && wallClock(t, timeZone) === wall)
    .sort((a, b) => a - b);
  if (exact.length > 0) return exact[0];
  // Skipped (DST gap): before the jump the clock reads less than `wall`, after it more.
  let lo = Math.max(from, wall - Math.max(...offsets));
  let hi = Math.max(lo + 1, wall - Math.min(...offsets));
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallClock(mid, timeZone) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Minutes after midnight of "HH:mm". */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
}

/** Local midnight (as a wall time) of the day containing instant t. */
export function localDay(t: number, timeZone: string): number {
  return Math.floor(wallClock(t, timeZone) / DAY) * DAY;
}
