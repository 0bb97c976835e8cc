/**
 * Digests: when one user gets many anomaly messages in a short time, the rest are grouped into one
 * message listing them, instead of a flood. Only records requested as `digestible` take part
 * (dueflow's own non-critical anomalies); critical ones, previews and reminders always go alone.
 *
 * A digestible record is created `held` and its delivery job waits DIGEST_HOLD_MS, so anomalies
 * arriving together are all held when the first job runs. That run decides, holding a per-user
 * Redis lock (FerretDB v1's guarded updates are not atomic):
 * - held + recent < DIGEST_THRESHOLD (recent: the user's anomaly messages decided in the last
 *   DIGEST_WINDOW_MS, sent alone or carried by a digest) → this record is sent alone;
 * - otherwise the user is in a flood: at most one message per DIGEST_INTERVAL_MS. Before the
 *   interval since the user's last anomaly message ends, the record waits; after it, every held
 *   record of the user on that channel (up to MAX_MEMBERS, oldest first) becomes one digest
 *   record, and each member is marked `digested` with the digest's id. One held record alone is
 *   sent alone: a digest of one says less than the message itself.
 * So a burst of 6 becomes one digest of 6; a steady trickle gives THRESHOLD − 1 single messages and
 * then one digest per interval.
 *
 * The digest is an ordinary record (retries, dead, replay). It lists its members (digestOf) before
 * they are marked, so a crash in between is repaired by the next run, never sent twice.
 */
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import { exclusively, guardedMany, guardedTransition, lockName, StoreBusyError } from '../db/guarded';
import { isDuplicateKey } from '../db/errors';
import type { ChannelKind, NotificationRecord } from '../db/notificationRecord';
import { loadUserSettings } from '../settings/store';
import { planningSettings } from '../workflow/context';
import type { Language } from '../workflow/message';
import { enqueueDelivery } from './enqueue';
import * as t from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'redis' | 'store'>;

/** Members one digest lists; more held records wait for the next digest. */
export const MAX_MEMBERS = 50;
export const DIGEST_TRIGGER_TYPE = 'digest';

export type DigestDecision =
  /** Send this record by itself. */
  | { kind: 'alone' }
  /** This record went out in the digest `digestId` (it is final now). */
  | { kind: 'digested'; digestId: string }
  /** Wait until `until`, then decide again (a flood's interval, or the user's lock was busy). */
  | { kind: 'wait'; until: Date; reason: string };

export async function decideDigest(ctx: Ctx, recordId: string, now: Date): Promise<DigestDecision> {
  const Records = ctx.models.notificationRecords;
  const record = await Records.findById(recordId, { userId: 1 }).lean<{ userId: string }>();
  if (!record) return { kind: 'alone' };
  try {
    // One decision per user at a time: which held records go together is a read of several.
    return await exclusively(ctx, lockName('digest', record.userId), () => decideLocked(ctx, recordId, now));
  } catch (err) {
    if (err instanceof StoreBusyError) return { kind: 'wait', until: new Date(now.getTime() + 1000), reason: 'digest_lock_busy' };
    throw err;
  }
}

async function decideLocked(ctx: Ctx, recordId: string, now: Date): Promise<DigestDecision> {
  const Records = ctx.models.notificationRecords;
  const { config } = ctx;
  const record = await Records.findById(recordId).lean<NotificationRecord>();
  if (!record) return { kind: 'alone' };
  if (record.digestState === 'member' && record.digestId) return { kind: 'digested', digestId: record.digestId };
  if (record.status !== 'pending' || record.digestState !== 'held') return { kind: 'alone' };
  const { userId, channel } = record;

  // A digest written by a run that died before marking its members: finish that run's work.
  const unfinished = await Records.findOne({ userId, digestState: 'digest', digestOf: recordId }).lean<NotificationRecord>();
  if (unfinished) return markMembers(ctx, String(unfinished._id), unfinished.digestOf ?? [], now);

  if (config.DIGEST_THRESHOLD === 0) return markAlone(ctx, recordId, now);
  const settings = await loadUserSettings(ctx, userId);
  const held = await Records.find(
    { userId, channel, status: 'pending', digestState: 'held', triggerType: { $nin: settings.optOutTriggerTypes } },
    { message: 1, triggerType: 1, createdAt: 1 },
  )
    .sort({ _id: 1 })
    .limit(MAX_MEMBERS)
    .lean<NotificationRecord[]>();
  if (!held.some((r) => String(r._id) === recordId)) held.push(record);
  const recent = await Records.countDocuments({
    userId,
    digestState: { $in: ['alone', 'member'] },
    digestDecidedAt: { $gte: new Date(now.getTime() - config.DIGEST_WINDOW_MS) },
  });
  if (held.length + recent < config.DIGEST_THRESHOLD) return markAlone(ctx, recordId, now);

  const last = await Records.findOne({ userId, digestState: { $in: ['alone', 'digest'] } }, { digestDecidedAt: 1 })
    .sort({ digestDecidedAt: -1 })
    .lean<NotificationRecord>();
  const nextAt = last?.digestDecidedAt ? last.digestDecidedAt.getTime() + config.DIGEST_INTERVAL_MS : 0;
  if (now.getTime() < nextAt) return { kind: 'wait', until: new Date(nextAt), reason: 'digest_interval' };
  if (held.length === 1) return markAlone(ctx, recordId, now);

  const members = held.sort((a, b) => String(a._id).localeCompare(String(b._id)));
  const { language, timeZone } = planningSettings(settings);
  const digestId = await createDigestRecord(ctx, { userId, channel, members, language, timeZone, now });
  return markMembers(
    ctx,
    digestId,
    members.map((m) => String(m._id)),
    now,
  );
}

async function markAlone(ctx: Ctx, recordId: string, now: Date): Promise<DigestDecision> {
  await guardedTransition(ctx, lockName('notification', recordId), () => t.markAlone(ctx.models.notificationRecords, recordId, now));
  return { kind: 'alone' };
}

async function createDigestRecord(
  ctx: Ctx,
  d: { userId: string; channel: ChannelKind; members: NotificationRecord[]; language: Language; timeZone: string; now: Date },
): Promise<string> {
  const Records = ctx.models.notificationRecords;
  // Keyed by its first member: the same group written twice (a retry after a crash) is one record.
  const dedupeKey = `digest|${d.userId}|${String(d.members[0]._id)}`;
  try {
    const doc = await Records.create({
      _id: new Types.ObjectId(),
      userId: d.userId,
      channel: d.channel,
      dedupeKey,
      triggerType: DIGEST_TRIGGER_TYPE,
      target: { type: 'digest', id: d.userId },
      message: buildDigestMessage(
        d.language,
        d.members.map((m) => m.message),
        `${ctx.config.PUBLIC_BASE_URL}/app`,
      ),
      status: 'pending',
      attemptCount: 0,
      maxAttempts: ctx.config.NOTIFY_ATTEMPTS,
      digestState: 'digest',
      digestDecidedAt: d.now,
      digestOf: d.members.map((m) => String(m._id)),
      history: [{ at: d.now, event: 'requested', detail: `digest of ${d.members.length}` }],
    });
    return String(doc._id);
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const existing = await Records.findOne({ channel: d.channel, dedupeKey }, { _id: 1 }).lean<{ _id: unknown }>();
    if (!existing) throw err;
    return String(existing._id);
  }
}

async function markMembers(ctx: Ctx, digestId: string, memberIds: string[], now: Date): Promise<DigestDecision> {
  // Each member under its lock where the store needs one (an acknowledgement may be writing it); one
  // still busy after a few tries stays held for the next run, which finds it listed here (digestOf).
  let left = memberIds;
  for (let tries = 0; left.length && tries < 20; tries++) {
    if (tries) await new Promise((r) => setTimeout(r, 50));
    const names = new Map(left.map((id) => [lockName('notification', id), id]));
    const done = await guardedMany(ctx, [...names.keys()], async (locked) => {
      const ids = locked.map((name) => names.get(name)!);
      await t.markDigested(ctx.models.notificationRecords, { ids, digestId, now });
      return new Set(ids);
    });
    left = left.filter((id) => !done.has(id));
  }
  await enqueueDelivery(ctx, digestId);
  ctx.logger.info({ digestId, members: memberIds.length, busy: left.length }, 'anomalies grouped into a digest');
  return { kind: 'digested', digestId };
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** "你的计划有 6 个新异常" + one numbered line per member: its title and the first line of its text. Pure. */
export function buildDigestMessage(language: Language, members: { title: string; summary: string }[], actionUrl: string) {
  const zh = language === 'zh-CN';
  const lines = members.map((m, i) => `${i + 1}. ${clip(m.title.trim(), 120)} — ${clip(m.summary.split('\n')[0].trim(), 160)}`);
  return {
    title: zh ? `你的计划有 ${members.length} 个新异常` : `${members.length} new anomalies in your plan`,
    summary: `${zh ? '短时间内发生了多个异常，合并为一条消息：' : 'Several anomalies came up in a short time, so here they are in one message:'}\n${lines.join('\n')}`,
    actionText: zh ? '查看全部' : 'View all',
    actionUrl,
  };
}
