/**
 * The one reminder before an unconfirmed preview expires (src/previews/renotify.ts). Real dueflow
 * (all mode) on real Redis and the database, delivering to the Feishu-compatible server; previews
 * come from real triggers. Time is moved through renotifyExpiringPreviews' `now`, never slept.
 */
import { randomUUID } from 'node:crypto';
import { renotifyExpiringPreviews, reminderDedupeKey } from '../src/previews/renotify';
import { queueNames } from '../queues/names';
import { reconcileJobName } from '../queues/schedulers';
import { asUser, call } from './support/api';
import { waitFor } from './support/env';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';

const TTL = 3600_000;
const BEFORE = 600_000;
let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer({ rateLimit: false });
  // A TTL long enough that the scheduled reconcile (real time) never reaches a preview's window
  // while a test runs: only the test's calls, with their `now`, remind.
  df = await startTestDueflow('all', { PREVIEW_TTL_MS: String(TTL), PREVIEW_RENOTIFY_BEFORE_MS: String(BEFORE), RECONCILE_INTERVAL_MS: '3600000' });
});
afterAll(async () => {
  await df?.stop();
  await feishu?.close();
});

const base = '/api/v1/active-schedule';

/** A user with a feishu_bot channel and a priority-1 task, and the ready preview of its trigger (its first message delivered). */
async function readyPreview(opts: { title?: string; timeZone?: string; language?: 'en' | 'zh-CN' } = {}) {
  const title = opts.title ?? `Draft the proposal ${randomUUID().slice(0, 8)}`;
  const userId = `u-${randomUUID()}`;
  const auth = await asUser(userId);
  const token = `bot${randomUUID().replace(/-/g, '')}`;
  feishu.registerBot(token);
  const ch = await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', { auth, body: { enabled: true, webhookUrl: feishu.botUrl(token) } });
  expect(ch.status).toBeLessThan(300);
  const task = await df.ctx.models.tasks.create({ userId, title, priority: 1, estimatedMinutes: 60, deadline: new Date(Date.now() + 30 * 3600_000) });
  await df.ctx.models.userSettings.create({
    userId,
    timeZone: opts.timeZone ?? 'UTC',
    workingHours: { start: '00:00', end: '23:59' },
    language: opts.language ?? 'en',
  });
  const res = await call(df.baseUrl, 'POST', `${base}/triggers`, {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
  });
  expect(res.status).toBe(201);
  const trigger = await waitFor(
    async () => {
      const t = await df.ctx.models.triggers.findById(res.body.id).lean();
      return t && t.status !== 'pending' && t.status !== 'processing' ? t : undefined;
    },
    20_000,
    'the workflow to finish',
  );
  expect(trigger.status).toBe('preview_generated');
  const preview = (await df.ctx.models.previews.findById(trigger.previewId).lean())!;
  const messages = () => feishu.messages.filter((m) => m.token === token);
  await waitFor(() => messages().length === 1, 20_000, 'the first message');
  return { userId, auth, token, title, task, triggerId: String(res.body.id), previewId: String(preview._id), preview, messages };
}

const inWindow = (expiresAt: Date) => new Date(expiresAt.getTime() - BEFORE / 2);
const reminders = (previewId: string) => df.ctx.models.notificationRecords.find({ dedupeKey: reminderDedupeKey(previewId) }).lean();
/** Give a (wrongly) requested message time to arrive before asserting that none did. */
const settle = () => new Promise((r) => setTimeout(r, 1500));

test('before the window nothing; inside it exactly one reminder naming the task; again (and 5 at once) still one', async () => {
  const one = await readyPreview({ timeZone: 'Asia/Kolkata' });
  const expiresAt = one.preview.expiresAt;

  // Just outside the window (and at creation): nothing.
  expect(await renotifyExpiringPreviews(df.ctx, new Date(expiresAt.getTime() - BEFORE - 1000))).toEqual({ renotified: 0 });
  expect(await renotifyExpiringPreviews(df.ctx, new Date(expiresAt.getTime() - TTL))).toEqual({ renotified: 0 });
  expect(await reminders(one.previewId)).toHaveLength(0);

  // Inside: one record, one message.
  const now = inWindow(expiresAt);
  expect(await renotifyExpiringPreviews(df.ctx, now)).toEqual({ renotified: 1 });
  await waitFor(() => one.messages().length === 2, 20_000, 'the reminder');
  const text = JSON.stringify(one.messages()[1].body);
  expect(text).toContain(one.title);
  expect(text).toContain('Reminder: ');
  // HH:mm of the expiry in the user's time zone (UTC+05:30), and the same link as the first message.
  const local = new Date(expiresAt.getTime() + 5.5 * 3600_000);
  const hhmm = `${String(local.getUTCHours()).padStart(2, '0')}:${String(local.getUTCMinutes()).padStart(2, '0')}`;
  expect(text).toContain(`expires at ${hhmm}`);
  expect(text).toContain(`/app/previews/${one.previewId}`);
  const [record] = await reminders(one.previewId);
  expect(record).toMatchObject({
    userId: one.userId,
    channel: 'feishu_bot',
    triggerId: one.triggerId,
    previewId: one.previewId,
    triggerType: 'important_urgent_task',
    target: { type: 'task', id: String(one.task._id) },
  });
  expect(record.message!.title).toMatch(/^Reminder: /);

  // Again, later in the window, and five at once: still one.
  expect(await renotifyExpiringPreviews(df.ctx, new Date(now.getTime() + 60_000))).toEqual({ renotified: 0 });
  const five = await Promise.all(Array.from({ length: 5 }, () => renotifyExpiringPreviews(df.ctx, now)));
  expect(five.reduce((n, r) => n + r.renotified, 0)).toBe(0);
  // Even if the preview's mark were lost, the dedupe key holds: five racing runs create nothing new.
  await df.ctx.models.previews.updateOne({ _id: one.previewId }, { $unset: { reminderRequestedAt: '' } });
  const raced = await Promise.all(Array.from({ length: 5 }, () => renotifyExpiringPreviews(df.ctx, now)));
  expect(raced.reduce((n, r) => n + r.renotified, 0)).toBe(0);
  await settle();
  expect(await reminders(one.previewId)).toHaveLength(1);
  expect(one.messages()).toHaveLength(2);
}, 60_000);

test('five runs at once on a fresh preview: exactly one reminder', async () => {
  const one = await readyPreview();
  const now = inWindow(one.preview.expiresAt);
  const five = await Promise.all(Array.from({ length: 5 }, () => renotifyExpiringPreviews(df.ctx, now)));
  expect(five.reduce((n, r) => n + r.renotified, 0)).toBe(1);
  await waitFor(() => one.messages().length === 2, 20_000, 'the reminder');
  await settle();
  expect(await reminders(one.previewId)).toHaveLength(1);
  expect(one.messages()).toHaveLength(2);
}, 60_000);

test("in the user's language: 提醒： and the expiry in their time zone", async () => {
  const one = await readyPreview({ language: 'zh-CN', timeZone: 'Asia/Shanghai', title: '写周报' });
  expect(await renotifyExpiringPreviews(df.ctx, inWindow(one.preview.expiresAt))).toEqual({ renotified: 1 });
  await waitFor(() => one.messages().length === 2, 20_000, 'the reminder');
  const text = JSON.stringify(one.messages()[1].body);
  const local = new Date(one.preview.expiresAt.getTime() + 8 * 3600_000);
  expect(text).toContain('提醒：');
  expect(text).toContain('写周报');
  expect(text).toContain(`${String(local.getUTCHours()).padStart(2, '0')}:${String(local.getUTCMinutes()).padStart(2, '0')} 过期`);
}, 60_000);

test('a confirmed or rejected preview is never re-notified; an expired one is not', async () => {
  const confirmed = await readyPreview();
  expect((await call(df.baseUrl, 'POST', `${base}/previews/${confirmed.previewId}/confirm`, { auth: confirmed.auth })).status).toBe(200);
  const rejected = await readyPreview();
  expect((await call(df.baseUrl, 'POST', `${base}/previews/${rejected.previewId}/reject`, { auth: rejected.auth })).status).toBe(200);
  const expired = await readyPreview();

  // The window is global: every ready preview in it is reminded. The previews of the tests above
  // were all reminded already, so only these three can be in it.
  // Past the expiry (the expired one still `ready` in the database, as nobody looked at it since): nothing.
  expect(await renotifyExpiringPreviews(df.ctx, new Date(expired.preview.expiresAt.getTime() + 1))).toEqual({ renotified: 0 });
  expect(await renotifyExpiringPreviews(df.ctx, expired.preview.expiresAt)).toEqual({ renotified: 0 });
  // Marked expired: nothing, even inside its window.
  await df.ctx.models.previews.updateOne({ _id: expired.previewId }, { $set: { status: 'expired' } });
  expect(await renotifyExpiringPreviews(df.ctx, inWindow(expired.preview.expiresAt))).toEqual({ renotified: 0 });
  // Confirmed, rejected: nothing inside their windows.
  for (const one of [confirmed, rejected]) expect(await renotifyExpiringPreviews(df.ctx, inWindow(one.preview.expiresAt))).toEqual({ renotified: 0 });

  await settle();
  for (const one of [confirmed, rejected, expired]) {
    expect(await reminders(one.previewId)).toHaveLength(0);
    expect(one.messages()).toHaveLength(1);
  }
}, 90_000);

test('PREVIEW_RENOTIFY_BEFORE_MS=0 disables it', async () => {
  const one = await readyPreview();
  const off = await startTestDueflow(
    'api',
    { MONGODB_DB: df.config.MONGODB_DB!, QUEUE_PREFIX: df.config.QUEUE_PREFIX, PREVIEW_RENOTIFY_BEFORE_MS: '0' },
    { cleanup: false },
  );
  try {
    expect(off.config.PREVIEW_RENOTIFY_BEFORE_MS).toBe(0);
    for (const now of [inWindow(one.preview.expiresAt), new Date(one.preview.expiresAt.getTime() - 1000)]) {
      expect(await renotifyExpiringPreviews(off.ctx, now)).toEqual({ renotified: 0 });
    }
  } finally {
    await off.stop();
  }
  await settle();
  expect(await reminders(one.previewId)).toHaveLength(0);
  expect(one.messages()).toHaveLength(1);
}, 60_000);

test('the maintenance reconcile job runs it and reports the count', async () => {
  const one = await readyPreview();
  // Bring its expiry into the window in real time, as the scheduled job sees it.
  await df.ctx.models.previews.updateOne({ _id: one.previewId }, { $set: { expiresAt: new Date(Date.now() + BEFORE / 2) } });
  const job = await df.ctx.queues[queueNames.maintenance].add(reconcileJobName, { v: 1 });
  const done = await waitFor(
    async () => {
      // finishedOn and returnvalue come from one HGETALL, so a finished job always carries its result.
      const j = await df.ctx.queues[queueNames.maintenance].getJob(job.id!);
      return j?.finishedOn ? j : undefined;
    },
    20_000,
    'the reconcile job',
  );
  expect(done.returnvalue).toMatchObject({ previewReminders: { renotified: 1 } });
  await waitFor(() => one.messages().length === 2, 20_000, 'the reminder');
  expect(await reminders(one.previewId)).toHaveLength(1);
}, 60_000);

test("marking a preview reminded waits for the preview's lock: an answer being written meanwhile is not written back over", async () => {
  const one = await readyPreview();
  const now = inWindow(one.preview.expiresAt);
  const requested = () =>
    df.ctx.models.previews
      .findById(one.previewId)
      .lean()
      .then((p) => p!.reminderRequestedAt);
  const held = await withGuardLock(df.ctx, lockName('preview', one.previewId), async () => {
    await renotifyExpiringPreviews(df.ctx, now);
    return { remindersWhileHeld: (await reminders(one.previewId)).length, requestedWhileHeld: await requested() };
  });
  expect(held.acquired).toBe(true);
  if (!held.acquired) return;
  expect(held.value.remindersWhileHeld).toBe(1); // the reminder is requested either way
  if (df.ctx.store.guardedUpdates === 'locked') {
    expect(held.value.requestedWhileHeld).toBeUndefined();
    // The next run finds the reminder's record and only marks the preview.
    await renotifyExpiringPreviews(df.ctx, now);
  }
  expect(await requested()).toBeInstanceOf(Date);
  expect(await reminders(one.previewId)).toHaveLength(1);
});
