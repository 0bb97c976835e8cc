/**
 * Per-user settings: the PUT body (validation + TS type + OpenAPI) and the answer. New settings
 * (working hours, language...) are added as optional fields with a default, so older clients'
 * PUTs keep working.
 */
import { z } from 'zod';
import { channelKinds } from '../db/notificationRecord';

/** IANA names only (offsets like +08:00 are not time zones: they know nothing of DST). Intl, not supportedValuesOf, which lacks aliases like UTC. */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:mm, 00:00 to 23:59');

export const quietHoursSchema = z
  .strictObject({ start: clockTime, end: clockTime })
  .superRefine((q, c) => {
    if (q.start === q.end) c.addIssue({ code: 'custom', path: ['end'], message: 'must differ from start (send quietHours: null for no quiet hours)' });
  })
  .meta({ description: 'Local times in timeZone; may cross midnight (22:00 to 07:00). Messages wait until the end.' });

export const languages = ['zh-CN', 'en'] as const;
/** A day: the missed-block detector looks this far back beyond the longest grace. */
export const MAX_MISSED_BLOCK_GRACE_MINUTES = 1440;
export const defaultWorkingHours = { start: '08:00', end: '22:00' };
export const defaultLanguage = 'zh-CN';
export const defaultEscalation = { afterMinutes: 15 };

export const escalationSchema = z
  .strictObject({
    afterMinutes: z
      .number()
      .min(0.1, 'must be at least 0.1 (6 seconds)')
      .max(1440, 'must be at most 1440 (a day)')
      .refine((m) => Math.round(m * 10) === m * 10, 'must have at most one decimal')
      .meta({ description: 'A critical anomaly not acknowledged this long after it was sent is buzzed; after as long again it goes to fallbackChannel' }),
  })
  .meta({ description: 'Escalation of critical anomalies; default afterMinutes 15' });

export const workingHoursSchema = z
  .strictObject({ start: clockTime, end: clockTime })
  .superRefine((w, c) => {
    if (w.end <= w.start) c.addIssue({ code: 'custom', path: ['end'], message: 'must be after start (working hours do not cross midnight)' });
  })
  .meta({ description: 'Local times in timeZone when free slots may be suggested; default 08:00 to 22:00' });

export const userSettingsBody = z
  .strictObject({
    timeZone: z
      .string()
      .max(64)
      // Stored as given: Node's ICU would "canonicalise" Asia/Kolkata back to Asia/Calcutta.
      .refine(isTimeZone, 'must be an IANA time zone name, like Asia/Shanghai or America/New_York')
      .meta({ description: 'IANA time zone name; quiet hours are read on this clock', example: 'Asia/Shanghai' }),
    quietHours: quietHoursSchema.nullable().optional().meta({ description: 'null or absent: no quiet hours' }),
    optOutTriggerTypes: z
      .array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a trigger type, like important_urgent_task'))
      .max(50)
      .default([])
      .transform((types) => [...new Set(types)])
      .meta({ description: 'Trigger types the user does not want to hear about' }),
    workingHours: workingHoursSchema.default(defaultWorkingHours),
    language: z.enum(languages, { message: "must be 'zh-CN' or 'en'" }).default(defaultLanguage).meta({ description: 'Language of messages' }),
    missedBlockGraceMinutes: z
      .number()
      .int('must be whole minutes')
      .min(0)
      .max(MAX_MISSED_BLOCK_GRACE_MINUTES)
      .nullable()
      .optional()
      .meta({ description: "Minutes after a planned block's end before it counts as missed (null or absent: the service default, 15)" }),
    primaryChannel: z
      .enum(channelKinds, { message: `must be one of ${channelKinds.join(', ')}` })
      .nullable()
      .optional()
      .meta({
        description: 'Where everything dueflow sends goes; null or absent: the enabled channel (feishu_app, then feishu_bot, then feishu when several are)',
      }),
    fallbackChannel: z
      .enum(channelKinds, { message: `must be one of ${channelKinds.join(', ')}` })
      .nullable()
      .optional()
      .meta({ description: 'Where an unacknowledged critical anomaly goes at the second escalation step; null or absent: none' }),
    escalation: escalationSchema.default(defaultEscalation),
  })
  .superRefine((s, c) => {
    if (s.fallbackChannel && s.fallbackChannel === s.primaryChannel)
      c.addIssue({ code: 'custom', path: ['fallbackChannel'], message: 'must differ from primaryChannel' });
  });
export type UserSettingsBody = z.output<typeof userSettingsBody>;

export const userSettingsView = z.object({
  timeZone: z.string(),
  quietHours: z.object({ start: z.string(), end: z.string() }).nullable(),
  optOutTriggerTypes: z.array(z.string()),
  workingHours: z.object({ start: z.string(), end: z.string() }),
  language: z.enum(languages),
  missedBlockGraceMinutes: z.number().nullable().meta({ description: 'null: the service default' }),
  primaryChannel: z.enum(channelKinds).nullable(),
  fallbackChannel: z.enum(channelKinds).nullable(),
  escalation: z.object({ afterMinutes: z.number() }),
});
