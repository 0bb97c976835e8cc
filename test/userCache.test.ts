/**
 * The users' settings and channels cache (src/settings/cache.ts): the cache alone (no services),
 * then an API and a worker sharing a database and queues, each with its own cache and Redis
 * subscription: a change made through the API reaches the worker's next delivery, and a warm
 * delivery reads neither settings nor channels.
 */
import { Redis } from 'ioredis';
import { UserCache, userCacheChannel } from '../src/settings/cache';
import { loadUserSettings } from '../src/settings/store';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { call, notificationBody, userWithBot, asService } from './support/api';
import { waitFor } from './support/env';

describe('UserCache alone', () => {
  const live = (size = 10, now?: () => number) => {
    const c = new UserCache({ size, maxAgeMs: 1000, now });
    c.setLive(true);
    return c;
  };

  test('a hit does not load again; concurrent misses share one load', async () => {
    const c = live();
    let loads = 0;
    const load = async () => ({ n: ++loads });
    const [a, b] = await Promise.all([c.get('settings', 'u1', load), c.get('settings', 'u1', load)]);
    expect(a).toBe(b);
    expect(await c.get('settings', 'u1', load)).toEqual({ n: 1 });
    expect(await c.get('channels', 'u1', load)).toEqual({ n: 2 });
  });

  test('a read that began before a drop is not stored: the next read loads the new value', async () => {
    const c = live();
    let value = 'old';
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const first = c.get('settings', 'u1', async () => {
      const v = value;
      await slow;
      return v;
    });
    value = 'new';
    c.drop('u1');
    release();
    expect(await first).toBe('old');
    expect(await c.get('settings', 'u1', async () => value)).toBe('new');
  });

  test('not live (not subscribed), or size 0: every read loads', async () => {
    const off = new UserCache({ size: 10 });
    let loads = 0;
    await off.get('settings', 'u1', async () => ++loads);
    await off.get('settings', 'u1', async () => ++loads);
    expect(loads).toBe(2);
    const zero = new UserCache({ size: 0 });
    zero.setLive(true);
    await zero.get('settings', 'u1', async () => ++loads);
    await zero.get('settings', 'u1', async () => ++loads);
    expect(loads).toBe(4);
    // Going live again starts empty.
    const c = live();
    await c.get('settings', 'u1', async () => 'a');
    c.setLive(false);
    c.setLive(true);
    expect(await c.get('settings', 'u1', async () => 'b')).toBe('b');
  });

  test('bounded: the least recently used user goes first; entries past maxAgeMs are read again', async () => {
    let t = 0;
    const c = live(2, () => t);
    for (const u of ['a', 'b']) await c.get('settings', u, async () => u);
    await c.get('settings', 'a', async () => 'a2'); // a is now the most recent
    for (const u of ['c', 'd', 'e']) await c.get('settings', u, async () => u);
    expect(c.size).toBeLessThanOrEqual(4);
    expect(await c.get('settings', 'b', async () => 'reloaded')).toBe('reloaded');
    t = 5000;
    expect(await c.get('settings', 'e', async () => 'aged')).toBe('aged');
  });

  test('a failed load is not stored and not shared with later callers', async () => {
    const c = live();
    await expect(c.get('settings', 'u1', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await c.get('settings', 'u1', async () => 'up')).toBe('up');
  });
});

describe('an API and a worker, each with its cache', () => {
  let feishu: FeishuServer;
  let api: TestDueflow;
  let worker: TestDueflow;

  beforeAll(async () => {
    feishu = await startFeishuServer();
    api = await startTestDueflow('api');
    worker = await startTestDueflow('worker', { MONGODB_DB: api.config.MONGODB_DB!, QUEUE_PREFIX: api.config.QUEUE_PREFIX }, { cleanup: false });
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await feishu?.close();
  });

  const request = async (userId: string, extra: Record<string, unknown> = {}) => {
    const res = await call(api.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId, extra) });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const statusOf = async (id: string) => (await api.ctx.models.notificationRecords.findById(id, { status: 1, statusReason: 1 }).lean<any>())!;
  const finished = (id: string) =>
    waitFor(async () => {
      const r = await statusOf(id);
      return r.status === 'sent' || r.status === 'skipped' ? r : undefined;
    });

  test('opting out through the API reaches the worker: the next message is skipped', async () => {
    const user = await userWithBot(api.baseUrl, feishu);
    expect(await finished(await request(user.userId))).toMatchObject({ status: 'sent' });
    expect(worker.ctx.userCache.cache.size).toBeGreaterThan(0);

    const put = await call(api.baseUrl, 'PUT', '/api/v1/me/settings', {
      auth: user.auth,
      body: { timeZone: 'UTC', optOutTriggerTypes: ['important_urgent_task'] },
    });
    expect(put.status).toBe(200);
    // The announcement travels over Redis: the worker's entry is dropped within moments.
    await waitFor(async () => (await loadUserSettings(worker.ctx, user.userId)).optOutTriggerTypes.length === 1 || undefined);
    expect(await finished(await request(user.userId))).toMatchObject({ status: 'skipped', statusReason: 'user_opted_out' });
  });

  test('a channel disabled through the API: the next message is skipped as recipient_missing', async () => {
    const user = await userWithBot(api.baseUrl, feishu);
    expect(await finished(await request(user.userId))).toMatchObject({ status: 'sent' });
    const res = await call(api.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
      auth: user.auth,
      body: { enabled: false, webhookUrl: feishu.botUrl(user.token) },
    });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(await finished(await request(user.userId))).toMatchObject({ status: 'skipped', statusReason: 'recipient_missing' });
    expect(feishu.messages.filter((m) => m.token === user.token)).toHaveLength(1);
  });

  test('every change announced drops the user; a lost subscription drops everything until it is back', async () => {
    const user = await userWithBot(api.baseUrl, feishu);
    expect(await finished(await request(user.userId))).toMatchObject({ status: 'sent' });
    await loadUserSettings(worker.ctx, user.userId);
    const cache = worker.ctx.userCache.cache;
    const other = new Redis(api.config.REDIS_URL);
    try {
      // What every change does: an announcement on the channel (here from another client).
      const before = cache.size;
      expect(before).toBeGreaterThan(0);
      await other.publish(userCacheChannel(api.config.QUEUE_PREFIX), user.userId);
      await waitFor(() => cache.size < before || undefined);

      // The subscription's connection dies (Redis restarted, a network cut): nothing cached survives it.
      await loadUserSettings(worker.ctx, user.userId);
      expect(cache.size).toBeGreaterThan(0);
      await other.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor(() => cache.size === 0 || undefined);
      // Subscribed again, it caches again.
      await waitFor(async () => {
        await loadUserSettings(worker.ctx, user.userId);
        return cache.size > 0 || undefined;
      });
    } finally {
      other.disconnect();
    }
  });
});
