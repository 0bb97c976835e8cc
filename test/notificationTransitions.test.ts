/**
 * The usual path's claim and `sent` are written through the driver, not mongoose: they must store
 * what mongoose would have stored (an ObjectId, `updatedAt`, no field for an undefined value) and
 * keep their guards.
 */
import { randomUUID } from 'node:crypto';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { claimUnreadForSending, markSent } from '../src/notifications/transitions';

let df: TestDueflow;
beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df.stop();
});

const newRecord = () =>
  df.ctx.models.notificationRecords.create({
    userId: `u-${randomUUID()}`,
    channel: 'feishu_bot',
    dedupeKey: randomUUID(),
    triggerType: 'reminder',
    target: { type: 'reminder', id: 'r-1' },
    message: { title: 't', summary: 's' },
    maxAttempts: 5,
  });

test('claim by string id → sending, answered as it was before; a second claim takes nothing', async () => {
  const Records = df.ctx.models.notificationRecords;
  const record = await newRecord();
  const at = new Date(Date.now() + 1000);
  const before = await claimUnreadForSending(Records, String(record._id), at);
  expect(before).toMatchObject({ status: 'pending', attemptCount: 0 });
  expect(String(before!._id)).toBe(String(record._id));
  expect(await claimUnreadForSending(Records, String(record._id), at)).toBeNull();
  const stored = await Records.findById(record._id).lean();
  expect(stored).toMatchObject({ status: 'sending', attemptCount: 1, sendingSince: at, updatedAt: at });
});

test('sent: stored as mongoose would (no null for an undefined field), once; not over a record that is not sending', async () => {
  const Records = df.ctx.models.notificationRecords;
  const record = await newRecord();
  const at = new Date(Date.now() + 1000);
  await claimUnreadForSending(Records, record._id, at);
  const outcome = { kind: 'sent' as const, code: 'ok', rateLimited: false, durationMs: 7, request: { url: 'u', body: { a: 1 } } };
  expect(await markSent(Records, String(record._id), at, 1, outcome)).toBe(true);
  expect(await markSent(Records, String(record._id), at, 1, outcome)).toBe(false);
  const raw = await Records.collection.findOne({ _id: record._id });
  expect(raw).toMatchObject({ status: 'sent', sentAt: at, updatedAt: at, outboxCount: 1, providerRequest: JSON.stringify(outcome.request) });
  expect(raw).not.toHaveProperty('providerMessageId');
  expect(raw).not.toHaveProperty('providerResponse');
  expect(raw).not.toHaveProperty('sendingSince');
  expect(raw!.history).toEqual([{ at, event: 'attempt', attempt: 1, outcome: 'sent', code: 'ok', durationMs: 7 }]);
  expect(raw!.outbox).toEqual([{ type: 'notification.sent', key: String(record._id), at }]);
  // mongoose reads it back as a valid document
  await expect((await Records.findById(record._id))!.validate()).resolves.toBeUndefined();
});
