/**
 * deliverNotification: one run of a delivery job. Reloads the record, decides, sends at most
 * once, and says what the queue should do next. It never talks BullMQ: processors/ translates.
 *
 * Safe to run twice: a record that is sent, skipped or being sent by someone else is left alone.
 * The one duplicate it cannot rule out: a process dying after Feishu accepted a message and
 * before the record says `sent`; the record's lease then lets another worker send it again.
 */
import type { AppContext } from '../context';
import { loadChannel } from '../channels/store';
import type { ChannelConfig } from '../providers/types';
import type { RateTarget } from './webhookRateLimiter';
import { firstCardState } from '../cards/state';
import type { UserSettings } from '../settings/store';
import { quietHoursEnd } from '../settings/quietHours';
import { loadUserSettings } from '../settings/store';
import { sendToChannel } from '../providers';
import type { ProviderOutcome } from '../providers/types';
import { retryDelayMs } from './backoff';
import type { WebhookRateLimiter } from './webhookRateLimiter';
import * as t from './transitions';
import { guardedOrNull, lockName } from '../db/guarded';
import { decideDigest } from './digest';
import { emitRecordEvent, type RecordFacts } from './events';

export type DeliveryStep =
  /** Nothing more to do: the record is final (or someone else is on it). */
  | { kind: 'done'; status: string }
  /** Run again at `until` without spending an attempt (quiet hours, rate limit). */
  | { kind: 'delay'; until: Date; reason: string }
  /** Temporary failure: retry after `delayMs` (BullMQ backoff). */
  | { kind: 'retry'; delayMs: number; code: string; detail: string }
  /** Permanent failure or attempts exhausted: the job fails for good. */
  | { kind: 'dead'; code: string; detail: string };

export interface JobAttempt {
  /** Attempts BullMQ already counted as failed. */
  attemptsMade: number;
  /** Attempts BullMQ allows in all. */
  attempts: number;
}

export interface DeliveryDeps {
  limiter: WebhookRateLimiter;
  /** Longest a processor waits in place for a rate-limit slot before it hands the job back delayed. */
  maxInlineWaitMs?: number;
  now?: () => Date;
}

type Ctx = Pick<AppContext, 'models' | 'secrets' | 'config' | 'logger' | 'metrics' | 'providers' | 'redis' | 'queues' | 'store'>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How late a send may leave after its reserved moment; well inside the limiter's margin. */
const lateToleranceMs = 50;

/**
 * Round trips. A message that goes out as asked (the usual case) costs four MongoDB commands: the
 * guarded claim, which also answers the record (as it was before the claim), then the user's
 * settings and the channel read together, then `sent`. It used to cost five: the record was read
 * first and claimed after. Claiming before the decisions is safe because:
 * - the claim is the same guarded transition under the same Redis guard lock as before (pending |
 *   failed | sending past its lease → sending), so two workers still never both send a record;
 * - it never takes a record held for a digest (the digest decision needs it pending), a dead one
 *   (only a replay takes it, and a replay must be told apart), or one being sent: those, and a
 *   claim that found nothing, fall back to the read-first path below, exactly as before;
 * - the decisions taken after the claim (opt-out, no recipient, quiet hours) read the same
 *   settings and channel as before, taken no earlier than before, and write their outcome as one
 *   guarded update of the claimer's own claim (`sendingSince` = the claim's time), leaving the record
 *   as the old path left it: skipped (attemptCount as before) or back in the state it was claimed
 *   from with `deferredUntil` and the `deferred` history entry. For those few milliseconds the
 *   record says `sending`; nothing else acts on a `sending` record inside its lease.
 * - when reading the settings or channel fails, the claim is given back before the error is thrown.
 */
export async function deliverNotification(ctx: Ctx, recordId: string, job: JobAttempt, deps: DeliveryDeps): Promise<DeliveryStep> {
  const now = deps.now ?? (() => new Date());
  const claimedAt = now();
  const first = await guardedOrNull(ctx, lockName('notification', recordId), () => t.claimUnreadForSending(ctx.models.notificationRecords, recordId, claimedAt));
  if (first) return deliverClaimed(ctx, recordId, first, claimedAt, job, deps, now);
  return deliverAfterRead(ctx, recordId, job, deps, now);
}

type RecordDoc = NonNullable<Awaited<ReturnType<typeof t.claimUnreadForSending>>>;

/** The record was pending or failed and is now claimed by this run (`record`: its state before the claim). */
async function deliverClaimed(ctx: Ctx, recordId: string, record: RecordDoc, claimedAt: Date, job: JobAttempt, deps: DeliveryDeps, now: () => Date): Promise<DeliveryStep> {
  const Records = ctx.models.notificationRecords;
  const log = ctx.logger.child({ recordId, traceId: record.traceId, userId: record.userId });
  let settings: Awaited<ReturnType<typeof loadUserSettings>>;
  let channel: Awaited<ReturnType<typeof loadChannel>>;
  try {
    [settings, channel] = await Promise.all([loadUserSettings(ctx, record.userId), loadChannel(ctx, record.userId, record.channel)]);
  } catch (err) {
    await t.returnClaim(Records, record._id, claimedAt, record).catch(() => undefined);
    throw err;
  }
  if (settings.optOutTriggerTypes.includes(record.triggerType)) return skipClaimed(ctx, record, claimedAt, 'user_opted_out');
  if (!channel || !channel.enabled || !hasRecipient(channel.config)) return skipClaimed(ctx, record, claimedAt, 'recipient_missing');
  // An urgent record (a critical anomaly) goes out through quiet hours.
  const quietUntil = record.urgent ? null : quietHoursEnd(settings.quietHours, settings.timeZone, now());
  if (quietUntil) {
    await t.returnClaim(Records, record._id, claimedAt, record, { at: now(), until: quietUntil });
    return { kind: 'delay', until: quietUntil, reason: 'quiet_hours' };
  }
  return sendClaimed(ctx, { recordId, record, attempt: record.attemptCount + 1, channelConfig: channel.config, settings, replay: false, log, job, deps, now });
}

/** The read-first path: replays, held records, records being sent, finished ones, and claims that found nothing to take. */
async function deliverAfterRead(ctx: Ctx, recordId: string, job: JobAttempt, deps: DeliveryDeps, now: () => Date): Promise<DeliveryStep> {
  const Records = ctx.models.notificationRecords;
  const record = await Records.findById(recordId);
  if (!record) return { kind: 'dead', code: 'record_missing', detail: `no notification record ${recordId}` };
  const log = ctx.logger.child({ recordId, traceId: record.traceId, userId: record.userId });

  if (record.status === 'sent' || record.status === 'skipped' || record.status === 'digested') return { kind: 'done', status: record.status };
  // The job of a dead record only runs again when an operator retries it (Bull Board): a replay.
  const replay = record.status === 'dead';
  if (record.status === 'sending' && record.sendingSince && record.sendingSince.getTime() > now().getTime() - t.sendingLeaseMs) {
    return { kind: 'delay', until: new Date(record.sendingSince.getTime() + t.sendingLeaseMs), reason: 'another worker is sending' };
  }

  const settings = await loadUserSettings(ctx, record.userId);
  if (settings.optOutTriggerTypes.includes(record.triggerType)) return skip(ctx, record, 'user_opted_out', replay);
  const channel = await loadChannel(ctx, record.userId, record.channel);
  if (!channel || !channel.enabled || !hasRecipient(channel.config)) return skip(ctx, record, 'recipient_missing', replay);

  // An urgent record (a critical anomaly) goes out through quiet hours.
  const quietUntil = replay || record.urgent ? null : quietHoursEnd(settings.quietHours, settings.timeZone, now());
  if (quietUntil) {
    await t.markDeferred(Records, record._id, now(), quietUntil);
    return { kind: 'delay', until: quietUntil, reason: 'quiet_hours' };
  }

  // A held anomaly: sent alone, or grouped into a digest with the user's other held ones (digest.ts).
  if (record.digestState === 'held' && !replay) {
    const decision = await decideDigest(ctx, recordId, now());
    if (decision.kind === 'digested') return { kind: 'done', status: 'digested' };
    if (decision.kind === 'wait') return { kind: 'delay', until: decision.until, reason: decision.reason };
  }

  const claimed = await guardedOrNull(ctx, lockName('notification', recordId), () => t.claimForSending(Records, record._id, now(), replay));
  if (!claimed) {
    const current = await Records.findById(recordId, { status: 1 });
    return { kind: 'done', status: current?.status ?? 'missing' };
  }
  return sendClaimed(ctx, { recordId, record, attempt: claimed.attemptCount, channelConfig: channel.config, settings, replay, log, job, deps, now });
}

/** A channel dueflow can send through: a webhook URL, or a person to write to. */
function hasRecipient(config: ChannelConfig): boolean {
  return config.kind === 'feishu_app' ? config.receiveId !== '' : Boolean(config.webhookUrl);
}

/** Whose limits a send counts against: its webhook, or the app (urgent sends in their own lane) and the person. */
function rateTarget(config: ChannelConfig, urgent: boolean): RateTarget {
  return config.kind === 'feishu_app' ? { kind: 'app', recipient: `${config.receiveIdType}:${config.receiveId}`, urgent } : { kind: 'webhook', url: config.webhookUrl };
}

interface SendArgs {
  recordId: string;
  /** The record as it was read or claimed. */
  record: RecordDoc;
  /** The attempt this send is (the claim counted it). */
  attempt: number;
  channelConfig: ChannelConfig;
  settings: UserSettings;
  replay: boolean;
  log: AppContext['logger'];
  job: JobAttempt;
  deps: DeliveryDeps;
  now: () => Date;
}

/** The record is `sending`, claimed by this run as attempt `attempt`: wait for the webhook's slot, send, settle. */
async function sendClaimed(ctx: Ctx, args: SendArgs): Promise<DeliveryStep> {
  const { recordId, record, attempt, channelConfig, settings, replay, log, job, deps, now } = args;
  const Records = ctx.models.notificationRecords;
  const target = rateTarget(channelConfig, record.urgent ?? false);
  // Reserve the webhook's next free moment as late as possible, so the request leaves when reserved.
  // A reservation only protects a request that leaves on time: one that woke up late (a busy
  // event loop) gives its slot back and takes a new one, or it could crowd the requests after it.
  let slot = await reserveOrRelease(ctx, deps, target, record._id);
  for (let tries = 0; ; tries++) {
    if (slot.waitMs > (deps.maxInlineWaitMs ?? 2000)) {
      await slot.release();
      const until = new Date(now().getTime() + slot.waitMs);
      await t.releaseClaim(Records, record._id, now(), until);
      return { kind: 'delay', until, reason: 'webhook_rate_limit' };
    }
    const due = Date.now() + slot.waitMs;
    if (slot.waitMs > 0) await sleep(slot.waitMs);
    if (Date.now() - due <= lateToleranceMs || tries >= 3) break;
    await slot.release();
    slot = await reserveOrRelease(ctx, deps, target, record._id);
  }
  const message = { title: record.message.title, summary: record.message.summary, actionText: record.message.actionText ?? undefined, actionUrl: record.message.actionUrl ?? undefined };

  const outcome = await sendToChannel(channelConfig, {
    notificationId: recordId, userId: record.userId, triggerType: record.triggerType,
    target: { type: record.target.type, id: record.target.id },
    message,
    traceId: record.traceId ?? undefined, triggerId: record.triggerId ?? undefined, previewId: record.previewId ?? undefined,
    card: { recordId, language: settings.language, timeZone: settings.timeZone, message, state: firstCardState(record) },
  }, ctx.providers);
  log.info({ attempt, outcome: outcome.kind, code: outcome.code, httpStatus: outcome.httpStatus, durationMs: outcome.durationMs, replay }, 'delivery attempt');
  return settle(ctx, { deps, target, record, attempt, outcome, job, now: now() });
}

/** A reservation; when Redis fails here the claim is given back at once, not left to its 30 s lease. */
async function reserveOrRelease(ctx: Ctx, deps: DeliveryDeps, target: RateTarget, id: unknown) {
  try {
    return await deps.limiter.reserve(target);
  } catch (err) {
    await t.releaseClaim(ctx.models.notificationRecords, id as string, new Date(), new Date()).catch(() => undefined);
    throw err;
  }
}

/**
 * Writes the outcome of a request that already left: a write lost here turns into a duplicate
 * message (the record stays `sending` until its lease ends), so a failing database gets a few tries.
 */
async function persistOutcome<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(250 * 2 ** attempt);
    }
  }
}

async function skipClaimed(ctx: Ctx, record: RecordFacts, claimedAt: Date, reason: string): Promise<DeliveryStep> {
  const updated = await t.skipClaimed(ctx.models.notificationRecords, record._id, claimedAt, new Date(), reason);
  if (updated) {
    ctx.metrics.notificationsFinal.inc({ status: 'skipped', channel: record.channel });
    await emitRecordEvent(ctx, record, { status: 'skipped', reason });
  }
  return { kind: 'done', status: updated?.status ?? 'skipped' };
}

async function skip(ctx: Ctx, record: RecordFacts, reason: string, fromDead: boolean): Promise<DeliveryStep> {
  const updated = await t.markSkipped(ctx.models.notificationRecords, record._id, new Date(), reason, fromDead);
  if (updated) {
    ctx.metrics.notificationsFinal.inc({ status: 'skipped', channel: record.channel });
    await emitRecordEvent(ctx, record, { status: 'skipped', reason });
  }
  return { kind: 'done', status: updated?.status ?? 'skipped' };
}

interface SettleArgs {
  deps: DeliveryDeps;
  target: RateTarget;
  record: RecordFacts & { createdAt?: Date };
  attempt: number;
  outcome: ProviderOutcome;
  job: JobAttempt;
  now: Date;
}

async function settle(ctx: Ctx, { deps, target, record, attempt, outcome, job, now }: SettleArgs): Promise<DeliveryStep> {
  const Records = ctx.models.notificationRecords;
  const channel = record.channel;
  if (outcome.kind !== 'sent') ctx.metrics.providerErrors.inc({ channel, code: outcome.code });

  if (outcome.kind === 'sent') {
    await persistOutcome(() => t.markSent(Records, record._id, now, attempt, outcome));
    ctx.metrics.notificationsFinal.inc({ status: 'sent', channel });
    await emitRecordEvent(ctx, record, { status: 'sent' }, now);
    if (record.createdAt) ctx.metrics.deliveryLatency.observe({ channel }, (now.getTime() - record.createdAt.getTime()) / 1000);
    return { kind: 'done', status: 'sent' };
  }
  if (outcome.rateLimited) {
    // Feishu says slow down: pause what it named for every worker, and retry without spending an attempt.
    const pauseMs = outcome.retryAfterMs ?? 1000 + Math.floor(Math.random() * 1000);
    await deps.limiter.pause(target, pauseMs, outcome.providerCode === 230020 ? 'recipient' : 'target');
    const until = new Date(now.getTime() + pauseMs);
    await persistOutcome(() => t.markRateLimited(Records, record._id, now, attempt, outcome, until));
    return { kind: 'delay', until, reason: outcome.code };
  }
  const detail = outcome.detail ?? outcome.code;
  if (outcome.kind === 'permanent') {
    await persistOutcome(() => t.markDeadAfterAttempt(Records, record._id, now, attempt, outcome, outcome.code));
    ctx.metrics.notificationsFinal.inc({ status: 'dead', channel });
    await emitRecordEvent(ctx, { ...record, attemptCount: attempt }, { status: 'dead', code: outcome.code }, now);
    return { kind: 'dead', code: outcome.code, detail };
  }
  if (job.attemptsMade + 1 >= job.attempts) {
    await persistOutcome(() => t.markDeadAfterAttempt(Records, record._id, now, attempt, outcome, 'attempts_exhausted'));
    ctx.metrics.notificationsFinal.inc({ status: 'dead', channel });
    await emitRecordEvent(ctx, { ...record, attemptCount: attempt }, { status: 'dead', code: 'attempts_exhausted' }, now);
    return { kind: 'dead', code: 'attempts_exhausted', detail: `${outcome.code}: ${detail}` };
  }
  const delayMs = retryDelayMs(job.attemptsMade + 1, ctx.config.NOTIFY_BACKOFF_MS, ctx.config.NOTIFY_BACKOFF_MAX_MS);
  await persistOutcome(() => t.markFailed(Records, record._id, now, attempt, outcome, new Date(now.getTime() + delayMs)));
  return { kind: 'retry', delayMs, code: outcome.code, detail };
}
