/**
 * What the host product hears of a record's end: notification.sent, .skipped (reason), .dead
 * (code). The end's transition writes the event into the record's own outbox, in the same update
 * (notifications/transitions.ts), so the delivery path spends no command on it and a crash cannot
 * separate the two; this relay moves outboxes into the event log, a batch at a time, and clears
 * each one guarded on what it read. It runs when a worker's delivery ended (relayWake.ts: at most
 * once per EVENT_RELAY_INTERVAL_MS, nothing while idle), and in every reconcile for what a crash left.
 *
 * A batch costs a handful of commands, not a few per record: the read, one subscriber lookup, one
 * insert of all its events (emitEvents), their deliveries and fan-out when some endpoint wants
 * them, and one update of the guarded clears (clearOutboxes), under the records' locks taken in one
 * pipeline where the store needs them (guardedMany). The outbox is cleared only after its events
 * are written: a crash in between writes them again next run, harmless (their ids are derived).
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import type { EventType } from '../events/types';
import { emitEvents, type EmitInput } from '../events/emit';
import { exclusively, guardedMany, lockName, StoreBusyError } from '../db/guarded';
import { clearOutboxes } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'store' | 'redis'>;
type Read = Pick<NotificationRecord, '_id' | 'userId' | 'channel' | 'dedupeKey' | 'triggerType' | 'outbox' | 'outboxCount'>;

/**
 * What one relay run did, and when the next should run: `now` after a full batch, `later` when
 * some of it waits on another writer (a record's lock busy, an outbox grown since the read, or
 * another process's run holding the relay, which may have read before the newest ends landed).
 */
export interface RelayRun {
  events: number;
  next: 'none' | 'now' | 'later';
}

/** The next run, from what this one read and cleared. */
export function relayNext(r: { read: number; cleared: number; batchSize: number }): RelayRun['next'] {
  if (r.read === r.batchSize) return 'now';
  return r.cleared < r.read ? 'later' : 'none';
}

/** Relays one batch of outboxes; answers how many events it wrote (0 when another run holds the relay). */
export async function relayRecordEvents(ctx: Ctx, batchSize = 200): Promise<number> {
  return (await relayRecordEventsOnce(ctx, batchSize)).events;
}

/** One relay run. */
export async function relayRecordEventsOnce(ctx: Ctx, batchSize = 200): Promise<RelayRun> {
  try {
    // One run at a time, and a second one just skips (no wait): the running one reads the same
    // records. Saves two runs inserting the same events.
    return await exclusively(ctx, lockName('event', 'record-relay'), () => relayBatch(ctx, batchSize), 0);
  } catch (err) {
    if (err instanceof StoreBusyError) return { events: 0, next: 'later' };
    throw err;
  }
}

async function relayBatch(ctx: Ctx, batchSize: number): Promise<RelayRun> {
  const Records = ctx.models.notificationRecords;
  const records = await Records.find({ outboxCount: { $gt: 0 } }, { userId: 1, channel: 1, dedupeKey: 1, triggerType: 1, outbox: 1, outboxCount: 1 })
    .limit(batchSize)
    .batchSize(batchSize)
    .lean<Read[]>();
  if (!records.length) return { events: 0, next: 'none' };
  // In record order, each record's events in its outbox's order: emitEvents gives them `seq` in this order.
  const events = records.flatMap((r) => (r.outbox ?? []).map((e) => eventOf(r, e)));
  await emitEvents(ctx, events);

  const byLock = new Map(records.map((r) => [lockName('notification', r._id), r]));
  const cleared = await guardedMany(ctx, [...byLock.keys()], (locked) =>
    clearOutboxes(
      Records,
      locked.map((name) => ({ id: byLock.get(name)!._id, count: byLock.get(name)!.outboxCount ?? 0 })),
    ),
  );
  ctx.logger.debug({ records: records.length, events: events.length, cleared }, 'record events relayed');
  return { events: events.length, next: relayNext({ read: records.length, cleared, batchSize }) };
}

function eventOf(r: Read, e: NonNullable<Read['outbox']>[number]): EmitInput {
  const recordId = String(r._id);
  const data: Record<string, unknown> = { recordId, userId: r.userId, channel: r.channel, dedupeKey: r.dedupeKey, triggerType: r.triggerType };
  if (e.type === 'notification.skipped') data.reason = e.reason;
  if (e.type === 'notification.dead') data.code = e.reason;
  return { type: e.type as EventType, key: e.key, userId: r.userId, at: e.at, data };
}
