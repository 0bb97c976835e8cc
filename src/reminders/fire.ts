/**
 * One occurrence of a reminder, fired by the `due-job` processor (scheduling/fireDueJob.ts hands
 * over every due job of kind `reminder`):
 *
 * - the reminder is gone, deleted or finished → the due job ends (skipped / canceled);
 * - the reminder moved (an edit landed, its due-job write not yet) → the due job follows it;
 * - claimed more than REMINDER_CATCHUP_MS after the occurrence → skipped, reason
 *   `missed_beyond_catchup` (a stale reminder is noise); otherwise a `reminder` trigger (source
 *   worker_due_job, target reminder:<id>, window = the occurrence), which the workflow turns into
 *   one message with the reminder's title and summary. The trigger's dedupe key names the
 *   occurrence, so an occurrence claimed twice (a retry, a lease taken back) still sends once;
 * - then the reminder rolls forward: its next occurrence is the first one after *now*, not after
 *   the one just fired, so occurrences missed while no worker ran collapse into this one message.
 *   The same due job goes back to pending at that time, or ends when the reminder is finished
 *   (one-off, endAt, count).
 *
 * All of it runs exclusively per reminder, as the API's edits do (db/guarded.ts): an edit or a
 * delete happens wholly before or wholly after a firing. Each write of the due job also holds the
 * due job's lock, taken after the reminder's (the edits' order; the scanner holds it alone).
 * Errors retry the occurrence with the due job's backoff; after the last attempt the occurrence is
 * given up (skipped `attempts_exhausted`) and the reminder still rolls forward, so one bad
 * occurrence does not end a recurring reminder.
 */
import { isValidObjectId } from 'mongoose';
import type { AppContext } from '../context';
import type { DueJobDoc } from '../db/dueJob';
import type { ReminderDoc } from '../db/reminder';
import { exclusively, lockName, StoreBusyError } from '../db/guarded';
import { outcomeOf, type FireOutcome } from '../scheduling/fireOutcome';
import { onDueJob } from '../scheduling/dueJobs';
import {
  deferDueJob,
  dueJobMaxAttempts,
  finishDueJob,
  postponeDueJob,
  restartFailedDueJob,
  retryOrFailDueJob,
  type DueJobReason,
} from '../scheduling/transitions';
import { createTrigger } from '../triggers/create';
import { nextOccurrence, occurrencesBetween } from './occurrences';
import { rollReminder } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

export const reminderTriggerType = 'reminder';
/** A claim that finds the reminder being written tries again this much later. */
const busyRetryMs = 1000;

/** What the workflow needs to send a reminder's occurrence: the message as it was when the occurrence fired. */
export interface ReminderTriggerDetail {
  title: string;
  summary: string;
  occurrenceAt: string;
  /** Later occurrences that had passed too when this one fired late (caught up in this one message). */
  collapsedOccurrences: number;
}

type LastOccurrence = { at: Date; outcome: 'sent' | 'skipped'; reason?: DueJobReason; triggerId?: string; firedAt: Date };

/** The due job's outcome as stored (another writer moved it first). */
const storedOutcome = async (DueJobs: Ctx['models']['dueJobs'], id: DueJobDoc['_id']) => outcomeOf(await DueJobs.findById(id).lean<DueJobDoc>());

/** The claim to fire: read again under the reminder's lock before anything is written. */
type ReminderClaim = Pick<DueJobDoc, '_id' | 'reminderId' | 'triggerAt' | 'claimedAt' | 'attempts'>;

export async function fireReminderOccurrence(ctx: Ctx, job: ReminderClaim, now = new Date()): Promise<FireOutcome> {
  const DueJobs = ctx.models.dueJobs;
  const current = () => storedOutcome(DueJobs, job._id);
  const reminderLock = lockName('reminder', job.reminderId);
  try {
    const fired = await exclusively(ctx, reminderLock, () => fireLocked(ctx, job, now), 5000).catch((err) => {
      // Only the reminder's lock means an edit holds it; a busy due job inside is an error like any other (below).
      if (err instanceof StoreBusyError && err.lockName === reminderLock) return null;
      throw err;
    });
    if (fired) return fired;
    // An edit holds the reminder: look again in a moment (a new triggerAt, so a new BullMQ job id).
    const deferred = await onDueJob(ctx, job._id, () => deferDueJob(DueJobs, job, new Date(now.getTime() + busyRetryMs)));
    return deferred ? { status: 'pending', reason: 'reminder_busy' } : current();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.logger.warn(
      { dueJobId: String(job._id), reminderId: job.reminderId, attempts: (job.attempts ?? 0) + 1, err: message },
      'firing reminder occurrence failed',
    );
    // Under the due job's lock too; if it stays taken this throws, and BullMQ retries the job.
    const retried = await onDueJob(ctx, job._id, () => retryOrFailDueJob(DueJobs, job, now, message.slice(0, 500)));
    return retried ? outcomeOf(retried) : current();
  }
}

async function fireLocked(ctx: Ctx, job: ReminderClaim, now: Date): Promise<FireOutcome> {
  const { models, config, logger } = ctx;
  const DueJobs = models.dueJobs;
  const thisClaim = { _id: job._id, status: 'claimed' as const, claimedAt: job.claimedAt };
  const fresh = await DueJobs.findOne(thisClaim).lean<DueJobDoc>();
  // Moved or canceled by an edit, or taken back, since the claim: a claim of another time is `superseded`.
  if (!fresh) {
    const stored = await DueJobs.findById(job._id).lean<DueJobDoc>();
    return stored && stored.triggerAt.getTime() !== job.triggerAt.getTime() ? { status: 'superseded' } : outcomeOf(stored);
  }
  // Each due-job write holds its lock too (inside the reminder's): the scanner writes the same job under it.
  const write = (transition: () => Promise<DueJobDoc | null>) => onDueJob(ctx, job._id, transition);
  const current = () => storedOutcome(DueJobs, job._id);
  const settle = async (transition: () => Promise<DueJobDoc | null>) => {
    const written = await write(transition);
    return written ? outcomeOf(written) : current();
  };

  const reminder = isValidObjectId(job.reminderId) ? await models.reminders.findById(job.reminderId).lean<ReminderDoc>() : null;
  if (!reminder) return settle(() => finishDueJob(DueJobs, job._id, 'skipped', { reason: 'reminder_not_found' }));
  if (reminder.status === 'canceled') return settle(() => finishDueJob(DueJobs, job._id, 'canceled', { reason: 'reminder_canceled' }));
  if (reminder.status !== 'active' || !reminder.nextAt) return settle(() => finishDueJob(DueJobs, job._id, 'canceled', { reason: 'reminder_completed' }));
  const occurrence = fresh.thresholdAt ?? fresh.triggerAt;
  const nextAt = reminder.nextAt;
  if (nextAt.getTime() !== occurrence.getTime()) {
    const moved = await write(() => postponeDueJob(DueJobs, job._id, nextAt));
    return moved ? { status: moved.status, reason: 'reminder_moved' } : current();
  }

  const reminderId = String(reminder._id);
  const log = logger.child({ reminderId, dueJobId: String(job._id), userId: reminder.userId, occurrenceAt: occurrence.toISOString() });
  let last: LastOccurrence;
  const lateMs = now.getTime() - occurrence.getTime();
  if (lateMs > config.REMINDER_CATCHUP_MS) {
    last = { at: occurrence, outcome: 'skipped', reason: 'missed_beyond_catchup', firedAt: now };
    log.warn({ lateMs, catchupMs: config.REMINDER_CATCHUP_MS }, 'reminder occurrence skipped: missed beyond the catch-up limit');
  } else {
    try {
      const collapsed = reminder.cron ? occurrencesBetween(reminder.cron, reminder.timeZone, occurrence, now) : 0;
      const detail: ReminderTriggerDetail = {
        title: reminder.message.title,
        summary: reminder.message.summary,
        occurrenceAt: occurrence.toISOString(),
        collapsedOccurrences: collapsed,
      };
      const { trigger, created } = await createTrigger(ctx, {
        userId: reminder.userId,
        type: reminderTriggerType,
        source: 'worker_due_job',
        target: { type: 'reminder', id: reminderId },
        // The occurrence's time, not the claim's: a second claim of one occurrence finds the same trigger.
        at: occurrence,
        dueJobId: String(job._id),
        detail: { ...detail },
      });
      last = { at: occurrence, outcome: 'sent', triggerId: String(trigger._id), firedAt: now };
      log.info({ triggerId: String(trigger._id), created, lateMs, collapsedOccurrences: collapsed }, 'reminder occurrence fired');
    } catch (err) {
      if ((fresh.attempts ?? 0) + 1 < dueJobMaxAttempts) throw err;
      const message = err instanceof Error ? err.message : String(err);
      last = { at: occurrence, outcome: 'skipped', reason: 'attempts_exhausted', firedAt: now };
      log.error({ err: message, attempts: (fresh.attempts ?? 0) + 1 }, 'reminder occurrence given up after its last attempt');
    }
  }

  // The due job follows the reminder, from this claim only (a claim taken back meanwhile is the scanner's to settle).
  const moveJob = (next: Date) => write(() => postponeDueJob(DueJobs, { _id: job._id, claimedAt: job.claimedAt }, next));
  const rolled = await rollForward(ctx, { reminder, occurrence, last, now, moveJob });
  if (!rolled) return current();
  if (rolled.next) {
    if (!rolled.job) return current();
    const o: FireOutcome = { status: 'pending', nextAt: rolled.next.toISOString() };
    if (last.reason) o.reason = last.reason;
    if (last.triggerId) o.triggerId = last.triggerId;
    return o;
  }
  log.info({ firedCount: rolled.firedCount, outcome: last.outcome }, 'reminder finished');
  const sent = last.outcome === 'sent';
  return settle(() => finishDueJob(DueJobs, job._id, sent ? 'triggered' : 'skipped', { reason: last.reason, triggerId: last.triggerId }));
}

type Roll = { reminder: ReminderDoc; occurrence: Date; last: LastOccurrence; now: Date; moveJob: (next: Date) => Promise<DueJobDoc | null> };

/**
 * Records how `occurrence` ended and moves the reminder to its next occurrence: the first one after
 * *now*, so the ones missed meanwhile are caught up by this one (or skipped with it). `moveJob`
 * makes the due job pending at that time (a transition, under the due job's lock). Null: the
 * reminder moved meanwhile (an edit won); `job` null: the due job did.
 */
async function rollForward(ctx: Ctx, { reminder, occurrence, last, now, moveJob }: Roll) {
  const sent = last.outcome === 'sent' ? 1 : 0;
  const firedCount = (reminder.firedCount ?? 0) + sent;
  const next = nextOccurrence({ ...reminder, firedCount }, new Date(Math.max(now.getTime(), occurrence.getTime())));
  const rolled = await rollReminder(ctx.models.reminders, { id: reminder._id, occurrence, next, last, sent });
  if (!rolled) return null;
  const job = next ? await moveJob(next) : null;
  return { next, firedCount, job };
}

/**
 * A reminder's due job that the scanner failed for good because every claim's lease ran out (the
 * process firing it died each time) must not end the reminder: the occurrence is given up
 * (skipped, `attempts_exhausted`, as when its trigger cannot be written) and the reminder rolls on,
 * its due job pending again at the next occurrence. Returns the due job as it is now.
 * The caller must not hold the due job's lock: this takes the reminder's first, then the due job's,
 * the order every writer of both takes them in (a due-job lock held around this would invert it).
 */
export async function giveUpReminderOccurrence(ctx: Ctx, job: DueJobDoc, now = new Date()): Promise<DueJobDoc | null> {
  const DueJobs = ctx.models.dueJobs;
  const reminderLock = lockName('reminder', job.reminderId);
  const given = await exclusively(
    ctx,
    reminderLock,
    async () => {
      const reminder = isValidObjectId(job.reminderId) ? await ctx.models.reminders.findById(job.reminderId).lean<ReminderDoc>() : null;
      const occurrence = job.thresholdAt ?? job.triggerAt;
      // Gone, finished or edited: the edit already set (or will set) the due job's next occurrence.
      if (!reminder || reminder.status !== 'active' || reminder.nextAt?.getTime() !== occurrence.getTime()) return null;
      const last: LastOccurrence = { at: occurrence, outcome: 'skipped', reason: 'attempts_exhausted', firedAt: now };
      ctx.logger.error(
        { reminderId: String(reminder._id), dueJobId: String(job._id), occurrenceAt: occurrence.toISOString() },
        'reminder occurrence given up: every claim expired',
      );
      const moveJob = (next: Date) => onDueJob(ctx, job._id, () => restartFailedDueJob(DueJobs, job._id, next));
      return (await rollForward(ctx, { reminder, occurrence, last, now, moveJob }))?.job ?? null;
    },
    5000,
  ).catch((err) => {
    // An edit holds the reminder, and sets the due job itself; a busy due job (the reminder rolled, the job not) is an error.
    if (err instanceof StoreBusyError && err.lockName === reminderLock) return null;
    throw err;
  });
  return given ?? DueJobs.findById(job._id).lean<DueJobDoc>();
}
