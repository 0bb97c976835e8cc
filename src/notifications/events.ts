/** What the host product hears of a record's end: notification.sent, .skipped (reason), .dead (code). */
import type { AppContext } from '../context';
import type { Types } from 'mongoose';
import { emitEvent } from '../events/emit';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config' | 'logger'>;

export interface RecordFacts {
  _id: Types.ObjectId | string;
  userId: string;
  channel: string;
  dedupeKey: string;
  triggerType: string;
  attemptCount?: number;
}

export type RecordEnd = { status: 'sent' } | { status: 'skipped'; reason: string } | { status: 'dead'; code: string };

export async function emitRecordEvent(ctx: Ctx, record: RecordFacts, end: RecordEnd, at = new Date()): Promise<void> {
  const recordId = String(record._id);
  const data: Record<string, unknown> = { recordId, userId: record.userId, channel: record.channel, dedupeKey: record.dedupeKey, triggerType: record.triggerType };
  if (end.status === 'skipped') data.reason = end.reason;
  if (end.status === 'dead') data.code = end.code;
  // A replayed record that dies again is a new event; its sending and skipping happen once.
  const key = end.status === 'dead' ? `${recordId}:${record.attemptCount ?? 0}` : recordId;
  await emitEvent(ctx, { type: `notification.${end.status}`, key, userId: record.userId, data, at });
}
