/**
 * Anomaly intake: another service reports an anomaly, it becomes a trigger (source api_trigger)
 * and one Feishu message built from its title and detail; critical ones go out in quiet hours.
 * Real dueflow (all mode), real Redis and database, the Feishu-compatible server.
 */
import { randomUUID } from 'node:crypto';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asService, asUser, call, userWithBot as newBotUser } from './support/api';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';
import { eventIdFor } from '../src/events/ids';

let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('all', { NOTIFY_BACKOFF_MS: '20', NOTIFY_BACKOFF_MAX_MS: '100' });
});
afterAll(async () => {
  await df.stop();
  await feishu.close();
});

const userWithBot = (settings?: Record<string, unknown>) => newBotUser(df.baseUrl, feishu, { format: 'text', settings });

/** A minute-aligned moment ten minutes ago, so the expected local time is exact. */
const recentMinute = () => new Date(Math.floor((Date.now() - 10 * 60_000) / 60_000) * 60_000);

function anomaly(userId: string, over: Record<string, unknown> = {}) {
  return {
    userId,
    type: 'disk_almost_full',
    severity: 'warning',
    targetType: 'server',
    targetId: `srv-${randomUUID().slice(0, 8)}`,
    title: 'Disk 95% full on db-1',
    detail: 'The data volume of db-1 is 95% full; writes stop at 100%.',
    occurredAt: recentMinute().toISOString(),
    idempotencyKey: `k-${randomUUID()}`,
    actionUrl: 'https://ops.example.com/alerts/42',
    ...over,
  };
}

const post = (body: unknown, auth = asService()) => call(df.baseUrl, 'POST', '/api/v1/anomalies', { auth, body });
const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);
const textOf = (m: { body: any }) => String(m.body.content?.text ?? JSON.stringify(m.body));
const triggersOf = (userId: string) => df.ctx.models.triggers.find({ userId }).lean();
const recordsOf = (userId: string) => df.ctx.models.notificationRecords.find({ userId }).lean();
const settled = (id: string) =>
  waitFor(
    async () => {
      const r = await call(df.baseUrl, 'GET', `/api/v1/anomalies/${id}`, { auth: asService() });
      // Settled: the message delivered (or not) and the trigger past its run, which may finish after the delivery.
      const done =
        r.body?.notification && !['pending', 'sending'].includes(r.body.notification.status) && !['pending', 'processing'].includes(r.body.trigger?.status);
      return done ? r.body : undefined;
    },
    20_000,
    `anomaly ${id} to be delivered`,
  );
const pad = (n: number) => String(n).padStart(2, '0');

test('an anomaly reaches Feishu as one message with its title, detail, local time (zh-CN by default) and link; GET shows it', async () => {
  const { userId, token } = await userWithBot();
  const body = anomaly(userId, { severity: 'info' });
  const res = await post(body);
  expect(res.status).toBe(202);
  expect(res.body).toEqual({ id: expect.stringMatching(/^[0-9a-f]{24}$/), status: 'pending', created: true });

  const view = await settled(res.body.id);
  expect(view).toMatchObject({
    id: res.body.id,
    status: 'sent',
    trigger: {
      id: res.body.id,
      userId,
      type: 'disk_almost_full',
      source: 'api_trigger',
      target: { type: 'server', id: body.targetId },
      status: 'closed',
      reason: 'notification_requested',
    },
    anomaly: { severity: 'info', title: body.title, detail: body.detail, occurredAt: body.occurredAt, actionUrl: body.actionUrl },
    notification: { status: 'sent', attemptCount: 1, sentAt: expect.any(String), deferredUntil: null, urgent: false },
  });
  const trigger = await df.ctx.models.triggers.findById(res.body.id).lean();
  expect(trigger).toMatchObject({ notificationId: view.notification.id });
  expect(trigger!.previewId).toBeUndefined();
  expect(await df.ctx.models.previews.countDocuments({ triggerId: res.body.id })).toBe(0);

  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  const text = textOf(sent[0]);
  // Asia/Shanghai (the default zone) is UTC+8 all year.
  const local = new Date(new Date(body.occurredAt).getTime() + 8 * 3600_000);
  const weekday = ['周日', '周一', '周二', '周三', '周四', '周五', '周六'][local.getUTCDay()];
  expect(text).toContain(`【提示】${body.title}`);
  expect(text).toContain(body.detail);
  expect(text).toContain(`发生时间：${local.getUTCMonth() + 1}月${local.getUTCDate()}日 ${weekday} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}`);
  expect(text).toContain(body.actionUrl);
});

test('in English when the user says so, in their time zone', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'UTC', language: 'en', optOutTriggerTypes: [] });
  const body = anomaly(userId, { actionUrl: undefined });
  const res = await post(body);
  expect(res.status).toBe(202);
  expect((await settled(res.body.id)).status).toBe('sent');
  const text = textOf(messagesTo(token)[0]);
  const at = new Date(body.occurredAt);
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][at.getUTCDay()];
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][at.getUTCMonth()];
  expect(text).toContain(`[Warning] ${body.title}`);
  expect(text).toContain(body.detail);
  expect(text).toContain(`Occurred: ${weekday} ${at.getUTCDate()} ${month} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} (UTC)`);
  expect(text).not.toContain('http');
  expect(messagesTo(token)).toHaveLength(1);
});

test('idempotency: the same key and body is the same anomaly (200) and one message; another body is 422', async () => {
  const { userId, token } = await userWithBot();
  const body = anomaly(userId);
  const first = await post(body);
  expect(first.status).toBe(202);
  const again = await post(body);
  expect(again.status).toBe(200);
  expect(again.body).toMatchObject({ id: first.body.id, created: false });

  const other = await post({ ...body, detail: 'something else' });
  expect(other.status).toBe(422);
  expect(other.body.error.code).toBe('idempotency_key_reused');

  await settled(first.body.id);
  // Same type, target and window under a new key: still that anomaly.
  const sameWindow = await post({ ...body, idempotencyKey: `k-${randomUUID()}` });
  expect(sameWindow.status).toBe(200);
  expect(sameWindow.body).toMatchObject({ id: first.body.id, created: false });

  await new Promise((r) => setTimeout(r, 300));
  expect(await triggersOf(userId)).toHaveLength(1);
  expect(await recordsOf(userId)).toHaveLength(1);
  expect(messagesTo(token)).toHaveLength(1);
});

test('parallel repeats of one anomaly: one trigger, one message', async () => {
  const { userId, token } = await userWithBot();
  const body = anomaly(userId);
  const answers = await Promise.all(Array.from({ length: 8 }, () => post(body)));
  expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 202]);
  expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
  expect((await settled(answers[0].body.id)).status).toBe('sent');
  await new Promise((r) => setTimeout(r, 300));
  expect(await triggersOf(userId)).toHaveLength(1);
  expect(messagesTo(token)).toHaveLength(1);
});

test.each([
  ['userId', { userId: '' }],
  ['type', { type: 'Disk-Full' }],
  ['type', { type: 'x'.repeat(65) }],
  ['type', { type: 'important_urgent_task' }],
  ['severity', { severity: 'fatal' }],
  ['targetType', { targetType: '' }],
  ['targetId', { targetId: undefined }],
  ['title', { title: '  ' }],
  ['detail', { detail: undefined }],
  ['occurredAt', { occurredAt: 'yesterday' }],
  ['occurredAt', { occurredAt: new Date(Date.now() + 3600_000).toISOString() }],
  ['idempotencyKey', { idempotencyKey: undefined }],
  ['actionUrl', { actionUrl: 'javascript:alert(1)' }],
])('a bad %s is 400 naming it, and nothing is stored', async (field, over) => {
  const userId = `u-${randomUUID()}`;
  const body = anomaly(userId, over);
  const res = await post(JSON.parse(JSON.stringify(body)));
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('validation_failed');
  expect(res.body.error.message).toContain(`body.${field}`);
  expect(await triggersOf(userId)).toHaveLength(0);
  expect(await df.ctx.models.idempotencyKeys.countDocuments({ _id: `anomalies|${body.idempotencyKey}` })).toBe(0);
});

test('critical anomalies are sent in quiet hours; info and warning ones wait for their end', async () => {
  const hhmm = (d: Date) => d.toISOString().slice(11, 16);
  const { userId, token } = await userWithBot({
    timeZone: 'UTC',
    quietHours: { start: hhmm(new Date(Date.now() - 3600_000)), end: hhmm(new Date(Date.now() + 3600_000)) },
    optOutTriggerTypes: [],
  });
  const critical = await post(anomaly(userId, { severity: 'critical', type: 'db_down', title: 'db-1 is down' }));
  const info = await post(anomaly(userId, { severity: 'info', type: 'backup_slow', title: 'Backup is slow' }));
  const warning = await post(anomaly(userId, { severity: 'warning', type: 'cert_expiring', title: 'Certificate expires soon' }));
  expect([critical.status, info.status, warning.status]).toEqual([202, 202, 202]);

  const sent = await settled(critical.body.id);
  expect(sent).toMatchObject({ status: 'sent', notification: { status: 'sent', urgent: true, deferredUntil: null } });
  for (const deferred of [info, warning]) {
    const view = await waitFor(
      async () => {
        const r = await call(df.baseUrl, 'GET', `/api/v1/anomalies/${deferred.body.id}`, { auth: asService() });
        return r.body?.notification?.deferredUntil ? r.body : undefined;
      },
      10_000,
      `anomaly ${deferred.body.id} to be deferred`,
    );
    expect(view).toMatchObject({ status: 'pending', notification: { status: 'pending', attemptCount: 0, sentAt: null, urgent: false } });
    expect(Date.parse(view.notification.deferredUntil)).toBeGreaterThan(Date.now() + 30 * 60_000);
  }
  const texts = messagesTo(token).map(textOf);
  expect(texts).toHaveLength(1);
  expect(texts[0]).toContain('【严重】db-1 is down');
});

test('GET: an unknown id or a trigger that is no anomaly is 404', async () => {
  expect((await call(df.baseUrl, 'GET', '/api/v1/anomalies/not-an-id', { auth: asService() })).status).toBe(404);
  expect((await call(df.baseUrl, 'GET', `/api/v1/anomalies/${'0'.repeat(24)}`, { auth: asService() })).status).toBe(404);
  const plain = await df.ctx.models.triggers.create({
    userId: `u-${randomUUID()}`,
    type: 'important_urgent_task',
    source: 'api_trigger',
    target: { type: 'task', id: 'x' },
    dedupeKey: `dk-${randomUUID()}`,
    status: 'closed',
  });
  expect((await call(df.baseUrl, 'GET', `/api/v1/anomalies/${plain._id}`, { auth: asService() })).status).toBe(404);
});

test('a user token (or none) on these routes is 401', async () => {
  const userId = `u-${randomUUID()}`;
  const auth = await asUser(userId);
  const created = await post(anomaly(userId), auth);
  expect(created.status).toBe(401);
  expect((await post(anomaly(userId), '')).status).toBe(401);
  expect((await call(df.baseUrl, 'GET', `/api/v1/anomalies/${'0'.repeat(24)}`, { auth })).status).toBe(401);
  expect(await triggersOf(userId)).toHaveLength(0);
});

test('a user who opted out of an anomaly type hears nothing of it', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'UTC', optOutTriggerTypes: ['disk_almost_full'] });
  const res = await post(anomaly(userId, { severity: 'critical' }));
  expect(res.status).toBe(202);
  expect(await settled(res.body.id)).toMatchObject({ status: 'skipped', notification: { status: 'skipped', attemptCount: 0 } });
  expect(messagesTo(token)).toHaveLength(0);
});

test('a store too busy to take a change answers 503 with Retry-After, changes nothing, and the same request later succeeds', async () => {
  const { userId, auth } = await userWithBot();
  const res = await post(anomaly(userId));
  const id = res.body.id;
  await settled(id);
  const acknowledge = () => call(df.baseUrl, 'POST', `/api/v1/anomalies/${id}/acknowledge`, { auth });
  // Another change of the same anomaly holds it past the request's 2 s wait (only a store that needs the lock waits).
  const during = await withGuardLock(df.ctx, lockName('trigger', id), async () => {
    await new Promise((r) => setTimeout(r, 50));
    return acknowledge();
  });
  expect(during.acquired).toBe(true);
  if (!during.acquired) return;
  if (df.ctx.store.guardedUpdates === 'locked') {
    expect(during.value.status).toBe(503);
    expect(during.value.headers.get('retry-after')).toBe('1');
    expect(during.value.body.error.code).toBe('store_unavailable');
    expect((await df.ctx.models.triggers.findById(id).lean())!.anomaly!.acknowledgedAt).toBeUndefined();
    expect((await acknowledge()).status).toBe(200);
  } else {
    expect(during.value.status).toBe(200);
  }
  expect((await df.ctx.models.triggers.findById(id).lean())!.anomaly!.acknowledgedAt).toBeInstanceOf(Date);
});

test('an acknowledgement stopped after its anomaly was written (its record busy) is finished by the next one: the record noted, the event emitted', async () => {
  const { userId, auth } = await userWithBot();
  const res = await post(anomaly(userId));
  const id = res.body.id;
  await settled(id);
  const [record] = await recordsOf(userId);
  const acknowledge = () => call(df.baseUrl, 'POST', `/api/v1/anomalies/${id}/acknowledge`, { auth });
  const event = () => df.ctx.models.events.findById(eventIdFor('anomaly.acknowledged', id)).lean();
  const during = await withGuardLock(df.ctx, lockName('notification', String(record._id)), acknowledge);
  expect(during.acquired).toBe(true);
  if (!during.acquired || df.ctx.store.guardedUpdates !== 'locked') return; // only a store that needs the lock waits on it
  expect(during.value.status).toBe(503);
  expect((await df.ctx.models.triggers.findById(id).lean())!.anomaly!.acknowledgedAt).toBeInstanceOf(Date);
  expect((await df.ctx.models.notificationRecords.findById(record._id).lean())!.acknowledgedAt).toBeUndefined();
  expect(await event()).toBeNull();

  const again = await acknowledge();
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe('already_acknowledged');
  const noted = (await df.ctx.models.notificationRecords.findById(record._id).lean())!;
  expect(noted.acknowledgedAt).toBeInstanceOf(Date);
  expect(noted.history.filter((h) => h.event === 'acknowledged')).toHaveLength(1);
  expect(await event()).toMatchObject({ type: 'anomaly.acknowledged' });
});
