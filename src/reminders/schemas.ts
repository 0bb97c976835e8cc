/**
 * Reminders as the API sees them: request bodies (validation + TS type + OpenAPI) and answers.
 * Datetimes are ISO 8601 with a zone; answers are UTC. The bodies depend on one setting (the
 * shortest interval a cron may have), so they are built from the config.
 */
import { z } from 'zod';
import type { Config } from '../config';
import { occurrenceOutcomes } from '../db/reminder';
import { cronProblem } from './occurrences';

const isoDate = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 datetime with a zone, like 2026-01-31T18:00:00Z or 2026-02-01T02:00:00+08:00' })
  .transform((v) => new Date(v));
const objectId = z.string().regex(/^[0-9a-f]{24}$/, 'must be an id returned by this API');

const title = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');
const summary = z.string().trim().min(1, 'must not be empty').max(4000, 'at most 4000 characters');
const count = z
  .number({ message: 'must be a whole number of messages, at least 1' })
  .int('must be a whole number of messages, at least 1')
  .min(1, 'must be at least 1')
  .max(100_000, 'at most 100000');

const inFuture = (d: unknown, now: number) => d instanceof Date && d.getTime() > now;

export function reminderBodies(config: Pick<Config, 'REMINDER_MIN_INTERVAL_MS'>) {
  const cron = z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'at most 200 characters')
    .superRefine((v, c) => {
      const problem = cronProblem(v, config.REMINDER_MIN_INTERVAL_MS);
      if (problem) c.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: '5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), read in the user\'s time zone, like "0 9 * * 1-5"' });

  const create = z
    .strictObject({
      message: z.strictObject({ title, summary }).meta({ description: 'What is sent, as written' }),
      at: isoDate.optional().meta({ description: 'A one-off reminder: when (in the future). Exactly one of at and cron.' }),
      cron: cron.optional(),
      endAt: isoDate.optional().meta({ description: 'Recurring only: no occurrence after this' }),
      count: count.optional().meta({ description: 'Recurring only: at most this many messages' }),
    })
    .superRefine((b, c) => {
      const now = Date.now();
      if (b.at === undefined && b.cron === undefined) {
        for (const path of ['at', 'cron'])
          c.addIssue({ code: 'custom', path: [path], message: 'give either at (a one-off time) or cron (a recurring schedule)' });
      } else if (b.at !== undefined && b.cron !== undefined) {
        for (const path of ['at', 'cron']) c.addIssue({ code: 'custom', path: [path], message: 'give either at or cron, not both' });
      }
      if (b.at instanceof Date && !inFuture(b.at, now)) c.addIssue({ code: 'custom', path: ['at'], message: 'must be in the future' });
      if (b.at !== undefined && b.cron === undefined) {
        if (b.endAt !== undefined) c.addIssue({ code: 'custom', path: ['endAt'], message: 'only for a recurring reminder (cron); a one-off fires once' });
        if (b.count !== undefined) c.addIssue({ code: 'custom', path: ['count'], message: 'only for a recurring reminder (cron); a one-off fires once' });
      }
      if (b.endAt instanceof Date && !inFuture(b.endAt, now)) c.addIssue({ code: 'custom', path: ['endAt'], message: 'must be in the future' });
    });

  /** Fields left out stay; at switches to a one-off (clearing cron, endAt, count), cron to recurring (clearing at); null clears endAt or count. */
  const patch = z
    .strictObject({
      message: z.strictObject({ title: title.optional(), summary: summary.optional() }).optional(),
      at: isoDate.optional(),
      cron: cron.optional(),
      endAt: isoDate.nullable().optional(),
      count: count.nullable().optional(),
    })
    .superRefine((b, c) => {
      const now = Date.now();
      if (b.at !== undefined && b.cron !== undefined) {
        for (const path of ['at', 'cron']) c.addIssue({ code: 'custom', path: [path], message: 'give either at or cron, not both' });
      }
      if (b.at instanceof Date && !inFuture(b.at, now)) c.addIssue({ code: 'custom', path: ['at'], message: 'must be in the future' });
      if (b.endAt instanceof Date && !inFuture(b.endAt, now)) c.addIssue({ code: 'custom', path: ['endAt'], message: 'must be in the future' });
    });

  return { create, patch };
}
export type ReminderCreateBody = z.output<ReturnType<typeof reminderBodies>['create']>;
export type ReminderPatchBody = z.output<ReturnType<typeof reminderBodies>['patch']>;

export const reminderListQuery = z.strictObject({
  status: z.enum(['active', 'completed']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: objectId.optional().meta({ description: 'The nextCursor of the previous page' }),
});
export type ReminderListQuery = z.output<typeof reminderListQuery>;

export const reminderView = z.object({
  id: z.string(),
  message: z.object({ title: z.string(), summary: z.string() }),
  at: z.iso.datetime().nullable(),
  cron: z.string().nullable(),
  timeZone: z.string().meta({ description: "The user's time zone when the schedule was last written; cron is read in it" }),
  endAt: z.iso.datetime().nullable(),
  count: z.number().nullable(),
  firedCount: z.number().meta({ description: 'Occurrences fired so far, one message each (occurrences missed while no worker ran are caught up as one)' }),
  nextAt: z.iso.datetime().nullable().meta({ description: 'The next occurrence; null when none is left' }),
  status: z.enum(['active', 'completed']),
  lastOccurrence: z
    .object({ at: z.iso.datetime(), outcome: z.enum(occurrenceOutcomes), reason: z.string().nullable(), triggerId: z.string().nullable() })
    .nullable()
    .meta({ description: 'What the last occurrence came to; skipped with reason missed_beyond_catchup when it was claimed too late' }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type ReminderView = z.infer<typeof reminderView>;
