/**
 * What the host product hears of a record's end: notification.sent, .skipped (reason), .dead
 * (code). The end's transition writes the event into the record's own outbox, in the same update
 * (notifications/transitions.ts), so the delivery path spends no command on it and a crash cannot
 * separate the two; this relay (a maintenance job every EVENT_RELAY_INTERVAL_MS) moves outboxes
 * into the event log, a batch at a time, and clears each one guarded on what it read.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import type { EventType } from '../events/types';
import { emitEvent } from '../events/emit';
import { guardedOrNull, lockName } from '../db/guarded';
import { clearOutbox } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger' | 'store' | 'redis'>;

export async function relayRecordEvents(ctx: Ctx, batchSize = 200): Promise<number> {
  const Records = ctx.models.notificationRecords;
  const records = await Records.find({ outboxCount: { $gt: 0 } }, { userId: 1, channel: 1, dedupeKey: 1, triggerType: 1, outbox: 1, outboxCount: 1 })
    .limit(batchSize)
    .lean<Array<Pick<NotificationRecord, '_id' | 'userId' | 'channel' | 'dedupeKey' | 'triggerType' | 'outbox' | 'outboxCount'>>>();
  let relayed = 0;
  for (const r of records) {
    const recordId = String(r._id);
    for (const e of r.outbox ?? []) {
      const data: Record<string, unknown> = { recordId, userId: r.userId, channel: r.channel, dedupeKey: r.dedupeKey, triggerType: r.triggerType };
      if (e.type === 'notification.skipped') data.reason = e.reason;
      if (e.type === 'notification.dead') data.code = e.reason;
      await emitEvent(ctx, { type: e.type as EventType, key: e.key, userId: r.userId, at: e.at, data });
      relayed++;
    }
    await guardedOrNull(ctx, lockName('notification', recordId), () => clearOutbox(Records, r._id, r.outboxCount ?? 0));
  }
  return relayed;
}
