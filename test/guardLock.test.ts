/** Guarded transitions stay exclusive under concurrency, on FerretDB too (where the lock makes them so). */
import { randomUUID } from 'node:crypto';
import { lockMany } from '../src/db/guardLock';
import { detectStore, guardedOrNull, lockName } from '../src/db/guarded';
import { claimUnreadForSending } from '../src/notifications/transitions';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';

let df: TestDueflow;
beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df.stop();
});

test('20 concurrent claims of one pending record: exactly one wins', async () => {
  const Records = df.ctx.models.notificationRecords;
  for (let round = 0; round < 5; round++) {
    const record = await Records.create({
      userId: 'u',
      channel: 'feishu_bot',
      dedupeKey: randomUUID(),
      triggerType: 't',
      target: { type: 't', id: '1' },
      message: { title: 't', summary: 's' },
      status: 'pending',
      attemptCount: 0,
      maxAttempts: 5,
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        guardedOrNull(df.ctx, lockName('notification', record._id), () => claimUnreadForSending(Records, record._id, new Date())),
      ),
    );
    const winners = results.filter((r) => r);
    expect(winners).toHaveLength(1);
    expect((await Records.findById(record._id).lean())!.attemptCount).toBe(1);
  }
});

test('lockMany takes each free lock once; a second caller gets none of them until release', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `n-${i}-${randomUUID()}`);
  const first = await lockMany(df.ctx, names);
  const second = await lockMany(df.ctx, names);
  expect(first.locked).toEqual(names);
  expect(second.locked).toEqual([]);
  await first.release();
  const third = await lockMany(df.ctx, names);
  expect(third.locked).toEqual(names);
  await third.release();
});

test('the seam knows the store: FerretDB needs locks, MongoDB does not; the setting overrides', async () => {
  const ferret = Boolean(((await df.ctx.mongo.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string }).ferretdbVersion);
  expect(df.ctx.store.guardedUpdates).toBe(ferret ? 'locked' : 'atomic');
  expect(await detectStore(df.ctx.mongo, 'atomic')).toEqual({ guardedUpdates: 'atomic' });
  expect(await detectStore(df.ctx.mongo, 'locked')).toEqual({ guardedUpdates: 'locked' });
});
