/**
 * Digests: a burst of anomalies for one user becomes one message listing them; each anomaly's
 * record points at the digest that carried it. Real dueflow (all mode), Redis, the database and
 * the Feishu-compatible server; grouping on with a short hold and interval.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asService, call, userWithBot as newBotUser } from './support/api';
import { buildDigestMessage, decideDigest } from '../src/notifications/digest';

const HOLD = 1500;
const INTERVAL = 4000;
let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('all', { DIGEST_THRESHOLD: '5', DIGEST_WINDOW_MS: '600000', DIGEST_HOLD_MS: String(HOLD), DIGEST_INTERVAL_MS: String(INTERVAL) });
});
afterAll(async () => {
  await df.stop();
  await feishu.close();
});

const userWithBot = (settings?: Record<string, unknown>) => newBotUser(df.baseUrl, feishu, { format: 'text', settings });
const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);
const textOf = (m: { body: any }) => String(m.body.content?.text ?? JSON.stringify(m.body));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function anomaly(userId: string, n: number, over: Record<string, unknown> = {}) {
  return {
    userId,
    type: 'sensor_offline',
    severity: 'warning',
    targetType: 'sensor',
    targetId: `s-${n}-${randomUUID().slice(0, 6)}`,
    title: `Sensor ${n} offline`,
    detail: `Sensor ${n} stopped reporting.\nLast seen at the gate.`,
    occurredAt: new Date(Date.now() - 60_000).toISOString(),
    idempotencyKey: `k-${randomUUID()}`,
    ...over,
  };
}
const post = async (body: unknown) => {
  const res = await call(df.baseUrl, 'POST', '/api/v1/anomalies', { auth: asService(), body });
  expect(res.status).toBe(202);
  return res.body.id as string;
};
const view = async (id: string) => (await call(df.baseUrl, 'GET', `/api/v1/anomalies/${id}`, { auth: asService() })).body;

test('6 anomalies in a burst reach the user as one digest naming all 6; each record points at it', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'Asia/Shanghai', language: 'en' });
  const ids = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => post(anomaly(userId, n))));

  await waitFor(() => messagesTo(token).length >= 1, 20_000, 'the digest');
  await sleep(HOLD + 1500); // nothing else may follow
  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  const text = textOf(sent[0]);
  expect(text).toContain('6 new anomalies in your plan');
  for (const n of [1, 2, 3, 4, 5, 6]) expect(text).toContain(`[Warning] Sensor ${n} offline — Sensor ${n} stopped reporting.`);

  const digest = await df.ctx.models.notificationRecords.findOne({ userId, triggerType: 'digest' }).lean();
  expect(digest).toMatchObject({ status: 'sent', digestState: 'digest' });
  expect(digest!.digestOf).toHaveLength(6);
  for (const id of ids) {
    const v = await view(id);
    expect(v.status).toBe('digested');
    expect(v.notification).toMatchObject({
      status: 'digested',
      attemptCount: 0,
      digest: { id: String(digest!._id), status: 'sent', sentAt: expect.any(String) },
    });
    expect(digest!.digestOf).toContain(v.notification.id);
    // The record view says the same through the user's API.
    const record = await df.ctx.models.notificationRecords.findById(v.notification.id).lean();
    expect(record).toMatchObject({ digestId: String(digest!._id), digestState: 'member' });
    expect(record!.history.map((h: any) => h.event)).toEqual(['requested', 'digested']);
  }
}, 60_000);

test("fewer than the threshold go out one by one, in the user's language", async () => {
  const { userId, token } = await userWithBot();
  await Promise.all([1, 2].map((n) => post(anomaly(userId, n))));
  await waitFor(() => messagesTo(token).length >= 2, 20_000, 'two messages');
  await sleep(500);
  const texts = messagesTo(token).map(textOf);
  expect(texts).toHaveLength(2);
  expect(texts.some((t) => t.includes('【警告】Sensor 1 offline'))).toBe(true);
  expect(texts.some((t) => t.includes('【警告】Sensor 2 offline'))).toBe(true);
  expect(texts.join('\n')).not.toContain('新异常');
  expect(await df.ctx.models.notificationRecords.countDocuments({ userId, triggerType: 'digest' })).toBe(0);
}, 30_000);

test('a critical anomaly in a burst is not held: it goes out alone, at once', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'Asia/Shanghai', language: 'en' });
  const started = Date.now();
  const critical = await post(anomaly(userId, 0, { severity: 'critical', title: 'Power lost' }));
  await Promise.all([1, 2, 3, 4, 5].map((n) => post(anomaly(userId, n))));
  const first = await waitFor(() => messagesTo(token)[0], 10_000, 'the critical message');
  expect(textOf(first)).toContain('[Critical] Power lost');
  // Not held: its record was never put in the digest's hold (timing alone is unreliable on a loaded machine).
  const criticalRecord = await df.ctx.models.notificationRecords.findOne({ userId, 'message.title': { $regex: 'Power lost' } }).lean();
  expect(criticalRecord).toMatchObject({ urgent: true });
  expect(criticalRecord!.digestState).toBeUndefined();
  expect(first.receivedAt - started).toBeLessThan(HOLD * 4);
  await waitFor(() => messagesTo(token).length >= 2, 20_000, 'the digest of the others');
  await sleep(1000);
  const texts = messagesTo(token).map(textOf);
  expect(texts).toHaveLength(2);
  expect(texts[1]).toContain('5 new anomalies');
  expect(texts[1]).not.toContain('Power lost');
  expect((await view(critical)).notification).toMatchObject({ status: 'sent', urgent: true, digest: null });
}, 60_000);

test('in a flood, later anomalies wait for the interval and go out as one more digest', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'Asia/Shanghai', language: 'en' });
  await Promise.all([1, 2, 3, 4, 5].map((n) => post(anomaly(userId, n))));
  await waitFor(() => messagesTo(token).length >= 1, 20_000, 'the first digest');
  const firstAt = messagesTo(token)[0].receivedAt;
  await Promise.all([6, 7].map((n) => post(anomaly(userId, n))));
  await waitFor(() => messagesTo(token).length >= 2, 20_000, 'the second digest');
  const second = messagesTo(token)[1];
  expect(second.receivedAt - firstAt).toBeGreaterThanOrEqual(INTERVAL - 500);
  expect(textOf(second)).toContain('2 new anomalies');
  expect(textOf(second)).toContain('Sensor 6 offline');
  expect(textOf(second)).toContain('Sensor 7 offline');
  await sleep(1000);
  expect(messagesTo(token)).toHaveLength(2);
}, 60_000);

test('a digest written by a run that died before marking its members is finished, not written twice', async () => {
  const { userId } = await userWithBot();
  const Records = df.ctx.models.notificationRecords;
  const base = { userId, channel: 'feishu_bot', triggerType: 'sensor_offline', status: 'pending', attemptCount: 0, maxAttempts: 5, digestState: 'held' };
  // Not enqueued: only this test's decideDigest runs on them.
  const members = await Records.insertMany(
    [1, 2].map((n) => ({
      ...base,
      dedupeKey: `crash-${n}-${randomUUID()}`,
      target: { type: 'sensor', id: `s${n}` },
      message: { title: `M${n}`, summary: 'x' },
    })),
  );
  const memberIds = members.map((m) => String(m._id));
  const digestId = new Types.ObjectId();
  await Records.create({
    _id: digestId,
    userId,
    channel: 'feishu_bot',
    dedupeKey: `digest|${userId}|${memberIds[0]}`,
    triggerType: 'digest',
    target: { type: 'digest', id: userId },
    message: { title: '2', summary: 'x' },
    status: 'pending',
    attemptCount: 0,
    maxAttempts: 5,
    digestState: 'digest',
    digestOf: memberIds,
  });

  expect(await decideDigest(df.ctx, memberIds[1], new Date())).toEqual({ kind: 'digested', digestId: String(digestId) });
  expect(await Records.countDocuments({ userId, triggerType: 'digest' })).toBe(1);
  for (const id of memberIds) expect(await Records.findById(id).lean()).toMatchObject({ status: 'digested', digestId: String(digestId) });
  // Asked again (the other member's job), the answer is the same digest.
  expect(await decideDigest(df.ctx, memberIds[0], new Date())).toEqual({ kind: 'digested', digestId: String(digestId) });
});

test('the digest text lists each anomaly by title and first line, in both languages', () => {
  const members = [
    { title: '【警告】A', summary: 'first\nsecond' },
    { title: '【提示】B', summary: 'only' },
  ];
  const zh = buildDigestMessage('zh-CN', members, 'http://x/app');
  expect(zh.title).toBe('你的计划有 2 个新异常');
  expect(zh.summary).toContain('1. 【警告】A — first');
  expect(zh.summary).toContain('2. 【提示】B — only');
  expect(zh.summary).not.toContain('second');
  const en = buildDigestMessage('en', members, 'http://x/app');
  expect(en).toMatchObject({ title: '2 new anomalies in your plan', actionText: 'View all', actionUrl: 'http://x/app' });
});
