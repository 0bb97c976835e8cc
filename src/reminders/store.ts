/**
 * A user's reminders. Every write brings the reminder's one due job (key `reminder:<id>`) in line
 * before the request answers: created at the first occurrence, moved to the new next occurrence by
 * an edit of the schedule, canceled by DELETE. Writes of one reminder (the API's and the firing
 * worker's) run exclusively (db/guarded.ts), so an edit happens wholly before or after a firing;
 * the due-job write is a guarded transition of the due job, as the scanner's claim is. A reminder
 * of another user, or a canceled one, does not exist (null).
 */
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import { reminderDueJobKey, type DueJobDoc } from '../db/dueJob';
import type { ReminderDoc } from '../db/reminder';
import { exclusively, lockName, StoreBusyError } from '../db/guarded';
import { onDueJob } from '../scheduling/dueJobs';
import { loadUserSettings } from '../settings/store';
import { cancelDueJob, insertDueJob, openDueJobStatuses, restartDueJob } from '../scheduling/transitions';
import { cancelReminder, changeReminder, insertReminder, removeNewReminder } from './transitions';
import { isoOrNull as iso } from '../time/iso';
import { nextOccurrence } from './occurrences';
import type { ReminderCreateBody, ReminderListQuery, ReminderPatchBody, ReminderView } from './schemas';
import { isStoredId } from '../db/ids';

type Ctx = Pick<AppContext, 'models' | 'redis' | 'config' | 'store'>;

/** A body that is valid alone but not with the stored reminder: the route answers 400 naming `field`. */
export class ReminderInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const lockWaitMs = 5000;

export function toReminderView(r: ReminderDoc): ReminderView {
  const last = r.lastOccurrence;
  return {
    id: String(r._id),
    message: { title: r.message.title, summary: r.message.summary },
    at: iso(r.at),
    cron: r.cron ?? null,
    timeZone: r.timeZone,
    endAt: iso(r.endAt),
    count: r.count ?? null,
    firedCount: r.firedCount ?? 0,
    nextAt: iso(r.nextAt),
    status: r.status === 'completed' ? 'completed' : 'active',
    lastOccurrence: last ? { at: last.at.toISOString(), outcome: last.outcome, reason: last.reason ?? null, triggerId: last.triggerId ?? null } : null,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
  };
}

/** The user's reminder, or null when it does not exist, is someone else's or was deleted. */
export async function findUserReminder(ctx: Pick<AppContext, 'models'>, userId: string, id: string): Promise<ReminderDoc | null> {
  if (!isStoredId(id)) return null;
  return ctx.models.reminders.findOne({ _id: id, userId, status: { $ne: 'canceled' } }).lean<ReminderDoc>();
}

export async function listReminders(ctx: Pick<AppContext, 'models'>, userId: string, query: ReminderListQuery) {
  const filter: Record<string, unknown> = { userId, status: query.status ?? { $ne: 'canceled' } };
  if (query.cursor) filter._id = { $lt: query.cursor };
  const docs = await ctx.models.reminders
    .find(filter)
    .sort({ _id: -1 })
    .limit(query.limit + 1)
    .lean<ReminderDoc[]>();
  const page = docs.slice(0, query.limit);
  return { items: page.map(toReminderView), nextCursor: docs.length > query.limit ? String(page[page.length - 1]._id) : null };
}

export async function createReminder(ctx: Ctx, userId: string, body: ReminderCreateBody, now = new Date()): Promise<ReminderDoc> {
  const { timeZone } = await loadUserSettings(ctx, userId);
  const schedule = { at: body.at ?? null, cron: body.cron ?? null, timeZone, endAt: body.endAt ?? null, count: body.count ?? null, firedCount: 0 };
  const nextAt = nextOccurrence(schedule, now);
  if (!nextAt)
    throw new ReminderInputError(body.cron ? 'endAt' : 'at', body.cron ? 'no occurrence of cron falls between now and endAt' : 'must be in the future');

  const _id = new Types.ObjectId();
  const reminder = await insertReminder(ctx.models.reminders, {
    _id,
    userId,
    message: body.message,
    ...(body.at ? { at: body.at } : {}),
    ...(body.cron ? { cron: body.cron } : {}),
    timeZone,
    ...(body.endAt ? { endAt: body.endAt } : {}),
    ...(body.count ? { count: body.count } : {}),
    firedCount: 0,
    nextAt,
  });
  try {
    await syncReminderDueJob(ctx, reminder);
  } catch (err) {
    // Without its due job the reminder would never fire: it was not created.
    await removeNewReminder(ctx.models.reminders, _id).catch(() => undefined);
    throw err;
  }
  return reminder;
}

/**
 * Changes a reminder. The message changes what later occurrences send. A change of the schedule
 * (at, cron, endAt, count) takes the user's current time zone and moves the next occurrence to the
 * first one after now; a finished reminder whose new schedule has one left is active again.
 */
export async function updateReminder(ctx: Ctx, userId: string, id: string, body: ReminderPatchBody, now = new Date()): Promise<ReminderDoc | null> {
  if (!(await findUserReminder(ctx, userId, id))) return null;
  return underReminderLock(ctx, id, async () => {
    const current = await findUserReminder(ctx, userId, id);
    if (!current) return null;
    const set: Record<string, unknown> = {};
    const unset: Record<string, ''> = {};
    if (body.message?.title !== undefined) set['message.title'] = body.message.title;
    if (body.message?.summary !== undefined) set['message.summary'] = body.message.summary;

    const scheduleChanged = body.at !== undefined || body.cron !== undefined || body.endAt !== undefined || body.count !== undefined;
    if (scheduleChanged) {
      const recurring = body.cron !== undefined || (body.at === undefined && !!current.cron);
      const schedule = {
        at: recurring ? null : (body.at ?? current.at ?? null),
        cron: recurring ? (body.cron ?? current.cron ?? null) : null,
        endAt: recurring ? (body.endAt === undefined ? (current.endAt ?? null) : body.endAt) : null,
        count: recurring ? (body.count === undefined ? (current.count ?? null) : body.count) : null,
        timeZone: (await loadUserSettings(ctx, userId)).timeZone,
        firedCount: current.firedCount ?? 0,
      };
      if (!recurring) {
        const message = 'only for a recurring reminder (cron); a one-off fires once';
        if (body.endAt != null) throw new ReminderInputError('endAt', message);
        if (body.count != null) throw new ReminderInputError('count', message);
      }
      const nextAt = nextOccurrence(schedule, now);
      if (!nextAt && recurring && schedule.endAt && (!schedule.count || schedule.firedCount < schedule.count)) {
        throw new ReminderInputError('endAt', 'no occurrence of cron falls between now and endAt');
      }
      for (const key of ['at', 'cron', 'endAt', 'count'] as const) {
        if (schedule[key] == null) unset[key] = '';
        else set[key] = schedule[key];
      }
      Object.assign(set, { timeZone: schedule.timeZone, nextAt, status: nextAt ? 'active' : 'completed' });
    }
    if (!Object.keys(set).length && !Object.keys(unset).length) return current;

    const write = () => changeReminder(ctx.models.reminders, { id, userId, set, unset });
    if (!scheduleChanged) return write();
    return withDueJobOf(ctx, current, async () => {
      const reminder = await write();
      if (reminder) await syncReminderDueJob(ctx, reminder);
      return reminder;
    });
  });
}

/** Cancels a reminder and its next occurrence. The reminder is kept (canceled), invisible to the API. */
export async function deleteReminder(ctx: Ctx, userId: string, id: string, now = new Date()): Promise<boolean> {
  if (!(await findUserReminder(ctx, userId, id))) return false;
  return underReminderLock(ctx, id, async () => {
    const current = await findUserReminder(ctx, userId, id);
    if (!current) return false;
    return withDueJobOf(ctx, current, async () => {
      const reminder = await cancelReminder(ctx.models.reminders, { id, userId, now });
      if (!reminder) return false;
      await syncReminderDueJob(ctx, reminder);
      return true;
    });
  });
}

/**
 * Creates, moves or cancels the reminder's due job to match it: pending at nextAt while the
 * reminder is active, canceled otherwise. A claimed job at nextAt is left to fire. An existing
 * due job is written inside the caller's withDueJobOf (its guarded transition); a new one needs none.
 */
export async function syncReminderDueJob(ctx: Ctx, reminder: ReminderDoc): Promise<DueJobDoc | null> {
  const DueJobs = ctx.models.dueJobs;
  const id = String(reminder._id);
  const key = reminderDueJobKey(id);
  const want = reminder.status === 'active' && reminder.nextAt ? reminder.nextAt : null;
  const existing = await DueJobs.findOne({ key }).lean<DueJobDoc>();

  if (!existing) {
    if (!want) return null;
    const created = await insertDueJob(DueJobs, { key, kind: 'reminder', reminderId: id, userId: reminder.userId }, want);
    // Created meanwhile by another write of the reminder: go on as an update.
    return created ?? syncReminderDueJob(ctx, reminder);
  }

  const apply = async () => {
    if (!want) {
      if (!openDueJobStatuses.includes(existing.status)) return existing;
      return cancelDueJob(DueJobs, existing._id, reminder.status === 'canceled' ? 'reminder_canceled' : 'reminder_completed');
    }
    const occurrence = (existing.thresholdAt ?? existing.triggerAt).getTime();
    if (occurrence === want.getTime() && (existing.status === 'pending' || existing.status === 'claimed')) return existing;
    return restartDueJob(DueJobs, existing._id, want);
  };
  return apply();
}

/** Runs fn as the one write of the reminder at a time (its firing takes the same). */
function underReminderLock<T>(ctx: Ctx, id: string, fn: () => Promise<T>): Promise<T> {
  return exclusively(ctx, lockName('reminder', id), fn, lockWaitMs);
}

/** Runs fn holding the lock of the reminder's due job (none yet: nothing to hold). */
async function withDueJobOf<T>(ctx: Ctx, reminder: ReminderDoc, fn: () => Promise<T>): Promise<T> {
  const job = await ctx.models.dueJobs.findOne({ key: reminderDueJobKey(String(reminder._id)) }, { _id: 1 }).lean();
  if (!job) return fn();
  return onDueJob(ctx, job._id, fn, lockWaitMs);
}

/** A due job failed this long ago is not being given up right now (the scanner's take-back does that at once). */
const stuckAfterMs = 60_000;

/**
 * A reminder's due job left `failed` (its occurrence given up, but the roll on to the next did not
 * land: a crash, or the due job's lock stayed taken) would never fire again. Each is brought in line
 * with its reminder as an edit would: pending at the reminder's next occurrence, or canceled when it
 * has none. Run by the maintenance reconcile; returns how many it moved.
 */
export async function repairStuckReminderJobs(ctx: Ctx, now = new Date(), batchSize = 100): Promise<number> {
  const stuck = await ctx.models.dueJobs
    .find({ kind: 'reminder', status: 'failed', updatedAt: { $lt: new Date(now.getTime() - stuckAfterMs) } }, { reminderId: 1 })
    .limit(batchSize)
    .lean<Array<Pick<DueJobDoc, '_id' | 'reminderId'>>>();
  let moved = 0;
  for (const job of stuck) {
    if (!isStoredId(job.reminderId)) continue;
    const after = await underReminderLock(ctx, job.reminderId, async () => {
      const reminder = await ctx.models.reminders.findById(job.reminderId).lean<ReminderDoc>();
      return reminder ? withDueJobOf(ctx, reminder, () => syncReminderDueJob(ctx, reminder)) : null;
    }).catch((err) => {
      // Being edited or fired right now: that brings it in line, or the next run does.
      if (err instanceof StoreBusyError) return null;
      throw err;
    });
    if (after && after.status !== 'failed') moved++;
  }
  return moved;
}
