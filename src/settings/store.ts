/** Reading and replacing a user's settings; a user without a document has the defaults. */
import type { AppContext } from '../context';
import { defaultTimeZone, type UserSettingsDoc } from '../db/userSettings';
import { defaultEscalation, defaultLanguage, defaultWorkingHours, isTimeZone, languages, type UserSettingsBody } from './schemas';
import { channelKinds, type ChannelKind } from '../db/notificationRecord';
import { isDuplicateKey } from '../db/errors';
import { cachedRead, type UserCacheHandle } from './cache';

export interface UserSettings {
  timeZone: string;
  quietHours: { start: string; end: string } | null;
  optOutTriggerTypes: string[];
  /** Local times (HH:mm, start before end) in which free slots are looked for. */
  workingHours: { start: string; end: string };
  /** Language of messages. */
  language: (typeof languages)[number];
  /** Minutes after a planned block's end before it is missed; null: the service's MISSED_BLOCK_GRACE_MS. */
  missedBlockGraceMinutes: number | null;
  /** Where messages go; null: the enabled channel. */
  primaryChannel: ChannelKind | null;
  /** Where an unacknowledged critical anomaly goes at the second escalation step. */
  fallbackChannel: ChannelKind | null;
  escalation: { afterMinutes: number };
}

const asChannelKind = (v: unknown): ChannelKind | null => (channelKinds.includes(v as never) ? (v as ChannelKind) : null);

export function defaultUserSettings(): UserSettings {
  return {
    timeZone: defaultTimeZone,
    quietHours: null,
    optOutTriggerTypes: [],
    workingHours: { ...defaultWorkingHours },
    language: defaultLanguage,
    missedBlockGraceMinutes: null,
    primaryChannel: null,
    fallbackChannel: null,
    escalation: { ...defaultEscalation },
  };
}

/** Defaults fill whatever is not stored, so documents written before a setting existed still read whole. */
function toUserSettings(doc: Partial<UserSettingsDoc> | null): UserSettings {
  const defaults = defaultUserSettings();
  if (!doc) return defaults;
  const q = doc.quietHours;
  const w = doc.workingHours;
  return {
    // A zone this runtime's ICU does not know would make every quiet-hours check throw.
    timeZone: doc.timeZone && isTimeZone(doc.timeZone) ? doc.timeZone : defaults.timeZone,
    quietHours: q?.start && q?.end ? { start: q.start, end: q.end } : null,
    optOutTriggerTypes: doc.optOutTriggerTypes ? [...doc.optOutTriggerTypes] : defaults.optOutTriggerTypes,
    workingHours: w?.start && w?.end && w.start < w.end ? { start: w.start, end: w.end } : defaults.workingHours,
    language: languages.includes(doc.language as never) ? (doc.language as UserSettings['language']) : defaults.language,
    missedBlockGraceMinutes: typeof doc.missedBlockGraceMinutes === 'number' ? doc.missedBlockGraceMinutes : null,
    primaryChannel: asChannelKind(doc.primaryChannel),
    fallbackChannel: asChannelKind(doc.fallbackChannel),
    escalation:
      typeof doc.escalation?.afterMinutes === 'number' && doc.escalation.afterMinutes > 0
        ? { afterMinutes: doc.escalation.afterMinutes }
        : { ...defaultEscalation },
  };
}

/** The user's settings (cached per process: settings/cache.ts); shared, so frozen. */
export function loadUserSettings(ctx: Pick<AppContext, 'models'> & { userCache?: UserCacheHandle }, userId: string): Promise<UserSettings> {
  return cachedRead(ctx, 'settings', userId, async () => freeze(toUserSettings(await ctx.models.userSettings.findOne({ userId }).lean<UserSettingsDoc>())));
}

function freeze(s: UserSettings): UserSettings {
  for (const part of [s.quietHours, s.workingHours, s.optOutTriggerTypes, s.escalation]) if (part) Object.freeze(part);
  return Object.freeze(s);
}

/** Replaces the user's settings (one atomic upsert): what the body leaves out goes back to its default. */
export async function saveUserSettings(ctx: Pick<AppContext, 'models' | 'userCache'>, userId: string, body: UserSettingsBody): Promise<UserSettings> {
  const set: Record<string, unknown> = {
    timeZone: body.timeZone,
    optOutTriggerTypes: body.optOutTriggerTypes,
    workingHours: body.workingHours,
    language: body.language,
    escalation: body.escalation,
  };
  const unset: Record<string, ''> = {};
  for (const key of ['primaryChannel', 'fallbackChannel'] as const) {
    if (body[key]) set[key] = body[key];
    else unset[key] = '';
  }
  if (body.quietHours) set.quietHours = body.quietHours;
  else unset.quietHours = '';
  if (typeof body.missedBlockGraceMinutes === 'number') set.missedBlockGraceMinutes = body.missedBlockGraceMinutes;
  else unset.missedBlockGraceMinutes = '';
  const run = () =>
    ctx.models.userSettings.findOneAndUpdate({ userId }, { $set: set, $unset: unset }, { upsert: true, returnDocument: 'after' }).lean<UserSettingsDoc>();
  let doc: UserSettingsDoc | null;
  try {
    doc = await run();
  } catch (err) {
    // Two first PUTs at once: the loser of the unique index retries as an update.
    if (!isDuplicateKey(err)) throw err;
    doc = await run();
  }
  await ctx.userCache.invalidate(userId);
  return toUserSettings(doc);
}
