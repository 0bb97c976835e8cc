/** The reconciler rebuilds what Redis lost from MongoDB, and unsticks records a dead sender left. */
import { purgeExpired } from '../src/maintenance/purge';
import { reconcileNotifications } from '../src/reconciler/notifications';
import { asService, call, notificationBody, userWithBot as newBotUser } from './support/api';
import { waitFor } from './support/env';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';

let feishu: FeishuServer;
let api: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer({ rateLimit: false });
  api = await startTestDueflow('api'); // no worker: jobs wait in Redis until the test says
});
afterAll(async () => {
  await api.stop();
  await feishu.close();
});

const userWithBot = async () => (await newBotUser(api.baseUrl, feishu)).userId;

const later = () => new Date(Date.now() + 60_000); // past the reconciler's settle time

test('records whose jobs Redis lost are enqueued again and delivered once', async () => {
  const users = await Promise.all(Array.from({ length: 5 }, userWithBot));
  const ids: string[] = [];
  for (const userId of users)
    for (let i = 0; i < 10; i++)
      ids.push((await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) })).body.id);
  expect(await api.ctx.queues.notifications.count()).toBe(50);

  await api.ctx.queues.notifications.obliterate({ force: true }); // Redis lost every job
  expect(await api.ctx.queues.notifications.count()).toBe(0);

  const repairs = await reconcileNotifications(api.ctx, later());
  expect(repairs).toEqual({ requeued: 50, unstuck: 0 });
  // Running it again finds nothing to repair: the jobs are there now.
  expect(await reconcileNotifications(api.ctx, later())).toEqual({ requeued: 0, unstuck: 0 });

  const worker = await startTestDueflow('worker', { MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX }, { cleanup: false });
  try {
    await waitFor(async () => (await api.ctx.models.notificationRecords.countDocuments({ _id: { $in: ids }, status: 'sent' })) === 50, 30_000, 'all 50 sent');
  } finally {
    await worker.stop();
  }
  expect(feishu.messages).toHaveLength(50);
  const text = await (await fetch(`${api.baseUrl}/metrics`)).text();
  expect(text).toMatch(/dueflow_repairs_total\{kind="notification_job_missing"\} 50/);
}, 60_000);

test("the repair of a lapsed sending waits for the record's lock: a sender finishing under it keeps its sent", async () => {
  const userId = await userWithBot();
  const { body } = await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  const Records = api.ctx.models.notificationRecords;
  await Records.updateOne({ _id: body.id }, { $set: { status: 'sending', sendingSince: new Date(Date.now() - 120_000) }, $inc: { attemptCount: 1 } });
  // The slow sender holds the record's lock to write its outcome while the reconciler runs.
  const held = await withGuardLock(api.ctx, lockName('notification', body.id), async () => {
    const repairs = await reconcileNotifications(api.ctx, later());
    await Records.updateOne({ _id: body.id, status: 'sending' }, { $set: { status: 'sent' }, $unset: { sendingSince: '' } });
    return repairs;
  });
  expect(held.acquired).toBe(true);
  if (!held.acquired) return;
  expect(held.value.unstuck).toBe(api.ctx.store.guardedUpdates === 'locked' ? 0 : 1);
  if (api.ctx.store.guardedUpdates === 'locked') expect((await Records.findById(body.id).lean())!.status).toBe('sent');
  await Records.deleteOne({ _id: body.id }); // the next tests count what the reconciler repairs
  await api.ctx.queues.notifications.obliterate({ force: true });
});

test('a record stuck in sending past its lease goes back to failed and is retried', async () => {
  const userId = await userWithBot();
  const { body } = await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  // A worker claimed it and died: the record says sending, its job is gone.
  await api.ctx.models.notificationRecords.updateOne(
    { _id: body.id },
    { $set: { status: 'sending', sendingSince: new Date(Date.now() - 120_000) }, $inc: { attemptCount: 1 } },
  );
  await api.ctx.queues.notifications.obliterate({ force: true });

  expect(await reconcileNotifications(api.ctx, later())).toEqual({ requeued: 1, unstuck: 1 });
  const record = await api.ctx.models.notificationRecords.findById(body.id).lean();
  expect(record).toMatchObject({ status: 'failed', lastErrorCode: 'sender_lost' });
  expect(record!.history.at(-1)).toMatchObject({ event: 'repaired', code: 'sender_lost' });

  const worker = await startTestDueflow('worker', { MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX }, { cleanup: false });
  try {
    const sent = await waitFor(
      async () => {
        const r = await api.ctx.models.notificationRecords.findById(body.id).lean();
        return r?.status === 'sent' ? r : undefined;
      },
      20_000,
      'sent',
    );
    expect(sent.attemptCount).toBe(2);
  } finally {
    await worker.stop();
  }
});

test('worker mode schedules the reconciler and the purge of old idempotency keys, the reconcile half way between two scans', async () => {
  const worker = await startTestDueflow(
    'worker',
    { MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX, RECONCILE_INTERVAL_MS: '30000', SCAN_INTERVAL_MS: '5000' },
    { cleanup: false },
  );
  try {
    const schedulers = await api.ctx.queues.maintenance.getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.every]).sort()).toEqual([
      ['purge-expired', 3600_000],
      ['reconciler', 30_000],
    ]);
    // An `every` scheduler runs at its phase plus whole intervals: the scans at the scanner's, the reconcile 2.5 s (half a scan) after
    // (30 s being six scans, without that phase the two would start together every time).
    const [scanner] = await api.ctx.queues.scanner.getJobSchedulers();
    const reconciler = schedulers.find((s) => s.key === 'reconciler')!;
    const gap = (((reconciler.next! - scanner.next!) % 5000) + 5000) % 5000;
    expect(Math.abs(gap - 2500)).toBeLessThan(250);
  } finally {
    await worker.stop();
  }
});

test('idempotency keys older than a day are purged, newer ones kept', async () => {
  const Keys = api.ctx.models.idempotencyKeys;
  await Keys.create({ _id: 'svc|old', requestHash: 'h', resourceId: 'r' });
  // createdAt is immutable through mongoose: age the key in the raw collection.
  await Keys.collection.updateOne({ _id: 'svc|old' as never }, { $set: { createdAt: new Date(Date.now() - 25 * 3600_000) } });
  await Keys.create({ _id: 'svc|new', requestHash: 'h', resourceId: 'r' });
  expect(await purgeExpired(api.ctx)).toEqual({ idempotencyKeys: 1 });
  expect((await Keys.find({ _id: { $in: ['svc|old', 'svc|new'] } }).lean()).map((k) => k._id)).toEqual(['svc|new']);
});
