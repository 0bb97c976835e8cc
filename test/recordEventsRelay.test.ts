/**
 * The record relay (notifications/events.ts) moves records' outboxes into the event log a batch at
 * a time: a handful of MongoDB commands per batch whatever its size, each event once and in its
 * record's order, deliveries and jobs for the subscribed endpoints, an outbox that grew meanwhile
 * kept (the guard), a record whose lock is busy left for the next run, and two runs at once doing
 * the work once. Real Redis, real database (commands counted with the driver's command
 * monitoring on a second connection); api mode: no worker of its own runs the relay or the jobs.
 */
import { randomUUID } from 'node:crypto';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { asService } from './support/api';
import { commandLog, type CommandLog } from './support/commandLog';
import { lockMany } from '../src/db/guardLock';
import { guardedMany, lockName } from '../src/db/guarded';
import { relayRecordEvents } from '../src/notifications/events';
import { deliveryIdFor, eventIdFor, eventJobId } from '../src/events/ids';
import { claimForReplay, markDeadAfterAttempt, markSent, skipClaimed } from '../src/notifications/transitions';
import type { ProviderOutcome } from '../src/providers/types';

let df: TestDueflow;
let log: CommandLog;
let ctx: TestDueflow['ctx'];

beforeAll(async () => {
  df = await startTestDueflow('api');
  log = await commandLog(df.config);
  ctx = { ...df.ctx, models: log.models };
});
afterAll(async () => {
  await log?.close();
  await df?.stop();
});
afterEach(async () => {
  await df.ctx.models.webhookEndpoints.deleteMany({});
});

const Records = () => df.ctx.models.notificationRecords;
const outcome = (kind: ProviderOutcome['kind']): ProviderOutcome => ({
  kind,
  code: kind === 'sent' ? 'ok' : 'feishu_1',
  rateLimited: false,
  durationMs: 5,
  request: { url: 'u', body: {} },
});

/** Runs the relay once and answers what it returned and the MongoDB commands it sent. */
async function relay(over: Partial<typeof ctx> = {}, batchSize = 200) {
  const { value: relayed, commands } = await log.counted(() => relayRecordEvents({ ...ctx, ...over }, batchSize));
  return { relayed, commands };
}

async function inParallel<T>(items: T[], fn: (item: T) => Promise<unknown>, width = 25): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

type Shape = 'sent' | 'skipped' | 'dead' | 'dead-then-sent';

/**
 * Records that ended through the real end transitions, so their outboxes are what delivery
 * writes: sent, skipped (before an attempt), dead, or dead then replayed and sent (two events).
 */
async function recordsThatEnded(shapes: Shape[]): Promise<Array<{ id: string; events: string[] }>> {
  const since = new Date(Date.now() - 1000);
  const docs = await Records().insertMany(
    shapes.map(() => ({
      userId: `u-${randomUUID()}`,
      channel: 'feishu_bot',
      dedupeKey: randomUUID(),
      triggerType: 'reminder',
      target: { type: 'reminder', id: 'r' },
      message: { title: 't', summary: 's' },
      status: 'sending',
      sendingSince: since,
      attemptCount: 1,
      maxAttempts: 5,
    })),
  );
  const made = docs.map((d, i) => ({ id: String(d._id), shape: shapes[i] }));
  await inParallel(made, async ({ id, shape }) => {
    const now = new Date();
    if (shape === 'sent') await markSent(Records(), id, now, 1, outcome('sent'));
    if (shape === 'skipped') await skipClaimed(Records(), id, since, now, 'user_opted_out');
    if (shape === 'dead' || shape === 'dead-then-sent') await markDeadAfterAttempt(Records(), id, now, 1, outcome('permanent'), 'permanent');
    if (shape === 'dead-then-sent') {
      await claimForReplay(Records(), id, new Date());
      await markSent(Records(), id, new Date(), 2, outcome('sent'));
    }
  });
  return made.map(({ id, shape }) => ({ id, events: expectedEvents(id, shape) }));
}

function expectedEvents(id: string, shape: Shape): string[] {
  if (shape === 'sent') return [eventIdFor('notification.sent', id)];
  if (shape === 'skipped') return [eventIdFor('notification.skipped', id)];
  if (shape === 'dead') return [eventIdFor('notification.dead', `${id}:1`)];
  return [eventIdFor('notification.dead', `${id}:1`), eventIdFor('notification.sent', id)];
}

/** The relayed events of these records, by record id, in `seq` order. */
async function eventsOf(recordIds: string[]): Promise<Map<string, any[]>> {
  const wanted = new Set(recordIds);
  const all = await df.ctx.models.events.find({ type: { $in: ['notification.sent', 'notification.skipped', 'notification.dead'] } }).lean<any[]>();
  const byRecord = new Map<string, any[]>(recordIds.map((id) => [id, []]));
  for (const e of all.sort((a, b) => String(a.seq).localeCompare(String(b.seq)))) {
    const recordId = JSON.parse(e.dataJson).recordId as string;
    if (wanted.has(recordId)) byRecord.get(recordId)!.push(e);
  }
  return byRecord;
}

async function outboxesLeft(recordIds: string[]): Promise<number> {
  return Records().countDocuments({ _id: { $in: recordIds }, outboxCount: { $gt: 0 } });
}

async function newEndpoint(events: string[]): Promise<string> {
  // Plain fetch: the answer carries the secret, which the suite's leak scan must never see.
  const res = await fetch(`${df.baseUrl}/api/v1/webhook-endpoints`, {
    method: 'POST',
    headers: { authorization: asService(), 'content-type': 'application/json' },
    body: JSON.stringify({ url: `http://127.0.0.1:9/hook/${randomUUID()}`, events }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const mixed = (n: number): Shape[] => Array.from({ length: n }, (_, i) => (['sent', 'dead-then-sent', 'skipped', 'sent', 'dead'] as const)[i % 5]);

test('250 records: a batch of 200 costs four MongoDB commands, not some per record; every event once, in its record order', async () => {
  const records = await recordsThatEnded(mixed(250));
  const ids = records.map((r) => r.id);
  const total = records.reduce((n, r) => n + r.events.length, 0);
  expect(total).toBe(300);

  const first = await relay();
  // The read, the subscriber lookup, one insert of all the batch's events, one update of the guarded clears.
  expect(first.commands.length).toBeLessThanOrEqual(8);
  expect(first.commands).toEqual(['find notification_records', 'find webhook_endpoints', 'insert events', 'update notification_records']);
  expect(first.relayed).toBe(240);
  expect(await outboxesLeft(ids)).toBe(50);

  const second = await relay();
  expect(second.commands).toEqual(['find notification_records', 'find webhook_endpoints', 'insert events', 'update notification_records']);
  expect(first.relayed + second.relayed).toBe(total);
  expect(await outboxesLeft(ids)).toBe(0);
  expect(await Records().countDocuments({ _id: { $in: ids }, outbox: { $exists: true } })).toBe(0);

  const byRecord = await eventsOf(ids);
  for (const r of records) expect(byRecord.get(r.id)!.map((e) => e._id)).toEqual(r.events);
  // No endpoint: nothing to fan out, each is written fanned out.
  const all = [...byRecord.values()].flat();
  expect(all.every((e) => e.fannedOutAt)).toBe(true);
  expect(JSON.parse(byRecord.get(ids[2])![0].dataJson)).toMatchObject({
    recordId: ids[2],
    channel: 'feishu_bot',
    triggerType: 'reminder',
    reason: 'user_opted_out',
  });
  expect(JSON.parse(byRecord.get(ids[4])![0].dataJson)).toMatchObject({ recordId: ids[4], code: 'feishu_1' });

  // Nothing left: one read.
  expect(await relay()).toEqual({ relayed: 0, commands: ['find notification_records'] });
}, 120_000);

test('with a subscribed endpoint: each event it wants gets one delivery and one job, the rest none; a disabled endpoint gets nothing', async () => {
  const endpointId = await newEndpoint(['notification.sent']);
  const disabledId = await newEndpoint(['*']);
  await df.ctx.models.webhookEndpoints.updateOne({ _id: disabledId }, { $set: { enabled: false } });
  const records = await recordsThatEnded(mixed(40));
  const ids = records.map((r) => r.id);
  const jobsBefore = await df.ctx.queues.events.count();

  const run = await relay();
  expect(run.relayed).toBe(48);
  // And for the subscribed ones: their deliveries in one insert, fannedOutAt in one update.
  expect(run.commands).toEqual([
    'find notification_records',
    'find webhook_endpoints',
    'insert events',
    'insert event_deliveries',
    'update events',
    'update notification_records',
  ]);
  expect(await outboxesLeft(ids)).toBe(0);

  const sent = [...(await eventsOf(ids)).values()].flat().filter((e) => e.type === 'notification.sent');
  expect(sent).toHaveLength(24);
  const deliveries = await df.ctx.models.eventDeliveries.find({ eventId: { $in: [...(await eventsOf(ids)).values()].flat().map((e) => e._id) } }).lean<any[]>();
  expect(deliveries.map((d) => d._id).sort()).toEqual(sent.map((e) => deliveryIdFor(endpointId, e._id)).sort());
  expect(deliveries.every((d) => d.status === 'pending' && d.attemptCount === 0)).toBe(true);
  expect((await df.ctx.models.events.find({ _id: { $in: sent.map((e) => e._id) } }).lean<any[]>()).every((e) => e.fannedOutAt)).toBe(true);
  for (const e of sent) expect(await df.ctx.queues.events.getJob(eventJobId(deliveryIdFor(endpointId, e._id)))).toBeDefined();
  expect((await df.ctx.queues.events.count()) - jobsBefore).toBe(24);
});

test('an outbox that gained an event between the read and the clear is kept (the guard) and goes out next run; a busy lock leaves its record for the next run', async () => {
  const [grows, plain, busy] = await recordsThatEnded(['dead', 'sent', 'sent']);
  const ids = [grows.id, plain.id, busy.id];
  // The record is replayed and sent while the relay writes the events it read.
  const grow = async () => {
    await claimForReplay(Records(), grows.id, new Date());
    await markSent(Records(), grows.id, new Date(), 2, outcome('sent'));
  };
  const Clearing = new Proxy(ctx.models.notificationRecords, {
    get(target, prop) {
      // The clear, whichever write it is: the outbox grows right before it.
      if (prop === 'updateMany' || prop === 'bulkWrite')
        return async (...args: unknown[]) => {
          await grow();
          return (Reflect.get(target, prop, target) as (...a: unknown[]) => unknown).apply(target, args);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const held = await lockMany(df.ctx, [lockName('notification', busy.id)]);
  expect(held.locked).toHaveLength(1);
  const locking = df.ctx.store.guardedUpdates === 'locked';
  try {
    expect((await relay({ models: { ...ctx.models, notificationRecords: Clearing } })).relayed).toBe(3);
  } finally {
    await held.release();
  }
  const after = await Records().findById(grows.id).lean<any>();
  expect(after.outboxCount).toBe(2);
  expect(after.outbox.map((e: any) => e.type)).toEqual(['notification.dead', 'notification.sent']);
  expect((await Records().findById(plain.id).lean<any>()).outboxCount).toBeUndefined();
  // Where guarded updates need locks, a record whose lock was taken is left as it was.
  expect((await Records().findById(busy.id).lean<any>()).outboxCount).toBe(locking ? 1 : undefined);
  let byRecord = await eventsOf(ids);
  expect(byRecord.get(grows.id)!.map((e) => e._id)).toEqual([eventIdFor('notification.dead', `${grows.id}:1`)]);

  // The next run writes the new event (the ones written before are duplicates, ignored) and clears.
  expect((await relay()).relayed).toBe(locking ? 3 : 2);
  expect(await outboxesLeft(ids)).toBe(0);
  byRecord = await eventsOf(ids);
  expect(byRecord.get(grows.id)!.map((e) => e._id)).toEqual([eventIdFor('notification.dead', `${grows.id}:1`), eventIdFor('notification.sent', grows.id)]);
  expect(byRecord.get(plain.id)!.map((e) => e._id)).toEqual(plain.events);
  expect(byRecord.get(busy.id)!.map((e) => e._id)).toEqual(busy.events);
});

test('two relay runs started at once: one does the work, the other skips; each event is written once', async () => {
  const records = await recordsThatEnded(mixed(100));
  const ids = records.map((r) => r.id);
  const { value: runs, commands } = await log.counted(() => Promise.all([relayRecordEvents(ctx), relayRecordEvents(ctx)]));
  expect(runs.sort((a, b) => a - b)).toEqual([0, 120]);
  // One read and one insert of the events between them: the second run sent nothing.
  expect(commands).toEqual(['find notification_records', 'find webhook_endpoints', 'insert events', 'update notification_records']);
  expect(await outboxesLeft(ids)).toBe(0);
  const byRecord = await eventsOf(ids);
  for (const r of records) expect(byRecord.get(r.id)!.map((e) => e._id)).toEqual(r.events);

  // The lease is given back: the next run runs (and finds nothing).
  expect(await relay()).toEqual({ relayed: 0, commands: ['find notification_records'] });
}, 120_000);

test('guardedMany: on a store that needs locks, only the names whose lock was free, held until fn is done; on an atomic one, all, no lock', async () => {
  const names = Array.from({ length: 4 }, () => lockName('notification', randomUUID()));
  const held = await lockMany(df.ctx, [names[1]]);
  try {
    const locked = await guardedMany({ ...df.ctx, store: { guardedUpdates: 'locked' } }, names, async (got) => {
      // Held while fn runs: nobody else takes them.
      expect((await lockMany(df.ctx, got)).locked).toEqual([]);
      return got;
    });
    expect(locked).toEqual([names[0], names[2], names[3]]);
    expect(await guardedMany({ ...df.ctx, store: { guardedUpdates: 'atomic' } }, names, async (got) => got)).toEqual(names);
  } finally {
    await held.release();
  }
  // Released after: all free again.
  const again = await lockMany(df.ctx, names);
  expect(again.locked).toEqual(names);
  await again.release();
});
