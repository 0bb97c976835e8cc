/**
 * Notification delivery end to end: real HTTP into dueflow, real BullMQ on real Redis, records
 * in the real MongoDB-compatible server, messages to the Feishu-compatible server.
 */
import { randomUUID } from 'node:crypto';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import type { BotUserOptions } from './support/api';
import { asAdmin, asService, asUser, call, notificationBody, userWithBot as newBotUser } from './support/api';

const userWithBot = (opts: BotUserOptions = {}) => newBotUser(df.baseUrl, feishu, opts);
import { deliveryJobId } from '../src/notifications/schemas';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';

const settings = { NOTIFY_ATTEMPTS: '3', NOTIFY_BACKOFF_MS: '20', NOTIFY_BACKOFF_MAX_MS: '100', FEISHU_TIMEOUT_MS: '1000' };

let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('all', settings);
});
afterAll(async () => {
  await df.stop();
  await feishu.close();
});
beforeEach(() => feishu.reset());

async function request(userId: string, overrides: Record<string, unknown> = {}) {
  const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId, overrides) });
  expect(res.status).toBe(202);
  return res.body as { id: string; status: string; reused: boolean };
}

const record = (id: string) => df.ctx.models.notificationRecords.findById(id).lean();
/**
 * The record is written just before BullMQ moves its job: wait for the job too. The state is read
 * first and the job fetched after, so its fields (attemptsMade) are not from before the move.
 */
const waitForJobState = (recordId: string, state: string) => {
  const queue = df.ctx.queues.notifications;
  const jobId = deliveryJobId(recordId);
  return waitFor(async () => ((await queue.getJobState(jobId)) === state ? queue.getJob(jobId) : undefined), 5000, `job of ${recordId} to be ${state}`);
};

async function waitForStatus(id: string, ...statuses: string[]) {
  try {
    return await waitFor(
      async () => {
        const r = await record(id);
        return r && statuses.includes(r.status) ? r : undefined;
      },
      20_000,
      `record ${id} to be ${statuses.join('|')}`,
    );
  } catch (err) {
    // Say where it got stuck: the record and its job.
    const job = await df.ctx.queues.notifications.getJob(deliveryJobId(id));
    throw new Error(
      `${(err as Error).message}\nrecord: ${JSON.stringify(await record(id))}\njob: ${job ? `${await job.getState()} attemptsMade=${job.attemptsMade} ${job.failedReason ?? ''}` : 'none'}`,
    );
  }
}

describe('the happy path', () => {
  test('a requested notification is sent once, signed, and its record says so', async () => {
    const { userId, token } = await userWithBot({ signingSecret: 'sig-secret-123456', keyword: 'dueflow' });
    const { id, status, reused } = await request(userId, { traceId: 'trace-1' });
    expect([status, reused]).toEqual(['pending', false]);
    const sent = await waitForStatus(id, 'sent', 'dead', 'skipped');
    expect(sent.status).toBe('sent');
    expect(sent.attemptCount).toBe(1);
    expect(sent.sentAt).toBeInstanceOf(Date);
    expect(sent.history.map((h: any) => [h.event, h.outcome ?? null])).toEqual([
      ['requested', null],
      ['attempt', 'sent'],
    ]);
    expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
    const card = feishu.messages[0].body;
    expect(card.msg_type).toBe('interactive');
    expect(JSON.stringify(card)).toContain('Finish the report');

    const view = await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth: await asUser(userId) });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ id, status: 'sent', attemptCount: 1, traceId: 'trace-1', channel: 'feishu_bot' });
    expect(view.body.history[1]).toMatchObject({ event: 'attempt', outcome: 'sent', httpStatus: 200, attempt: 1 });
    expect(view.body.history[1].durationMs).toEqual(expect.any(Number));
  });

  test('each format reaches the server in its own body', async () => {
    for (const format of ['text', 'post', 'card']) {
      const { userId, token } = await userWithBot({ format });
      const { id } = await request(userId);
      expect((await waitForStatus(id, 'sent', 'dead')).status).toBe('sent');
      const body = feishu.messages.find((m) => m.token === token)!.body;
      expect(body.msg_type).toBe({ text: 'text', post: 'post', card: 'interactive' }[format]);
    }
  });
});

describe('Feishu error codes', () => {
  test.each([9499, 19001, 19002, 19021, 19022, 19024])('code %i is permanent: dead after one attempt', async (code) => {
    const { userId } = await userWithBot();
    feishu.failNext(1, { code });
    const { id } = await request(userId);
    const dead = await waitForStatus(id, 'dead', 'sent');
    expect(dead).toMatchObject({ status: 'dead', attemptCount: 1, statusReason: `feishu_${code}`, lastErrorCode: `feishu_${code}` });
    const job = await waitForJobState(id, 'failed');
    expect(job.attemptsMade).toBe(1);
  });

  test.each([
    ['code 2200', { code: 2200 }, 'feishu_2200'],
    ['HTTP 500', { httpStatus: 500 }, 'provider_5xx'],
    ['HTTP 503', { httpStatus: 503 }, 'provider_5xx'],
  ])('%s is temporary: failed, retried with backoff, then sent', async (_name, fault, code) => {
    const { userId } = await userWithBot();
    feishu.failNext(1, fault);
    const { id } = await request(userId);
    const sent = await waitForStatus(id, 'sent', 'dead');
    expect(sent.status).toBe('sent');
    expect(sent.attemptCount).toBe(2);
    const attempts = sent.history.filter((h: any) => h.event === 'attempt');
    expect(attempts.map((h: any) => [h.outcome, h.code])).toEqual([
      ['temporary', code],
      ['sent', 'ok'],
    ]);
  });

  test.each([401, 403, 400])('HTTP %i is permanent', async (httpStatus) => {
    const { userId } = await userWithBot();
    feishu.failNext(1, { httpStatus });
    const { id } = await request(userId);
    expect((await waitForStatus(id, 'dead', 'sent')).status).toBe('dead');
  });

  test('a wrong signing secret is refused by the server: dead with 19021', async () => {
    const { userId } = await userWithBot({ signingSecret: 'the-secret-we-have', serverSecret: 'the-secret-feishu-has' });
    const { id } = await request(userId);
    const dead = await waitForStatus(id, 'dead', 'sent');
    expect(dead).toMatchObject({ status: 'dead', statusReason: 'feishu_19021', attemptCount: 1 });
    expect(feishu.messages).toHaveLength(0);
  });

  test('retry then success: attempts and history are right', async () => {
    const { userId } = await userWithBot();
    feishu.failNext(2, { httpStatus: 502 });
    const { id } = await request(userId);
    const sent = await waitForStatus(id, 'sent', 'dead');
    expect(sent.status).toBe('sent');
    expect(sent.attemptCount).toBe(3);
    expect(sent.history.filter((h: any) => h.event === 'attempt').map((h: any) => h.attempt)).toEqual([1, 2, 3]);
  });

  test('attempts exhausted: dead after NOTIFY_ATTEMPTS temporary failures', async () => {
    const { userId } = await userWithBot();
    feishu.failNext(3, { httpStatus: 500 });
    const { id } = await request(userId);
    const dead = await waitForStatus(id, 'dead', 'sent');
    expect(dead).toMatchObject({ status: 'dead', statusReason: 'attempts_exhausted', attemptCount: 3, lastErrorCode: 'provider_5xx' });
  });

  test('a timeout is temporary', async () => {
    const { userId } = await userWithBot();
    feishu.stallNext(1, 1500);
    const { id } = await request(userId);
    const sent = await waitForStatus(id, 'sent', 'dead');
    expect(sent.history.find((h: any) => h.event === 'attempt')!.code).toBe('provider_timeout');
  });

  test('11232 from Feishu slows the webhook down without spending an attempt', async () => {
    const { userId } = await userWithBot();
    feishu.failNext(1, { code: 11232 });
    const { id } = await request(userId);
    const sent = await waitForStatus(id, 'sent', 'dead');
    expect(sent.status).toBe('sent');
    expect(sent.attemptCount).toBe(1);
    expect(sent.history.map((h: any) => h.event)).toEqual(['requested', 'rate_limited', 'attempt']);
    // BullMQ counts the successful run only: the delay did not spend an attempt.
    // (the pause of the whole webhook is checked in the next test)
    const job = await waitForJobState(id, 'completed');
    expect(job.attemptsMade).toBe(1);
  });
});

test('after 11232 the whole webhook pauses: other messages to it wait too', async () => {
  const { userId, token } = await userWithBot();
  feishu.failNext(1, { code: 11232 });
  const first = await request(userId);
  const limited = await waitFor(() => feishu.requests.find((r) => r.token === token && r.code === 11232), 10_000, 'the 11232 answer');
  const second = await request(userId);
  await waitForStatus(first.id, 'sent');
  await waitForStatus(second.id, 'sent');
  const accepted = feishu.messages.filter((m) => m.token === token);
  expect(accepted).toHaveLength(2);
  for (const m of accepted) expect(m.receivedAt - limited.receivedAt).toBeGreaterThanOrEqual(900);
});

describe('skipped', () => {
  test('no channel: skipped recipient_missing, nothing sent', async () => {
    const { id } = await request(`u-${randomUUID()}`);
    expect(await waitForStatus(id, 'skipped', 'sent', 'dead')).toMatchObject({ status: 'skipped', statusReason: 'recipient_missing', attemptCount: 0 });
  });

  test('a disabled channel: skipped recipient_missing', async () => {
    const { userId } = await userWithBot({ enabled: false });
    const { id } = await request(userId);
    expect(await waitForStatus(id, 'skipped', 'sent', 'dead')).toMatchObject({ status: 'skipped', statusReason: 'recipient_missing' });
    expect(feishu.messages).toHaveLength(0);
  });

  test('an opted-out trigger type: skipped user_opted_out', async () => {
    const { userId } = await userWithBot();
    const put = await call(df.baseUrl, 'PUT', '/api/v1/me/settings', {
      auth: await asUser(userId),
      body: { timeZone: 'Asia/Shanghai', optOutTriggerTypes: ['important_urgent_task'] },
    });
    expect(put.status).toBe(200);
    const { id } = await request(userId);
    expect(await waitForStatus(id, 'skipped', 'sent', 'dead')).toMatchObject({ status: 'skipped', statusReason: 'user_opted_out' });
    expect(feishu.messages).toHaveLength(0);
  });
});

test('quiet hours defer the message to their end, and it is sent then', async () => {
  const { userId, token } = await userWithBot();
  // Quiet hours around now, in UTC: from an hour ago to an hour from now.
  const hhmm = (d: Date) => d.toISOString().slice(11, 16);
  const start = new Date(Date.now() - 3600_000);
  const end = new Date(Date.now() + 3600_000);
  await call(df.baseUrl, 'PUT', '/api/v1/me/settings', {
    auth: await asUser(userId),
    body: { timeZone: 'UTC', quietHours: { start: hhmm(start), end: hhmm(end) }, optOutTriggerTypes: [] },
  });
  const { id } = await request(userId);
  const deferred = await waitFor(
    async () => {
      const r = await record(id);
      return r?.deferredUntil ? r : undefined;
    },
    10_000,
    'deferral',
  );
  expect(deferred.status).toBe('pending');
  expect(Math.abs(deferred.deferredUntil!.getTime() - Math.floor(end.getTime() / 60_000) * 60_000)).toBeLessThan(1000);
  const job = await waitForJobState(id, 'delayed');
  expect(job.attemptsMade).toBe(0);
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(0);

  // The quiet hours end (here: the user removes them) and the delayed job runs.
  await call(df.baseUrl, 'PUT', '/api/v1/me/settings', { auth: await asUser(userId), body: { timeZone: 'UTC', optOutTriggerTypes: [] } });
  await job.promote();
  expect((await waitForStatus(id, 'sent', 'dead')).status).toBe('sent');
});

test('20 parallel requests with one dedupe key: one record, one message', async () => {
  const { userId, token } = await userWithBot();
  const body = notificationBody(userId, { dedupeKey: `same-${randomUUID()}` });
  const answers = await Promise.all(Array.from({ length: 20 }, () => call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body })));
  expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
  const ids = new Set(answers.map((a) => a.body.id));
  expect(ids.size).toBe(1);
  expect(answers.filter((a) => a.body.reused === false)).toHaveLength(1);
  const [id] = [...ids];
  await waitForStatus(id, 'sent');
  expect(await df.ctx.models.notificationRecords.countDocuments({ dedupeKey: body.dedupeKey })).toBe(1);
  // A later repeat reuses the sent record and sends nothing.
  const again = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body });
  expect(again.body).toEqual({ id, status: 'sent', reused: true });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
});

test('two workers on one queue: each record is sent exactly once', async () => {
  const second = await startTestDueflow('worker', { ...settings, MONGODB_DB: df.config.MONGODB_DB!, QUEUE_PREFIX: df.config.QUEUE_PREFIX }, { cleanup: false });
  try {
    const users = await Promise.all(Array.from({ length: 20 }, () => userWithBot()));
    const ids = await Promise.all(users.flatMap((u) => Array.from({ length: 4 }, () => request(u.userId).then((r) => r.id))));
    for (const id of ids) expect((await waitForStatus(id, 'sent', 'dead')).status).toBe('sent');
    expect(feishu.messages).toHaveLength(80);
    for (const u of users) expect(feishu.messages.filter((m) => m.token === u.token)).toHaveLength(4);
    const records = await df.ctx.models.notificationRecords.find({ _id: { $in: ids } }).lean();
    expect(records.every((r) => r.attemptCount === 1)).toBe(true);
    // Both workers did some of the work.
    expect((await df.ctx.queues.notifications.getWorkers()).length).toBeGreaterThanOrEqual(2);
  } finally {
    await second.stop();
  }
}, 60_000);

test('a Feishu Flow webhook channel gets the JSON event, with its bearer token', async () => {
  const userId = `u-${randomUUID()}`;
  const flowId = `flow${randomUUID().replace(/-/g, '')}`;
  feishu.registerFlow(flowId, { bearerToken: 'flow-bearer-token-123' });
  const put = await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu', {
    auth: await asUser(userId),
    body: { enabled: true, webhookUrl: feishu.flowUrl(flowId), authType: 'bearer', bearerToken: 'flow-bearer-token-123' },
  });
  expect(put.status).toBe(200);
  const { id } = await request(userId, { traceId: 'trace-flow' });
  const sent = await waitForStatus(id, 'sent', 'dead');
  expect(sent.status).toBe('sent');
  const event = feishu.messages.find((m) => m.token === flowId)!.body;
  expect(event).toMatchObject({
    event: 'notification.feishu.requested',
    notification_id: id,
    user_id: userId,
    trace_id: 'trace-flow',
    message: { title: 'Finish the report' },
  });
});

test('a burst of 30 messages to one bot: no 11232 from Feishu, all 30 delivered', async () => {
  const { userId, token } = await userWithBot();
  const ids = await Promise.all(Array.from({ length: 30 }, () => request(userId).then((r) => r.id)));
  for (const id of ids) expect((await waitForStatus(id, 'sent', 'dead')).status).toBe('sent');
  expect(feishu.rateLimitedCount).toBe(0);
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(30);
}, 60_000);

test("replay of a dead job through Bull Board's retry endpoint ends sent", async () => {
  const { userId, token } = await userWithBot();
  feishu.failNext(1, { code: 19001 });
  const { id } = await request(userId);
  await waitForStatus(id, 'dead');
  const jobId = deliveryJobId(id);
  await waitFor(async () => (await df.ctx.queues.notifications.getJob(jobId))?.finishedOn, 5000, 'the job to fail');

  const retry = await call(df.baseUrl, 'PUT', `/admin/queues/api/queues/notifications/${jobId}/retry`, { auth: asAdmin() });
  expect(retry.status).toBe(204);
  const sent = await waitForStatus(id, 'sent');
  expect(sent.history.map((h: any) => h.event)).toEqual(['requested', 'attempt', 'dead', 'replay', 'attempt']);
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);
  const view = await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth: await asUser(userId) });
  expect(view.body.history.find((h: any) => h.event === 'replay')).toMatchObject({ detail: 'replayed by an operator' });
});

test("a replay's outcome is written under the record's lock where the store needs one, so the relay's clear cannot overwrite it", async () => {
  // On FerretDB the relay's clear of the dead event reads the record and writes it back by _id,
  // holding the record's lock: a settle written in between without that lock would vanish.
  const { userId } = await userWithBot();
  feishu.failNext(1, { code: 19001 });
  const { id } = await request(userId);
  await waitForStatus(id, 'dead');
  const jobId = deliveryJobId(id);
  await waitFor(async () => (await df.ctx.queues.notifications.getJob(jobId))?.finishedOn, 5000, 'the job to fail');
  feishu.stallNext(1, 200);
  await call(df.baseUrl, 'PUT', `/admin/queues/api/queues/notifications/${jobId}/retry`, { auth: asAdmin() });
  await waitForStatus(id, 'sending');
  const held = await withGuardLock(df.ctx, lockName('notification', id), async () => {
    await feishu.waitForMessages(1, 5000);
    await new Promise((r) => setTimeout(r, 500));
    return (await record(id))?.status;
  });
  expect(held).toEqual({ acquired: true, value: df.ctx.store.guardedUpdates === 'locked' ? 'sending' : 'sent' });
  const sent = await waitForStatus(id, 'sent');
  expect(sent.history.map((h: any) => h.event)).toEqual(['requested', 'attempt', 'dead', 'replay', 'attempt']);
});

test('a job with an unknown payload version goes straight to dead, never retried', async () => {
  const { userId } = await userWithBot();
  // A record whose job arrives in a shape this version of dueflow does not know.
  const created = await df.ctx.models.notificationRecords.create({
    userId,
    channel: 'feishu_bot',
    dedupeKey: `raw-${randomUUID()}`,
    triggerType: 'x',
    target: { type: 't', id: '1' },
    message: { title: 't', summary: 's' },
    status: 'pending',
    attemptCount: 0,
    maxAttempts: 3,
    history: [],
  });
  const id = String(created._id);
  await df.ctx.queues.notifications.add('notification.feishu.requested', { v: 2, recordId: id }, { jobId: deliveryJobId(id), attempts: 3 });
  const dead = await waitForStatus(id, 'dead', 'sent');
  expect(dead).toMatchObject({ status: 'dead', statusReason: 'payload_invalid', attemptCount: 0 });
  expect(dead.lastError).toContain('v');
  const job = await waitForJobState(id, 'failed');
  expect(job.attemptsMade).toBe(1);
  expect(feishu.messages).toHaveLength(0);
});

describe('the request API', () => {
  test.each([
    ['userId', { userId: '' }, 'body.userId'],
    ['dedupeKey', { dedupeKey: undefined }, 'body.dedupeKey'],
    ['triggerType', { triggerType: 'Not Valid!' }, 'body.triggerType'],
    ['target', { target: { type: 'task' } }, 'body.target.id'],
    ['message title', { message: { summary: 's' } }, 'body.message.title'],
    ['actionUrl', { message: { title: 't', summary: 's', actionUrl: 'javascript:alert(1)' } }, 'body.message.actionUrl'],
    ['channel', { channel: 'email' }, 'body.channel'],
  ])('a bad %s is a 400 naming the field, and nothing is stored', async (_name, overrides, field) => {
    const before = await df.ctx.models.notificationRecords.countDocuments();
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody('u-bad', overrides) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: any) => d.field)).toContain(field);
    expect(await df.ctx.models.notificationRecords.countDocuments()).toBe(before);
  });

  test('malformed JSON is a 400', async () => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), raw: '{"userId": ' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_json');
  });

  test('a user token cannot call the service route', async () => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: await asUser('u1'), body: notificationBody('u1') });
    expect(res.status).toBe(401);
  });

  test('Idempotency-Key: a repeat gets the same answer; another body with the key is refused', async () => {
    const key = `idem-${randomUUID()}`;
    const body = notificationBody(`u-${randomUUID()}`);
    const first = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body, headers: { 'Idempotency-Key': key } });
    const second = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body, headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.reused).toBe(true);
    const other = await call(df.baseUrl, 'POST', '/api/v1/notifications', {
      auth: asService(),
      body: { ...body, dedupeKey: 'another' },
      headers: { 'Idempotency-Key': key },
    });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });
});

describe('records API', () => {
  test('lists only my records, newest first, filtered by status, with cursor pagination', async () => {
    const userId = `u-${randomUUID()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await request(userId)).id);
    for (const id of ids) await waitForStatus(id, 'skipped');
    const auth = await asUser(userId);
    const page1 = await call(df.baseUrl, 'GET', '/api/v1/notification/records?limit=2&status=skipped', { auth });
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((r: any) => r.id)).toEqual([ids[4], ids[3]]);
    const page2 = await call(df.baseUrl, 'GET', `/api/v1/notification/records?limit=2&status=skipped&cursor=${page1.body.nextCursor}`, { auth });
    const page3 = await call(df.baseUrl, 'GET', `/api/v1/notification/records?limit=2&status=skipped&cursor=${page2.body.nextCursor}`, { auth });
    expect(page2.body.items.map((r: any) => r.id)).toEqual([ids[2], ids[1]]);
    expect(page3.body.items.map((r: any) => r.id)).toEqual([ids[0]]);
    expect(page3.body.nextCursor).toBeNull();
    const sent = await call(df.baseUrl, 'GET', '/api/v1/notification/records?status=sent', { auth });
    expect(sent.body.items).toEqual([]);

    const other = await asUser(`u-${randomUUID()}`);
    expect((await call(df.baseUrl, 'GET', '/api/v1/notification/records', { auth: other })).body.items).toEqual([]);
    expect((await call(df.baseUrl, 'GET', `/api/v1/notification/records/${ids[0]}`, { auth: other })).status).toBe(404);
    expect((await call(df.baseUrl, 'GET', '/api/v1/notification/records/not-an-id', { auth })).status).toBe(404);
    expect((await call(df.baseUrl, 'GET', '/api/v1/notification/records?limit=1000', { auth })).body.error.details[0].field).toBe('query.limit');
  });
});

test('no secret reaches API answers, logs or the stored records', async () => {
  const secret = 'signing-secret-never-shown';
  const { userId, token } = await userWithBot({ signingSecret: secret });
  const { id } = await request(userId);
  await waitForStatus(id, 'sent');
  const view = await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth: await asUser(userId) });
  const raw = JSON.stringify(await df.ctx.models.notificationRecords.collection.findOne({ _id: (await record(id))!._id }));
  for (const text of [JSON.stringify(view.body), raw, df.logs.join('\n')]) {
    expect(text).not.toContain(token);
    expect(text).not.toContain(secret);
  }
  expect(view.body.providerRequest.url).toContain('/open-apis/bot/v2/hook/');
});

test('metrics count notifications by final status and channel', async () => {
  const { userId } = await userWithBot();
  const { id } = await request(userId);
  await waitForStatus(id, 'sent');
  const text = await (await fetch(`${df.baseUrl}/metrics`)).text();
  expect(text).toMatch(/dueflow_notifications_total\{status="sent",channel="feishu_bot"\} [1-9]/);
  expect(text).toMatch(/dueflow_notification_delivery_seconds_count\{channel="feishu_bot"\} [1-9]/);
});
