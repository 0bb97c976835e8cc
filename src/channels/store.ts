/**
 * A user's notification channels: one document per (user, kind), secrets sealed at rest.
 * Everything here is callable without Express; routes and the delivery processor share it.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context';
import type { NotificationChannelDoc } from '../db/notificationChannel';
import type { ChannelKind } from '../db/notificationRecord';
import { maskWebhookUrl, sendToChannel } from '../providers';
import type { ChannelConfig, Delivery } from '../providers/types';
import { normalizeWebhookUrl, type ChannelBody, type ChannelTestResult, type ChannelView } from './schemas';
import { isDuplicateKey } from '../db/errors';
import { cachedRead, type UserCacheHandle } from '../settings/cache';
import { loadUserSettings } from '../settings/store';
import { guardedTransition, lockName } from '../db/guarded';

export type { ChannelKind };

type StoredChannel = NotificationChannelDoc & { _id: unknown };

/** Preference among several enabled channels when settings name no primary: the person first, then a chat, then a Flow. */
const preference: ChannelKind[] = ['feishu_app', 'feishu_bot', 'feishu'];

type ReadCtx = Pick<AppContext, 'models'> & { userCache?: UserCacheHandle };

/** All the user's channels as stored (cached per process: settings/cache.ts); shared, so never changed by a caller. */
function storedChannels(ctx: ReadCtx, userId: string): Promise<readonly StoredChannel[]> {
  return cachedRead(ctx, 'channels', userId, async () => Object.freeze(await ctx.models.notificationChannels.find({ userId }).lean<StoredChannel[]>()));
}

/** The user's channel of that kind, secrets opened; null when there is none. */
export async function loadChannel(
  ctx: ReadCtx & Pick<AppContext, 'secrets'>,
  userId: string,
  kind: ChannelKind,
): Promise<{ enabled: boolean; config: ChannelConfig } | null> {
  const doc = (await storedChannels(ctx, userId)).find((c) => c.channel === kind);
  if (!doc) return null;
  let config = opened.get(doc);
  if (!config) opened.set(doc, (config = Object.freeze(openConfig(ctx, doc))));
  return { enabled: doc.enabled, config };
}

/** Configs opened from a cached channel, kept while the cache keeps it: decrypting once, not once a delivery. */
const opened = new WeakMap<StoredChannel, ChannelConfig>();

/**
 * Where a notification goes when the caller names no channel: the settings' primary channel while
 * it is enabled; else the enabled one (by preference when several are); else the primary, the
 * first configured, or feishu_bot, where it is skipped as recipient_missing. Pure.
 */
export function chooseChannelKind(channels: ReadonlyArray<{ channel: ChannelKind; enabled: boolean }>, primary: ChannelKind | null): ChannelKind {
  if (primary && channels.some((c) => c.channel === primary && c.enabled)) return primary;
  const ranked = [...channels].sort((a, b) => preference.indexOf(a.channel) - preference.indexOf(b.channel));
  return ranked.find((d) => d.enabled)?.channel ?? primary ?? ranked[0]?.channel ?? 'feishu_bot';
}

export async function defaultChannelKind(ctx: ReadCtx, userId: string): Promise<ChannelKind> {
  const [docs, settings] = await Promise.all([storedChannels(ctx, userId), loadUserSettings(ctx, userId)]);
  return chooseChannelKind(docs, settings.primaryChannel);
}

export async function listChannels(ctx: Pick<AppContext, 'models'>, userId: string): Promise<ChannelView[]> {
  const docs = await ctx.models.notificationChannels.find({ userId }).lean<StoredChannel[]>();
  return docs.sort((a, b) => preference.indexOf(a.channel) - preference.indexOf(b.channel)).map(toChannelView);
}

export async function getChannel(ctx: Pick<AppContext, 'models'>, userId: string, kind: ChannelKind): Promise<ChannelView | null> {
  const doc = await ctx.models.notificationChannels.findOne({ userId, channel: kind }).lean<StoredChannel>();
  return doc ? toChannelView(doc) : null;
}

/** A save and a test result write the same channel: on a store that writes a document back whole, one must not undo the other. */
const channelLock = (userId: string, kind: ChannelKind) => lockName('channel', `${userId}:${kind}`);

export type SaveChannelResult = { ok: true; channel: ChannelView } | { ok: false; field: string; message: string };

/**
 * Replaces (or creates) the user's channel of that kind. A secret left out of the body is kept
 * (the API never shows secrets, so a client cannot send them back); signingSecret null removes it.
 * The test result is cleared: it described the configuration being replaced.
 */
export async function saveChannel(
  ctx: Pick<AppContext, 'models' | 'secrets' | 'userCache' | 'store' | 'redis' | 'config'>,
  userId: string,
  input: ChannelBody,
): Promise<SaveChannelResult> {
  const saved = await guardedTransition(ctx, channelLock(userId, input.channel), () => writeChannel(ctx, userId, input));
  await ctx.userCache.invalidate(userId);
  return saved;
}

async function writeChannel(ctx: Pick<AppContext, 'models' | 'secrets'>, userId: string, input: ChannelBody): Promise<SaveChannelResult> {
  if (input.channel === 'feishu_app') {
    const { enabled, receiveIdType, receiveId } = input.body;
    const set = { enabled, receiveIdType, receiveId };
    const unset = { lastTest: '' as const, webhookUrlSealed: '' as const, webhookUrlMasked: '' as const };
    const doc = await upsert(() =>
      ctx.models.notificationChannels
        .findOneAndUpdate({ userId, channel: 'feishu_app' }, { $set: set, $unset: unset }, { upsert: true, returnDocument: 'after' })
        .lean<StoredChannel>(),
    );
    return { ok: true, channel: toChannelView(doc!) };
  }
  const url = normalizeWebhookUrl(input.body.webhookUrl);
  const set: Record<string, unknown> = { enabled: input.body.enabled, webhookUrlSealed: ctx.secrets.seal(url), webhookUrlMasked: maskWebhookUrl(url) };
  const unset: Record<string, ''> = { lastTest: '' };
  let keepsStoredBearer = false;

  if (input.channel === 'feishu') {
    const { authType, bearerToken } = input.body;
    set.authType = authType;
    if (authType === 'none') unset.bearerTokenSealed = '';
    else if (bearerToken !== undefined) set.bearerTokenSealed = ctx.secrets.seal(bearerToken);
    else keepsStoredBearer = true;
  } else {
    const { signingSecret, format, keyword } = input.body;
    set.format = format;
    if (keyword) set.keyword = keyword;
    else unset.keyword = '';
    if (signingSecret) set.signingSecretSealed = ctx.secrets.seal(signingSecret);
    else if (signingSecret === null) unset.signingSecretSealed = '';
  }

  const Channels = ctx.models.notificationChannels;
  const key = { userId, channel: input.channel };
  const update = { $set: set, $unset: unset };
  if (keepsStoredBearer) {
    // Guarded: the token must still be there when the update lands, not only when we looked.
    const doc = await Channels.findOneAndUpdate({ ...key, bearerTokenSealed: { $exists: true } }, update, { returnDocument: 'after' }).lean<StoredChannel>();
    if (!doc) return { ok: false, field: 'bearerToken', message: 'required when authType is bearer (no token is stored for this channel yet)' };
    return { ok: true, channel: toChannelView(doc) };
  }
  const doc = await upsert(() => Channels.findOneAndUpdate(key, update, { upsert: true, returnDocument: 'after' }).lean<StoredChannel>());
  return { ok: true, channel: toChannelView(doc!) };
}

/** Two first PUTs at once: one insert wins the unique index, the other retries as an update. */
async function upsert<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return run();
  }
}

export async function deleteChannel(ctx: Pick<AppContext, 'models' | 'userCache'>, userId: string, kind: ChannelKind): Promise<boolean> {
  const { deletedCount } = await ctx.models.notificationChannels.deleteOne({ userId, channel: kind });
  await ctx.userCache.invalidate(userId);
  return deletedCount > 0;
}

export const TEST_MESSAGE = {
  title: 'dueflow test message',
  summary: 'If you can read this, dueflow can reach you through this channel.',
} as const;

export type TestChannelOutcome = { kind: 'missing' } | { kind: 'disabled' } | { kind: 'tested'; result: ChannelTestResult };

/** Sends the fixed test message through the channel's provider and records the result on the channel (no notification record). */
export async function testChannel(
  ctx: Pick<AppContext, 'models' | 'secrets' | 'providers' | 'logger' | 'userCache' | 'store' | 'redis' | 'config'>,
  userId: string,
  kind: ChannelKind,
  now: () => Date = () => new Date(),
): Promise<TestChannelOutcome> {
  const Channels = ctx.models.notificationChannels;
  const doc = await Channels.findOne({ userId, channel: kind }).lean<StoredChannel>();
  if (!doc) return { kind: 'missing' };
  if (!doc.enabled) return { kind: 'disabled' };

  const notificationId = `channel-test-${randomUUID()}`;
  const delivery: Delivery = {
    notificationId,
    userId,
    triggerType: 'channel_test',
    target: { type: 'channel', id: kind },
    message: { ...TEST_MESSAGE },
    card: { recordId: notificationId, language: 'en', timeZone: 'UTC', message: { ...TEST_MESSAGE }, state: { kind: 'test' } },
  };
  const outcome = await sendToChannel(openConfig(ctx, doc), delivery, ctx.providers);
  const ok = outcome.kind === 'sent';
  const lastTest = { status: ok ? 'ok' : 'failed', errorCode: ok ? undefined : outcome.code, error: ok ? undefined : outcome.detail, at: now() };
  // Guarded on what was tested (every PUT re-seals the URL or rewrites the receive id): a result never lands on a configuration it did not test.
  const tested = doc.channel === 'feishu_app' ? { receiveIdType: doc.receiveIdType, receiveId: doc.receiveId } : { webhookUrlSealed: doc.webhookUrlSealed };
  await guardedTransition(ctx, channelLock(userId, kind), () => Channels.updateOne({ _id: doc._id, ...tested }, { $set: { lastTest } }, { timestamps: false }));
  await ctx.userCache.invalidate(userId);
  ctx.logger.info({ userId, channel: kind, ok, code: outcome.code, httpStatus: outcome.httpStatus, durationMs: outcome.durationMs }, 'channel test message');

  const result: ChannelTestResult = { ok, code: outcome.code };
  if (outcome.httpStatus !== undefined) result.httpStatus = outcome.httpStatus;
  if (outcome.detail !== undefined) result.detail = outcome.detail;
  return { kind: 'tested', result };
}

function openConfig(ctx: Pick<AppContext, 'secrets'>, doc: StoredChannel): ChannelConfig {
  if (doc.channel === 'feishu_app') return { kind: 'feishu_app', receiveIdType: doc.receiveIdType ?? 'open_id', receiveId: doc.receiveId ?? '' };
  const webhookUrl = ctx.secrets.open(doc.webhookUrlSealed ?? '');
  if (doc.channel === 'feishu') {
    const bearerToken = doc.bearerTokenSealed ? ctx.secrets.open(doc.bearerTokenSealed) : undefined;
    return { kind: 'feishu', webhookUrl, authType: doc.authType ?? 'none', ...(bearerToken ? { bearerToken } : {}) };
  }
  const signingSecret = doc.signingSecretSealed ? ctx.secrets.open(doc.signingSecretSealed) : undefined;
  return {
    kind: 'feishu_bot',
    webhookUrl,
    format: doc.format ?? 'card',
    ...(signingSecret ? { signingSecret } : {}),
    ...(doc.keyword ? { keyword: doc.keyword } : {}),
  };
}

/** "a…e@example.com": enough to recognise one's own address, not to harvest it. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '…';
  const local = email.slice(0, at);
  return `${local[0]}…${local.length > 1 ? local[local.length - 1] : ''}${email.slice(at)}`;
}

function iso(d: Date | string | null | undefined): string {
  return new Date(d ?? 0).toISOString();
}

export function toChannelView(doc: StoredChannel): ChannelView {
  const lastTest = doc.lastTest?.status
    ? { status: doc.lastTest.status, errorCode: doc.lastTest.errorCode ?? null, error: doc.lastTest.error ?? null, at: iso(doc.lastTest.at) }
    : null;
  const common = { enabled: doc.enabled, lastTest, createdAt: iso(doc.createdAt), updatedAt: iso(doc.updatedAt) };
  if (doc.channel === 'feishu_app') {
    const receiveIdType = doc.receiveIdType ?? 'open_id';
    return { channel: 'feishu_app', ...common, receiveIdType, receiveId: receiveIdType === 'email' ? maskEmail(doc.receiveId ?? '') : (doc.receiveId ?? '') };
  }
  const webhookUrl = doc.webhookUrlMasked ?? '';
  if (doc.channel === 'feishu') {
    return { channel: 'feishu', ...common, webhookUrl, authType: doc.authType ?? 'none', hasBearerToken: Boolean(doc.bearerTokenSealed) };
  }
  return {
    channel: 'feishu_bot',
    ...common,
    webhookUrl,
    hasSigningSecret: Boolean(doc.signingSecretSealed),
    format: doc.format ?? 'card',
    keyword: doc.keyword ?? null,
  };
}
