/**
 * deliverNotification's MongoDB round trips: a message that goes out as asked costs two commands
 * (the guarded claim answering the record, `sent`) when the user's settings and channels are in the
 * process's cache (settings/cache.ts; the request read them), four when not, and claiming before the
 * decisions leaves every other outcome as the read-first path left it: quiet hours, opt-out, no
 * recipient, a held record, a replay, a record being sent, two runs at once, a failed read.
 * Real Redis, real database (commands counted with the driver's command monitoring), the
 * Feishu-compatible server; the delivery is called directly (api mode: no worker of its own).
 */
import mongoose from 'mongoose';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { call, notificationBody, userWithBot as newBotUser } from './support/api';
import { createModels } from '../src/db/models';
import { commandLog, type CommandLog } from './support/commandLog';
import { deliverNotification } from '../src/notifications/deliver';
import { requestNotification } from '../src/notifications/request';
import { createWebhookRateLimiter } from '../src/notifications/webhookRateLimiter';
import { sendingLeaseMs } from '../src/notifications/transitions';

let feishu: FeishuServer;
let df: TestDueflow;
let log: CommandLog;
let ctx: TestDueflow['ctx'];
let deps: Parameters<typeof deliverNotification>[3];
const job = { attemptsMade: 0, attempts: 5 };

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('api');
  log = await commandLog(df.config);
  ctx = { ...df.ctx, models: log.models };
  deps = { limiter: createWebhookRateLimiter(df.ctx.redis, { prefix: df.config.QUEUE_PREFIX, perSecond: 100, perMinute: 6000 }) };
});
afterAll(async () => {
  await log?.close();
  await df?.stop();
  await feishu?.close();
});

const Records = () => df.ctx.models.notificationRecords;
const reload = async (id: string) => (await Records().findById(id).lean<any>())!;
/** The record's history after its `requested` entry. */
const events = (r: any) => r.history.filter((h: any) => h.event !== 'requested');
const hhmm = (d: Date) => d.toISOString().slice(11, 16);

async function recordFor(settings?: Record<string, unknown>, body: Record<string, unknown> = {}) {
  const user = await newBotUser(df.baseUrl, feishu, settings ? { settings } : {});
  const requested = await requestNotification(df.ctx, notificationBody(user.userId, body) as any);
  return { ...user, id: requested.id };
}

/** Runs one delivery and answers its step and the MongoDB commands it sent. */
async function deliver(id: string, over: Partial<typeof ctx> = {}) {
  const { value: step, commands } = await log.counted(() => deliverNotification({ ...ctx, ...over }, id, job, deps));
  return { step, commands };
}

test('a pending record goes out with two MongoDB commands (the claim answers the record, then sent) when settings and channels are cached, four when not', async () => {
  const cold = await recordFor();
  df.ctx.userCache.cache.drop(cold.userId);
  const first = await deliver(cold.id);
  expect(first.step).toEqual({ kind: 'done', status: 'sent' });
  expect(first.commands).toHaveLength(4);
  expect(first.commands[0]).toBe('findAndModify notification_records');
  expect(first.commands.slice(1, 3).sort()).toEqual(['find notification_channels', 'find user_settings']);
  expect(first.commands[3]).toBe('update notification_records');

  // The request chose the channel from the same settings and channels: the delivery finds them cached.
  const { id, token } = await recordFor();
  const { step, commands: sent } = await deliver(id);
  expect(step).toEqual({ kind: 'done', status: 'sent' });
  expect(sent).toEqual(['findAndModify notification_records', 'update notification_records']);
  const r = await reload(id);
  expect(r).toMatchObject({ status: 'sent', attemptCount: 1 });
  expect(r.sendingSince).toBeUndefined();
  expect(events(r).map((h: any) => h.event)).toEqual(['attempt']);
  expect(events(r)[0]).toMatchObject({ attempt: 1, outcome: 'sent' });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);

  // Run again (a duplicate job): nothing is claimed, the read says it is sent, nothing is sent.
  const again = await deliver(id);
  expect(again.step).toEqual({ kind: 'done', status: 'sent' });
  expect(again.commands).toEqual(['findAndModify notification_records', 'find notification_records']);
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
});

test('a failed record inside quiet hours goes back exactly as it was (failed, its nextRetryAt, attemptCount), deferred to their end', async () => {
  const now = new Date();
  const quietHours = { start: hhmm(new Date(now.getTime() - 3600_000)), end: hhmm(new Date(now.getTime() + 3600_000)) };
  const { id, token } = await recordFor({ timeZone: 'UTC', quietHours });
  const nextRetryAt = new Date(now.getTime() - 1000);
  await Records().updateOne({ _id: id }, { $set: { status: 'failed', attemptCount: 2, nextRetryAt } });
  const { step } = await deliver(id);
  expect(step).toMatchObject({ kind: 'delay', reason: 'quiet_hours' });
  const until = (step as { until: Date }).until;
  expect(until.getTime()).toBeGreaterThan(now.getTime());
  const r = await reload(id);
  expect(r).toMatchObject({ status: 'failed', attemptCount: 2, nextRetryAt, deferredUntil: until });
  expect(r.sendingSince).toBeUndefined();
  expect(events(r).map((h: any) => h.event)).toEqual(['deferred']);
  expect(events(r)[0]).toMatchObject({ code: 'quiet_hours', until });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(0);

  // An urgent one goes out through them.
  const urgent = await recordFor({ timeZone: 'UTC', quietHours }, { urgent: true });
  expect((await deliver(urgent.id)).step).toEqual({ kind: 'done', status: 'sent' });
});

test('opted out, or no enabled channel: skipped, attemptCount as before, one history entry', async () => {
  const opted = await recordFor({ timeZone: 'UTC', optOutTriggerTypes: ['important_urgent_task'] });
  expect((await deliver(opted.id)).step).toEqual({ kind: 'done', status: 'skipped' });
  const r = await reload(opted.id);
  expect(r).toMatchObject({ status: 'skipped', statusReason: 'user_opted_out', attemptCount: 0 });
  expect(r.sendingSince).toBeUndefined();
  expect(events(r).map((h: any) => [h.event, h.code])).toEqual([['skipped', 'user_opted_out']]);

  const disabled = await recordFor();
  const off = await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth: disabled.auth,
    body: { enabled: false, webhookUrl: feishu.botUrl(disabled.token) },
  });
  expect(off.status).toBe(200);
  expect((await deliver(disabled.id)).step).toEqual({ kind: 'done', status: 'skipped' });
  expect(await reload(disabled.id)).toMatchObject({ status: 'skipped', statusReason: 'recipient_missing', attemptCount: 0 });
  expect(feishu.messages.filter((m) => m.token === opted.token || m.token === disabled.token)).toHaveLength(0);
});

test('a record held for a digest is never taken by the first claim: the read-first path lets the digest decide', async () => {
  const { id, token } = await recordFor();
  await Records().updateOne({ _id: id }, { $set: { digestState: 'held' } });
  const { step, commands: sent } = await deliver(id);
  expect(step).toEqual({ kind: 'done', status: 'sent' });
  expect(sent.slice(0, 2)).toEqual(['findAndModify notification_records', 'find notification_records']);
  expect(await reload(id)).toMatchObject({ status: 'sent', digestState: 'alone', attemptCount: 1 });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
});

test("a dead record (an operator's replay) still goes through the read-first path with its replay entry; a live `sending` is left alone", async () => {
  const { id } = await recordFor();
  await Records().updateOne({ _id: id }, { $set: { status: 'dead', statusReason: 'attempts_exhausted', attemptCount: 5 } });
  expect((await deliver(id)).step).toEqual({ kind: 'done', status: 'sent' });
  const r = await reload(id);
  expect(r).toMatchObject({ status: 'sent', attemptCount: 6 });
  expect(events(r).map((h: any) => h.event)).toEqual(['replay', 'attempt']);

  const busy = await recordFor();
  const since = new Date(Date.now() - 1000);
  await Records().updateOne({ _id: busy.id }, { $set: { status: 'sending', sendingSince: since, attemptCount: 1 } });
  const { step } = await deliver(busy.id);
  expect(step).toMatchObject({ kind: 'delay', reason: 'another worker is sending' });
  expect((step as { until: Date }).until.getTime()).toBe(since.getTime() + sendingLeaseMs);
  expect(await reload(busy.id)).toMatchObject({ status: 'sending', attemptCount: 1, sendingSince: since });
});

test('five runs of one record at once: one message, one attempt', async () => {
  const { id, token } = await recordFor();
  const steps = await Promise.all(Array.from({ length: 5 }, () => deliverNotification(ctx, id, job, deps)));
  expect(steps.filter((s) => s.kind === 'done' && s.status === 'sent').length).toBeGreaterThanOrEqual(1);
  expect(await reload(id)).toMatchObject({ status: 'sent', attemptCount: 1 });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
});

test('when reading the settings fails after the claim, the claim is given back before the error', async () => {
  const { id, token, userId } = await recordFor();
  await Records().updateOne({ _id: id }, { $set: { status: 'failed', attemptCount: 1 } });
  df.ctx.userCache.cache.drop(userId);
  // A real connection, closed: its reads fail the way a lost database does.
  const closed = mongoose.createConnection(df.config.MONGODB_URI, { dbName: df.config.MONGODB_DB });
  await closed.asPromise();
  const gone = createModels(closed);
  await Promise.all(Object.values(gone).map((m) => m.init()));
  await closed.close();
  await expect(deliver(id, { models: { ...ctx.models, userSettings: gone.userSettings } })).rejects.toThrow();
  const r = await reload(id);
  expect(r).toMatchObject({ status: 'failed', attemptCount: 1 });
  expect(r.sendingSince).toBeUndefined();
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(0);
  expect((await deliver(id)).step).toEqual({ kind: 'done', status: 'sent' });
  expect(await reload(id)).toMatchObject({ status: 'sent', attemptCount: 2 });
});
