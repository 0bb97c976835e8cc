/**
 * GET /api/v1/events: every event in `seq` order, from a cursor. Events younger than
 * EVENT_PULL_SETTLE_MS are held back: two processes' ObjectIds within one second are not in time
 * order, and a cursor that moved past a later id would never see an earlier one written after it.
 */
import { Types } from 'mongoose';
import type { AppContext } from '../context';
import type { EventView } from './schemas';
import { toEventView } from './views';

export interface EventPage {
  items: EventView[];
  nextCursor: string | null;
  hasMore: boolean;
}

export async function listEvents(ctx: Pick<AppContext, 'models' | 'config'>, q: { after?: string; limit: number }, now = new Date()): Promise<EventPage> {
  const seq: Record<string, Types.ObjectId> = {};
  if (q.after) seq.$gt = new Types.ObjectId(q.after);
  const settle = ctx.config.EVENT_PULL_SETTLE_MS;
  // ObjectIds keep seconds: everything made in a second wholly past the settle time.
  if (settle > 0) seq.$lt = Types.ObjectId.createFromTime(Math.floor((now.getTime() - settle) / 1000));
  const filter = Object.keys(seq).length ? { seq } : {};
  const docs = await ctx.models.events
    .find(filter, { type: 1, at: 1, userId: 1, dataJson: 1, seq: 1 })
    .sort({ seq: 1 })
    .limit(q.limit + 1)
    .lean();
  const page = docs.slice(0, q.limit).map((d) => toEventView(d as never));
  return { items: page, nextCursor: page.length ? page[page.length - 1].cursor : (q.after ?? null), hasMore: docs.length > q.limit };
}
