/**
 * Triggers: created by hand through the API and by createTrigger, deduplicated by idempotency key
 * and by user, type, target and window; each runs the workflow once and sends one message.
 * Real dueflow (all mode), real Redis and database, the Feishu-compatible server.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asUser, call, userWithBot as newBotUser } from './support/api';
import { createTrigger } from '../src/triggers/create';
import { triggerJobName } from '../src/triggers/schemas';
import { recoverTriggers } from '../src/triggers/recover';

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

const userWithBot = () => newBotUser(df.baseUrl, feishu);

const newTask = (userId: string, title: string, over: Record<string, unknown> = {}) =>
  df.ctx.models.tasks.create({ userId, title, priority: 1, estimatedMinutes: 30, deadline: new Date(Date.now() + 20 * 3600_000), ...over });

const trigger = (id: string) => df.ctx.models.triggers.findById(id).lean();
const waitForTrigger = (id: string, ...statuses: string[]) =>
  waitFor(
    async () => {
      const t = await trigger(id);
      return t && statuses.includes(t.status) ? t : undefined;
    },
    20_000,
    `trigger ${id} to be ${statuses.join('|')}`,
  );
const waitForRecordSent = (id: string) =>
  waitFor(
    async () => {
      const r = await df.ctx.models.notificationRecords.findById(id).lean();
      return r && r.status !== 'pending' && r.status !== 'sending' ? r : undefined;
    },
    20_000,
    `record ${id} to be sent`,
  );
const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);

test('POST a trigger: 201, the workflow runs, one concrete message is sent; GET shows preview and notification', async () => {
  const { userId, token, auth } = await userWithBot();
  const task = await newTask(userId, 'Prepare the board deck');
  const res = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
  });
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({
    type: 'important_urgent_task',
    source: 'api_trigger',
    status: 'pending',
    created: true,
    target: { type: 'task', id: String(task._id) },
  });

  const done = await waitForTrigger(res.body.id, 'preview_generated', 'closed', 'failed');
  expect(done.status).toBe('preview_generated');
  const view = await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${res.body.id}`, { auth });
  expect(view.status).toBe(200);
  expect(view.body).toMatchObject({ status: 'preview_generated', previewId: done.previewId, notificationId: done.notificationId });

  const record = await waitForRecordSent(done.notificationId!);
  expect(record.status).toBe('sent');
  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  const text = JSON.stringify(sent[0].body);
  expect(text).toContain('Prepare the board deck');
  expect(text).toMatch(/建议时段：周[日一二三四五六] \d\d:\d\d–\d\d:\d\d（30 分钟）/); // default language zh-CN
  expect(text).toContain(`http://dueflow.test/app/previews/${done.previewId}`);
});

test('the same trigger requested twice: one trigger, one message; an idempotency key answers the same trigger', async () => {
  const { userId, token, auth } = await userWithBot();
  const task = await newTask(userId, 'Renew the passport');
  const body = { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) }, idempotencyKey: 'click-1' };
  const [a, b] = await Promise.all([
    call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', { auth, body }),
    call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', { auth, body: { ...body, idempotencyKey: undefined } }),
  ]);
  expect([a.status, b.status].sort()).toEqual([200, 201]);
  expect(a.body.id).toBe(b.body.id);
  const again = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', { auth, body });
  expect([again.status, again.body.id, again.body.created]).toEqual([200, a.body.id, false]);
  // The same key with another body is a client bug.
  const other = await newTask(userId, 'Something else');
  const reused = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { ...body, target: { type: 'task', id: String(other._id) } },
  });
  expect(reused.status).toBe(422);

  const done = await waitForTrigger(a.body.id, 'preview_generated', 'closed', 'failed');
  await waitForRecordSent(done.notificationId!);
  expect(await df.ctx.models.triggers.countDocuments({ userId })).toBe(1);
  expect(await df.ctx.models.notificationRecords.countDocuments({ userId })).toBe(1);
  expect(messagesTo(token)).toHaveLength(1);
});

test('two urgent tasks in one window: two triggers, two messages, each naming its task', async () => {
  const { userId, token, auth } = await userWithBot();
  const [t1, t2] = await Promise.all([newTask(userId, 'Pay the rent'), newTask(userId, 'Call the plumber')]);
  const ids = await Promise.all(
    [t1, t2].map(async (t) => {
      const r = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
        auth,
        body: { type: 'important_urgent_task', target: { type: 'task', id: String(t._id) } },
      });
      expect(r.status).toBe(201);
      return r.body.id as string;
    }),
  );
  const triggers = await Promise.all(ids.map((id) => waitForTrigger(id, 'preview_generated', 'closed', 'failed')));
  await Promise.all(triggers.map((t) => waitForRecordSent(t.notificationId!)));
  const texts = messagesTo(token).map((m) => JSON.stringify(m.body));
  expect(texts).toHaveLength(2);
  expect(texts.filter((t) => t.includes('Pay the rent'))).toHaveLength(1);
  expect(texts.filter((t) => t.includes('Call the plumber'))).toHaveLength(1);
});

test('createTrigger under a race: many callers, one trigger, one workflow job', async () => {
  const userId = `u-${randomUUID()}`;
  const task = await newTask(userId, 'Race');
  const at = new Date('2026-11-26T10:00:00Z');
  const input = {
    userId,
    type: 'important_urgent_task' as const,
    source: 'worker_due_job' as const,
    target: { type: 'task', id: String(task._id) },
    at,
    dueJobId: String(new Types.ObjectId()),
  };
  const results = await Promise.all(Array.from({ length: 8 }, () => createTrigger(df.ctx, input)));
  expect(results.filter((r) => r.created)).toHaveLength(1);
  expect(new Set(results.map((r) => String(r.trigger._id))).size).toBe(1);
  expect(results[0].trigger).toMatchObject({
    dueJobId: input.dueJobId,
    source: 'worker_due_job',
    dedupeKey: `${userId}|important_urgent_task|task:${task._id}|2026-11-26T10:00:00.000Z`,
  });
  expect(await df.ctx.models.triggers.countDocuments({ userId })).toBe(1);
  // Another occurrence (the threshold moved) is another trigger.
  expect((await createTrigger(df.ctx, { ...input, at: new Date('2026-11-26T11:00:00Z') })).created).toBe(true);
});

test("a user sees only their own: 404 for another user's trigger and for a target that is not theirs", async () => {
  const { userId, auth } = await userWithBot();
  const task = await newTask(userId, 'Mine');
  const mine = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
  });
  const stranger = await asUser(`u-${randomUUID()}`);
  expect((await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${mine.body.id}`, { auth: stranger })).status).toBe(404);
  expect(
    (
      await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
        auth: stranger,
        body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
      })
    ).status,
  ).toBe(404);
  expect((await call(df.baseUrl, 'GET', '/api/v1/active-schedule/triggers/nope', { auth })).status).toBe(404);
  const bad = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', { auth, body: { type: 'whatever', target: { type: 'task', id: 'x' } } });
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toContain('body.type');
  expect(bad.body.error.message).toContain('body.target.id');
});

test('unfinished feedback on a block: a make-up block is proposed, sized by the block', async () => {
  const { userId, token, auth } = await userWithBot();
  const task = await newTask(userId, 'Study for the exam', { estimatedMinutes: 180 });
  const block = await df.ctx.models.scheduleBlocks.create({
    userId,
    taskId: String(task._id),
    title: 'Study for the exam',
    start: new Date(Date.now() - 3 * 3600_000),
    end: new Date(Date.now() - 2 * 3600_000 - 15 * 60_000),
    status: 'unfinished',
  });
  const res = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { type: 'unfinished_feedback', target: { type: 'schedule_block', id: String(block._id) } },
  });
  expect(res.status).toBe(201);
  const done = await waitForTrigger(res.body.id, 'preview_generated', 'closed', 'failed');
  expect(done.status).toBe('preview_generated');
  const preview = await df.ctx.models.previews.findById(done.previewId).lean();
  expect(preview!.candidate.kind).toBe('create_makeup_block');
  expect(preview!.candidate.end!.getTime() - preview!.candidate.start!.getTime()).toBe(45 * 60_000);
  await waitForRecordSent(done.notificationId!);
  expect(JSON.stringify(messagesTo(token)[0].body)).toContain('你反馈「Study for the exam」没有完成');
});

test('a trigger job with an invalid payload fails at once, without retries', async () => {
  const queue = df.ctx.queues['active-schedule-triggered'];
  const job = await queue.add(triggerJobName, { v: 2, triggerId: 'nope' }, { jobId: 'trigger-invalid-payload', attempts: 5 });
  const failed = await waitFor(async () => ((await job.getState()) === 'failed' ? queue.getJob(job.id!) : undefined), 10_000, 'the job to fail');
  expect(failed!.attemptsMade).toBe(1);
  expect(failed!.failedReason).toContain('invalid trigger job payload');
});

test('a pending trigger whose job was lost is requeued by recoverTriggers and runs', async () => {
  const { userId, token } = await userWithBot();
  const task = await newTask(userId, 'Lost in Redis');
  // As if the insert succeeded and the enqueue did not: a pending trigger, no job, a minute old.
  const t = await df.ctx.models.triggers.create({
    userId,
    type: 'important_urgent_task',
    source: 'api_trigger',
    target: { type: 'task', id: String(task._id) },
    dedupeKey: `lost-${randomUUID()}`,
    status: 'pending',
  });
  await df.ctx.models.triggers.collection.updateOne({ _id: t._id }, { $set: { updatedAt: new Date(Date.now() - 120_000) } });
  const { requeued } = await recoverTriggers(df.ctx);
  expect(requeued).toBeGreaterThanOrEqual(1);
  const done = await waitForTrigger(String(t._id), 'preview_generated', 'closed', 'failed');
  expect(done.status).toBe('preview_generated');
  await waitForRecordSent(done.notificationId!);
  expect(messagesTo(token)).toHaveLength(1);
  // Nothing left to recover for it.
  expect((await recoverTriggers(df.ctx)).requeued).toBe(0);
});
