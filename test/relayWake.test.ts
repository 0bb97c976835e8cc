/**
 * The records' events relay runs when deliveries end, not on a clock: at once after the first
 * end, then at most once per EVENT_RELAY_INTERVAL_MS while ends keep coming, again at once after a
 * full batch, and never while idle. The timing is unit-tested with a stand-in run and fake timers;
 * then a real worker ('all' mode, the reconcile out of the way) relays a real delivery's
 * notification.sent, relays at start what was left in outboxes, and drops the relay's old scheduler.
 */
import type { RelayRun } from '../src/notifications/events';
import { relayNext } from '../src/notifications/events';
import { RecordEventRelay, relayDelay } from '../src/notifications/relayWake';
import { eventIdFor } from '../src/events/ids';
import { queueNames } from '../queues/names';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asService, call, notificationBody, userWithBot } from './support/api';
import { sentRecord } from './support/records';

describe('when the relay runs', () => {
  test('relayDelay: the first run at once, the next not before the interval, a full batch at once', () => {
    expect(relayDelay({ now: 5000, intervalMs: 1000 })).toBe(0);
    expect(relayDelay({ now: 5000, lastStartedAt: 4700, intervalMs: 1000 })).toBe(700);
    expect(relayDelay({ now: 5000, lastStartedAt: 3000, intervalMs: 1000 })).toBe(0);
    expect(relayDelay({ now: 5000, lastStartedAt: 4900, intervalMs: 1000, more: true })).toBe(0);
  });

  test('relayNext: a full batch now; a record not cleared later; else none', () => {
    expect(relayNext({ read: 200, cleared: 200, batchSize: 200 })).toBe('now');
    expect(relayNext({ read: 3, cleared: 2, batchSize: 200 })).toBe('later');
    expect(relayNext({ read: 3, cleared: 3, batchSize: 200 })).toBe('none');
    expect(relayNext({ read: 0, cleared: 0, batchSize: 200 })).toBe('none');
  });

  describe('RecordEventRelay', () => {
    let starts: number[];
    let results: RelayRun[];
    let relay: RecordEventRelay;
    const warnings: unknown[] = [];

    beforeEach(() => {
      jest.useFakeTimers({ now: 0 });
      starts = [];
      results = [];
      warnings.length = 0;
      relay = new RecordEventRelay({
        intervalMs: 1000,
        logger: { warn: (o: unknown) => void warnings.push(o) } as never,
        run: async () => {
          starts.push(Date.now());
          const next = results.shift() ?? { events: 1, next: 'none' };
          if (next.events < 0) throw new Error('store away');
          return next;
        },
      });
    });
    afterEach(async () => {
      await relay.stop();
      jest.useRealTimers();
    });

    test('idle, it never runs', async () => {
      await jest.advanceTimersByTimeAsync(10_000);
      expect(starts).toEqual([]);
    });

    test('the first end runs it at once; the ends of the next interval ride in one run at its end', async () => {
      relay.wake();
      await jest.advanceTimersByTimeAsync(1);
      expect(starts).toEqual([0]);
      for (let t = 0; t < 9; t++) {
        await jest.advanceTimersByTimeAsync(100);
        relay.wake();
      }
      await jest.advanceTimersByTimeAsync(2000);
      expect(starts).toEqual([0, 1000]);
      // Quiet again: nothing more.
      await jest.advanceTimersByTimeAsync(10_000);
      expect(starts).toEqual([0, 1000]);
    });

    test('after a full batch it runs again at once; after a busy one, an interval later, unwoken', async () => {
      results.push({ events: 200, next: 'now' }, { events: 0, next: 'later' }, { events: 3, next: 'none' });
      relay.wake();
      await jest.advanceTimersByTimeAsync(5000);
      expect(starts).toEqual([0, 1, 1001]); // a timer of 0 set from a timer is 1 ms
    });

    test('a failed run is not repeated by itself (the reconcile catches up), but the next end runs it', async () => {
      results.push({ events: -1, next: 'none' });
      relay.wake();
      await jest.advanceTimersByTimeAsync(5000);
      expect(starts).toEqual([0]);
      expect(warnings).toHaveLength(1);
      relay.wake();
      await jest.advanceTimersByTimeAsync(1);
      expect(starts).toEqual([0, 5000]);
    });

    test('stopped, it waits for the run in flight and runs no more', async () => {
      let finish!: () => void;
      const slow = new RecordEventRelay({
        intervalMs: 1000,
        logger: { warn: () => undefined } as never,
        run: () => {
          starts.push(Date.now());
          return new Promise<RelayRun>((resolve) => (finish = () => resolve({ events: 1, next: 'now' })));
        },
      });
      slow.wake();
      await jest.advanceTimersByTimeAsync(1);
      let stopped = false;
      const stopping = slow.stop().then(() => (stopped = true));
      await jest.advanceTimersByTimeAsync(100);
      expect(stopped).toBe(false);
      finish();
      await stopping;
      slow.wake();
      await jest.advanceTimersByTimeAsync(5000);
      expect(starts).toEqual([0]);
    });
  });
});

describe('a worker relays on its deliveries', () => {
  let feishu: FeishuServer;
  let df: TestDueflow;
  // The reconcile relays too: it must not be what relays here. Its first run comes half a scan interval after
  // start (queues/schedulers.ts reconcilePhaseMs), so both intervals are an hour (no scan is needed here).
  const settings = { RECONCILE_INTERVAL_MS: '3600000', SCAN_INTERVAL_MS: '3600000' };
  let leftId: string;

  beforeAll(async () => {
    feishu = await startFeishuServer();
    // Before the worker starts: an earlier version's relay scheduler, and a record ended with its event still in its outbox.
    const api = await startTestDueflow('api', settings);
    await api.ctx.queues[queueNames.maintenance].upsertJobScheduler('relay-record-events', { every: 1000 }, { name: 'relay', data: { v: 1 } });
    leftId = await sentRecord(api.ctx.models, 'r-left');
    await api.running.stop();
    df = await startTestDueflow('all', { ...settings, MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX });
  });
  afterAll(async () => {
    await df?.stop();
    await feishu?.close();
  });

  const eventOf = (type: 'notification.sent', recordId: string) =>
    waitFor(() => df.ctx.models.events.findById(eventIdFor(type, recordId)).lean<{ dataJson: string }>(), 5000, `${type} of ${recordId}`);

  test("at start it relays what the last process left, and drops the old relay's scheduler", async () => {
    expect(JSON.parse((await eventOf('notification.sent', leftId)).dataJson)).toMatchObject({ recordId: leftId });
    expect((await df.ctx.models.notificationRecords.findById(leftId).lean())!.outboxCount).toBeUndefined();
    const schedulers = await df.ctx.queues[queueNames.maintenance].getJobSchedulers();
    expect(schedulers.map((s) => s.key).sort()).toEqual(['purge-expired', 'reconciler']);
  });

  test('a delivered notification has its notification.sent in the event log, its outbox cleared', async () => {
    const { userId } = await userWithBot(df.baseUrl, feishu);
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
    expect(res.status).toBe(202);
    const id = (res.body as { id: string }).id;
    const event = await eventOf('notification.sent', id);
    expect(JSON.parse(event.dataJson)).toMatchObject({ recordId: id, userId, channel: 'feishu_bot' });
    await waitFor(
      async () => ((await df.ctx.models.notificationRecords.findById(id).lean())?.outboxCount === undefined ? true : undefined),
      5000,
      'outbox cleared',
    );
  });
});
