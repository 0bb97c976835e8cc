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
import type { SkipReason } from './transitions';
import { guardedOrNull, guardedTransition, lockName } from '../db/guarded';
import { decideDigest } from './digest';
import type { Types } from 'mongoose';

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

/**
 * Every write of a record goes through the store seam, the claim's and the outcome's alike: where
 * guarded updates are not atomic, an unlocked write is lost to a locked one that read the record
 * before it and wrote after (the events relay clearing a replayed record's outbox over its `sent`).
 */
const onRecord = <T>(ctx: Ctx, id: unknown, write: () => Promise<T>): Promise<T> => guardedTransition(ctx, lockName('notification', id), write);

/** How late a send may leave after its reserved moment; well inside the limiter's margin. */
const lateToleranceMs = 50;

export type { SkipReason };

/** What to do with a record, from what was loaded for it. */
export type DeliveryDecision =
  | { kind: 'send' }
  | { kind: 'skip'; reason: SkipReason }
  /** Quiet hours: wait, unchanged, until `until`. */
  | { kind: 'defer'; until: Date }
  /** Held for a digest: sent alone or grouped (digest.ts decides). */
  | { kind: 'digest' };

type LoadedChannel = Awaited<ReturnType<typeof loadChannel>>;

/**
 * Pure: opt-out, then a recipient, then quiet hours (an urgent record, a critical anomaly, goes
 * through them), then a digest hold. A replay is an operator's explicit "send it now": no quiet
 * hours and no hold apply to it (replayNotification passes `replay`).
 */
export function decideDelivery(d: {
  record: { triggerType: string; urgent?: boolean | null; digestState?: string | null };
  settings: UserSettings;
  channel: LoadedChannel;
  now: Date;
  replay?: boolean;
}): DeliveryDecision {
  if (d.settings.optOutTriggerTypes.includes(d.record.triggerType)) return { kind: 'skip', reason: 'user_opted_out' };
  if (!d.channel || !d.channel.enabled || !hasRecipient(d.channel.config)) return { kind: 'skip', reason: 'recipient_missing' };
  if (d.replay) return { kind: 'send' };
  const quietUntil = d.record.urgent ? null : quietHoursEnd(d.settings.quietHours, d.settings.timeZone, d.now);
  if (quietUntil) return { kind: 'defer', until: quietUntil };
  if (d.record.digestState === 'held') return { kind: 'digest' };
  return { kind: 'send' };
}

/**
 * One run of a delivery job. The usual path is two MongoDB commands: the guarded claim (which
 * answers the record as it was before it) and the outcome; the user's settings and channel come
 * from the process's cache (settings/cache.ts), two reads more when they are not there. The decision comes after the claim: a claim the decision does not use is given
 * back exactly (returnClaim, skipClaimed: guarded by the claim's own sendingSince), and the claim
 * never takes a record that is held for a digest, dead, or being sent: those are read instead
 * (whenNotClaimable), and a dead one runs again only as a replay (an operator's Retry).
 */
export async function deliverNotification(ctx: Ctx, recordId: string, job: JobAttempt, deps: DeliveryDeps): Promise<DeliveryStep> {
  const now = deps.now ?? (() => new Date());
  const claimedAt = now();
  const claimed = await guardedOrNull(ctx, lockName('notification', recordId), () =>
    t.claimUnreadForSending(ctx.models.notificationRecords, recordId, claimedAt),
  );
  if (!claimed) return whenNotClaimable(ctx, recordId, job, deps);
  const Records = ctx.models.notificationRecords;
  let loaded: [UserSettings, LoadedChannel];
  try {
    loaded = await Promise.all([loadUserSettings(ctx, claimed.userId), loadChannel(ctx, claimed.userId, claimed.channel)]);
  } catch (err) {
    await onRecord(ctx, recordId, () => t.returnClaim(Records, claimed._id, claimedAt, claimed)).catch(() => undefined);
    throw err;
  }
  const [settings, channel] = loaded;
  const decision = decideDelivery({ record: claimed, settings, channel, now: now() });
  switch (decision.kind) {
    case 'skip':
      return skipClaimed(ctx, claimed, claimedAt, decision.reason);
    case 'defer':
      await onRecord(ctx, recordId, () => t.returnClaim(Records, claimed._id, claimedAt, claimed, { at: now(), until: decision.until }));
      return { kind: 'delay', until: decision.until, reason: 'quiet_hours' };
    case 'digest': // never claimed while held; here for completeness of the decision
    case 'send':
      return sendClaimed(ctx, {
        recordId,
        record: claimed,
        attempt: claimed.attemptCount + 1,
        channelConfig: channel!.config,
        settings,
        replay: false,
        job,
        deps,
        now,
      });
  }
}

/** The claim took nothing: the record is final, being sent, held for a digest, dead (a replay), or its lock was busy. */
async function whenNotClaimable(ctx: Ctx, recordId: string, job: JobAttempt, deps: DeliveryDeps): Promise<DeliveryStep> {
  const now = deps.now ?? (() => new Date());
  const Records = ctx.models.notificationRecords;
  const record = await Records.findById(recordId).lean<RecordDoc>();
  if (!record) return { kind: 'dead', code: 'record_missing', detail: `no notification record ${recordId}` };
  if (record.status === 'sent' || record.status === 'skipped' || record.status === 'digested') return { kind: 'done', status: record.status };
  if (record.status === 'dead') return replayNotification(ctx, record, job, deps);
  if (record.status === 'sending') {
    const leaseEnds = (record.sendingSince?.getTime() ?? 0) + t.sendingLeaseMs;
    return { kind: 'delay', until: new Date(Math.max(leaseEnds, now().getTime() + 1000)), reason: 'another worker is sending' };
  }
  if (record.digestState !== 'held') return { kind: 'delay', until: new Date(now().getTime() + 1000), reason: 'claim_busy' };
  const [settings, channel] = await Promise.all([loadUserSettings(ctx, record.userId), loadChannel(ctx, record.userId, record.channel)]);
  const decision = decideDelivery({ record, settings, channel, now: now() });
  switch (decision.kind) {
    case 'skip':
      return finishSkipped(ctx, record, await onRecord(ctx, recordId, () => t.markSkipped(Records, record._id, now(), decision.reason)));
    case 'defer':
      await onRecord(ctx, recordId, () => t.markDeferred(Records, record._id, now(), decision.until));
      return { kind: 'delay', until: decision.until, reason: 'quiet_hours' };
    case 'digest':
    case 'send': {
      const digest = await decideDigest(ctx, recordId, now());
      if (digest.kind === 'digested') return { kind: 'done', status: 'digested' };
      if (digest.kind === 'wait') return { kind: 'delay', until: digest.until, reason: digest.reason };
      // To be sent alone: no longer held, so the claim takes it now.
      return deliverNotification(ctx, recordId, job, deps);
    }
  }
}

/** An operator retried a dead record's job (Bull Board): it is sent now, through quiet hours and holds, with a `replay` entry. */
async function replayNotification(ctx: Ctx, record: RecordDoc, job: JobAttempt, deps: DeliveryDeps): Promise<DeliveryStep> {
  const now = deps.now ?? (() => new Date());
  const Records = ctx.models.notificationRecords;
  const recordId = String(record._id);
  const [settings, channel] = await Promise.all([loadUserSettings(ctx, record.userId), loadChannel(ctx, record.userId, record.channel)]);
  const decision = decideDelivery({ record, settings, channel, now: now(), replay: true });
  if (decision.kind === 'skip')
    return finishSkipped(ctx, record, await onRecord(ctx, recordId, () => t.markReplaySkipped(Records, record._id, now(), decision.reason)));
  const claimed = await guardedOrNull(ctx, lockName('notification', recordId), () => t.claimForReplay(Records, record._id, now()));
  if (!claimed) {
    const current = await Records.findById(recordId, { status: 1 }).lean<{ status: string }>();
    return { kind: 'done', status: current?.status ?? 'missing' };
  }
  return sendClaimed(ctx, { recordId, record, attempt: claimed.attemptCount, channelConfig: channel!.config, settings, replay: true, job, deps, now });
}

type RecordDoc = NonNullable<Awaited<ReturnType<typeof t.claimUnreadForSending>>>;
/** What settling needs of a record. */
interface RecordFacts {
  _id: Types.ObjectId | string;
  channel: string;
}

/** A channel dueflow can send through: a webhook URL, or a person to write to. */
function hasRecipient(config: ChannelConfig): boolean {
  return config.kind === 'feishu_app' ? config.receiveId !== '' : Boolean(config.webhookUrl);
}

/** Whose limits a send counts against: its webhook, or the app (urgent sends in their own lane) and the person. */
function rateTarget(config: ChannelConfig, urgent: boolean): RateTarget {
  return config.kind === 'feishu_app'
    ? { kind: 'app', recipient: `${config.receiveIdType}:${config.receiveId}`, urgent }
    : { kind: 'webhook', url: config.webhookUrl };
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
  job: JobAttempt;
  deps: DeliveryDeps;
  now: () => Date;
}

/** The record is `sending`, claimed by this run as attempt `attempt`: wait for the webhook's slot, send, settle. */
async function sendClaimed(ctx: Ctx, args: SendArgs): Promise<DeliveryStep> {
  const { recordId, record, attempt, channelConfig, settings, replay, job, deps, now } = args;
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
      await onRecord(ctx, recordId, () => t.releaseClaim(Records, record._id, now(), until));
      return { kind: 'delay', until, reason: 'webhook_rate_limit' };
    }
    const due = Date.now() + slot.waitMs;
    if (slot.waitMs > 0) await sleep(slot.waitMs);
    if (Date.now() - due <= lateToleranceMs || tries >= 3) break;
    await slot.release();
    slot = await reserveOrRelease(ctx, deps, target, record._id);
  }
  const message = {
    title: record.message.title,
    summary: record.message.summary,
    actionText: record.message.actionText ?? undefined,
    actionUrl: record.message.actionUrl ?? undefined,
  };

  const outcome = await sendToChannel(
    channelConfig,
    {
      notificationId: recordId,
      userId: record.userId,
      triggerType: record.triggerType,
      target: { type: record.target.type, id: record.target.id },
      message,
      traceId: record.traceId ?? undefined,
      triggerId: record.triggerId ?? undefined,
      previewId: record.previewId ?? undefined,
      card: { recordId, language: settings.language, timeZone: settings.timeZone, message, state: firstCardState(record) },
    },
    ctx.providers,
  );
  ctx.logger.info(
    {
      recordId,
      traceId: record.traceId,
      userId: record.userId,
      attempt,
      outcome: outcome.kind,
      code: outcome.code,
      httpStatus: outcome.httpStatus,
      durationMs: outcome.durationMs,
      replay,
    },
    'delivery attempt',
  );
  return settle(ctx, { deps, target, record, attempt, outcome, job, now: now() });
}

/** A reservation; when Redis fails here the claim is given back at once, not left to its 30 s lease. */
async function reserveOrRelease(ctx: Ctx, deps: DeliveryDeps, target: RateTarget, id: unknown) {
  try {
    return await deps.limiter.reserve(target);
  } catch (err) {
    await onRecord(ctx, id, () => t.releaseClaim(ctx.models.notificationRecords, id as string, new Date(), new Date())).catch(() => undefined);
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

async function skipClaimed(ctx: Ctx, record: RecordFacts, claimedAt: Date, reason: SkipReason): Promise<DeliveryStep> {
  return finishSkipped(
    ctx,
    record,
    await onRecord(ctx, record._id, () => t.skipClaimed(ctx.models.notificationRecords, record._id, claimedAt, new Date(), reason)),
  );
}

/** A skip written (updated) or lost to another writer (null): counted once (its event rides in the skip's own update). */
async function finishSkipped(ctx: Ctx, record: RecordFacts, updated: { status?: string | null } | null): Promise<DeliveryStep> {
  if (updated) {
    ctx.metrics.notificationsFinal.inc({ status: 'skipped', channel: record.channel });
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
    await persistOutcome(() => onRecord(ctx, record._id, () => t.markSent(Records, record._id, now, attempt, outcome)));
    ctx.metrics.notificationsFinal.inc({ status: 'sent', channel });
    if (record.createdAt) ctx.metrics.deliveryLatency.observe({ channel }, (now.getTime() - record.createdAt.getTime()) / 1000);
    return { kind: 'done', status: 'sent' };
  }
  if (outcome.rateLimited) {
    // Feishu says slow down: pause what it named for every worker, and retry without spending an attempt.
    const pauseMs = outcome.retryAfterMs ?? 1000 + Math.floor(Math.random() * 1000);
    await deps.limiter.pause(target, pauseMs, outcome.providerCode === 230020 ? 'recipient' : 'target');
    const until = new Date(now.getTime() + pauseMs);
    await persistOutcome(() => onRecord(ctx, record._id, () => t.markRateLimited(Records, record._id, now, attempt, outcome, until)));
    return { kind: 'delay', until, reason: outcome.code };
  }
  const detail = outcome.detail ?? outcome.code;
  if (outcome.kind === 'permanent') {
    await persistOutcome(() => onRecord(ctx, record._id, () => t.markDeadAfterAttempt(Records, record._id, now, attempt, outcome, 'permanent')));
    ctx.metrics.notificationsFinal.inc({ status: 'dead', channel });
    return { kind: 'dead', code: outcome.code, detail };
  }
  if (job.attemptsMade + 1 >= job.attempts) {
    await persistOutcome(() => onRecord(ctx, record._id, () => t.markDeadAfterAttempt(Records, record._id, now, attempt, outcome, 'attempts_exhausted')));
    ctx.metrics.notificationsFinal.inc({ status: 'dead', channel });
    return { kind: 'dead', code: 'attempts_exhausted', detail: `${outcome.code}: ${detail}` };
  }
  const delayMs = retryDelayMs(job.attemptsMade + 1, ctx.config.NOTIFY_BACKOFF_MS, ctx.config.NOTIFY_BACKOFF_MAX_MS);
  await persistOutcome(() => onRecord(ctx, record._id, () => t.markFailed(Records, record._id, now, attempt, outcome, new Date(now.getTime() + delayMs))));
  return { kind: 'retry', delayMs, code: outcome.code, detail };
}
