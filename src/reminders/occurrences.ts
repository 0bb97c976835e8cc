/**
 * When a reminder's occurrences are: a one-off's `at`, or a cron expression read in the user's
 * time zone (cron-parser, the library BullMQ's own schedulers use), bounded by endAt and count.
 */
import { CronExpressionParser } from 'cron-parser';

/** What the next occurrence depends on. */
export interface Schedule {
  at?: Date | null;
  cron?: string | null;
  timeZone: string;
  endAt?: Date | null;
  count?: number | null;
  /** Occurrences sent so far (count bounds it). */
  firedCount: number;
}

/** How many occurrences the minimum-interval check looks at, and how far ahead at most. */
const intervalSamples = 200;
const intervalHorizonMs = 2 * 366 * 86_400_000;

const cronHelp = 'must be a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), like "0 9 * * 1-5"';

/** The first occurrence of `expr` in `timeZone` strictly after `after`; null when there is none (cron-parser gives up). */
export function nextCronOccurrence(expr: string, timeZone: string, after: Date): Date | null {
  const parsed = CronExpressionParser.parse(expr, { tz: timeZone, currentDate: after });
  try {
    return parsed.next().toDate();
  } catch {
    return null;
  }
}

/**
 * Why `expr` is not an acceptable reminder schedule, or undefined when it is. The syntax and the
 * interval are checked in UTC: a zone shifts occurrences but hardly their spacing.
 */
export function cronProblem(expr: string, minIntervalMs: number, now = new Date()): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) return cronHelp;
  // cron-parser's H picks a random value per parse unless seeded: a schedule must mean one thing.
  if (/(^|[\s,(/-])H/.test(expr)) return 'H (hashed) values are not supported; name the minute, hour... explicitly';
  let parsed: ReturnType<typeof CronExpressionParser.parse>;
  let previous: number;
  try {
    parsed = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: now });
    previous = parsed.next().toDate().getTime();
  } catch (err) {
    return `${cronHelp} (${(err as Error).message})`;
  }
  // The closest pair shows within the first cycle of the schedule; sparse ones stop at the horizon.
  const horizon = now.getTime() + intervalHorizonMs;
  for (let i = 1; i < intervalSamples && previous <= horizon; i++) {
    let t: number;
    try {
      t = parsed.next().toDate().getTime();
    } catch {
      break;
    }
    if (t - previous < minIntervalMs) return `occurs more often than once every ${formatMs(minIntervalMs)} (the shortest interval allowed)`;
    previous = t;
  }
  return undefined;
}

/** The next occurrence strictly after `after`, or null when the reminder has none left. */
export function nextOccurrence(s: Schedule, after: Date): Date | null {
  if (s.count != null && s.firedCount >= s.count) return null;
  if (s.at) return s.at.getTime() > after.getTime() ? s.at : null;
  if (!s.cron) return null;
  const next = nextCronOccurrence(s.cron, s.timeZone, after);
  if (!next || (s.endAt && next.getTime() > s.endAt.getTime())) return null;
  return next;
}

/** Occurrences of a cron schedule in (from, to], at most `cap` counted: what one caught-up message stands for. */
export function occurrencesBetween(expr: string, timeZone: string, from: Date, to: Date, cap = 1000): number {
  const parsed = CronExpressionParser.parse(expr, { tz: timeZone, currentDate: from });
  let n = 0;
  try {
    while (n < cap && parsed.next().toDate().getTime() <= to.getTime()) n++;
  } catch {
    // cron-parser found no further occurrence
  }
  return n;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
