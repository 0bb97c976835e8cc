/**
 * A change written without its event (the process stopped between the two writes) gets its event
 * from the reconciler, once; a record's end event needs none: it is in the record's own update.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { reconcileDomainEvents } from '../src/events/domainReconcile';
import { relayRecordEvents } from '../src/notifications/events';
import { eventIdFor } from '../src/events/ids';
import { sentRecord } from './support/records';

let df: TestDueflow;
beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df.stop();
});

const later = () => new Date(Date.now() + 20_000);

test('a confirmed preview, an acknowledged anomaly and an answered reminder card without their events get them, once', async () => {
  const { models } = df.ctx;
  const userId = `u-${randomUUID()}`;
  const preview = await models.previews.create({
    userId,
    triggerId: String(new Types.ObjectId()),
    triggerType: 'important_urgent_task',
    status: 'confirmed',
    confirmedAt: new Date(),
    answeredVia: 'feishu',
    candidate: { kind: 'notify_only' },
    summaryText: 's',
    expiresAt: new Date(Date.now() + 3600_000),
  });
  const trigger = await models.triggers.create({
    userId,
    type: 'disk_full',
    source: 'api_trigger',
    target: { type: 'server', id: 'db-1' },
    dedupeKey: randomUUID(),
    status: 'closed',
    anomaly: { severity: 'critical', title: 't', detail: 'd', occurredAt: new Date(), acknowledgedAt: new Date(), acknowledgedVia: 'app' },
  });
  const record = await models.notificationRecords.create({
    userId,
    channel: 'feishu_app',
    dedupeKey: randomUUID(),
    triggerType: 'reminder',
    target: { type: 'reminder', id: 'r-1' },
    message: { title: 't', summary: 's' },
    status: 'sent',
    attemptCount: 1,
    maxAttempts: 5,
    replyKind: 'reminder',
    reply: { kind: 'done', at: new Date() },
  });

  expect(await reconcileDomainEvents(df.ctx, later())).toBe(3);
  const ids = [
    eventIdFor('preview.confirmed', String(preview._id)),
    eventIdFor('anomaly.acknowledged', String(trigger._id)),
    eventIdFor('reminder.done', String(record._id)),
  ];
  const events = await models.events.find({ _id: { $in: ids } }).lean<any[]>();
  expect(events.map((e) => e.type).sort()).toEqual(['anomaly.acknowledged', 'preview.confirmed', 'reminder.done']);
  expect(JSON.parse(events.find((e) => e.type === 'preview.confirmed').dataJson)).toMatchObject({
    previewId: String(preview._id),
    userId,
    confirmedVia: 'feishu',
  });
  // A second run finds them all.
  expect(await reconcileDomainEvents(df.ctx, later())).toBe(0);
});

test("a record's end event rides in its own update and the relay moves it to the event log, once", async () => {
  const { models } = df.ctx;
  const recordId = await sentRecord(models, 'r-2');
  expect((await models.notificationRecords.findById(recordId).lean())!.outboxCount).toBe(1);
  expect(await relayRecordEvents(df.ctx)).toBeGreaterThanOrEqual(1);
  const event = await models.events.findById(eventIdFor('notification.sent', recordId)).lean<any>();
  expect(JSON.parse(event.dataJson)).toMatchObject({ recordId, channel: 'feishu_bot', triggerType: 'reminder' });
  expect((await models.notificationRecords.findById(recordId).lean())!.outboxCount).toBeUndefined();
  expect(await relayRecordEvents(df.ctx)).toBe(0);
});
