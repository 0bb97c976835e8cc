/**
 * Reminders over real HTTP, real Redis and FerretDB, the Feishu-compatible server, in-process
 * (all mode, scanner every 200 ms): CRUD and validation, the due job each write leaves, a one-off
 * that fires once, an occurrence claimed twice that sends once, delete and edit, the firing rules
 * (catch-up, catch-up limit, count, endAt) on a clock the test sets, and the migration of a
 * database that still has the unique taskId index. Two worker processes and workers that were
 * down: test/reminders.processes.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { closeContext, createContext } from '../src/context';
import type { DueJobDoc } from '../src/db/dueJob';
import type { ReminderDoc } from '../src/db/reminder';
import { createLogger } from '../src/logger';
import { fireDueJob } from '../src/scheduling/fireDueJob';
import { repairStuckReminderJobs } from '../src/reminders/store';
import { asUser, call, userWithBot } from './support/api';
import { testConfig, waitFor } from './support/env';
import { startFeishuServer, type FeishuServer } from './support/feishuServer';
import { clearDatabase, startTestDueflow, type TestDueflow } from './support/harness';

const R = '/api/v1/reminders';
const HOUR = 3_600_000;
let df: TestDueflow;
let feishu: FeishuServer;

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('all', { SCAN_INTERVAL_MS: '200', REMINDER_MIN_INTERVAL_MS: '2000', NOTIFY_BACKOFF_MS: '20', NOTIFY_BACKOFF_MAX_MS: '100' });
});
afterAll(async () => {
  await df?.stop();
  await feishu?.close();
});

const user = () => `u-${randomUUID()}`;
const api = async (userId: string, method: string, path: string, body?: unknown) => call(df.baseUrl, method, path, { auth: await asUser(userId), body });
const fields = (res: { body: any }) => (res.body?.error?.details ?? []).map((d: { field: string }) => d.field);
const dueJobOf = (id: string) => df.ctx.models.dueJobs.findOne({ key: `reminder:${id}` }).lean<DueJobDoc>();
const reminderDoc = (id: string) => df.ctx.models.reminders.findById(id).lean<ReminderDoc>();
const inMs = (ms: number) => new Date(Date.now() + ms);
const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function create(userId: string, body: Record<string, unknown>) {
  const res = await api(userId, 'POST', R, { message: { title: 'Stand up', summary: 'Stretch for five minutes.' }, ...body });
  expect([res.status, res.body]).toEqual([201, expect.anything()]);
  return res.body;
}

/** The next weekday 09:00 in Asia/Shanghai (UTC+8, no DST), worked out without cron. */
function nextWeekdayNineShanghai(now: Date): Date {
  const shanghaiMidnight = Math.floor((now.getTime() + 8 * HOUR) / (24 * HOUR)) * 24 * HOUR - 8 * HOUR;
  for (let d = 0; d < 8; d++) {
    const t = new Date(shanghaiMidnight + d * 24 * HOUR + 9 * HOUR);
    const weekday = new Date(t.getTime() + 8 * HOUR).getUTCDay();
    if (t.getTime() > now.getTime() && weekday >= 1 && weekday <= 5) return t;
  }
  throw new Error('unreachable');
}

/** The due job as the scanner would leave it: claimed, with a lease no scan takes back during the test. */
async function claim(job: DueJobDoc) {
  await df.ctx.models.dueJobs.updateOne({ _id: job._id }, { $set: { status: 'claimed', claimedAt: new Date(), leaseUntil: inMs(HOUR) } });
}

describe('reminders CRUD', () => {
  test('create one-off and recurring (cron in my time zone), read, list, change the message, move, switch, delete', async () => {
    const u = user();
    const put = await api(u, 'PUT', '/api/v1/me/settings', { timeZone: 'Asia/Shanghai', optOutTriggerTypes: [] });
    expect(put.status).toBe(200);

    const at = new Date(Math.ceil((Date.now() + 5 * HOUR) / 1000) * 1000);
    const once = await create(u, { at: at.toISOString() });
    expect(once).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
      message: { title: 'Stand up', summary: 'Stretch for five minutes.' },
      at: at.toISOString(),
      cron: null,
      timeZone: 'Asia/Shanghai',
      endAt: null,
      count: null,
      firedCount: 0,
      nextAt: at.toISOString(),
      status: 'active',
      lastOccurrence: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(await dueJobOf(once.id)).toMatchObject({
      userId: u,
      kind: 'reminder',
      reminderId: once.id,
      status: 'pending',
      triggerAt: at,
      thresholdAt: at,
      attempts: 0,
    });
    expect((await dueJobOf(once.id))!.taskId).toBeUndefined();

    const before = new Date();
    const daily = await create(u, { cron: '0 9 * * 1-5', count: 10, message: { title: 'Standup', summary: 'Daily standup in room 3' } });
    const nine = nextWeekdayNineShanghai(before);
    expect(daily).toMatchObject({ at: null, cron: '0 9 * * 1-5', count: 10, timeZone: 'Asia/Shanghai', nextAt: nine.toISOString(), status: 'active' });
    expect(await dueJobOf(daily.id)).toMatchObject({ kind: 'reminder', status: 'pending', triggerAt: nine });

    expect((await api(u, 'GET', `${R}/${daily.id}`)).body).toEqual(daily);
    const list = await api(u, 'GET', R);
    expect(list.body.items.map((r: any) => r.id)).toEqual([daily.id, once.id]);
    expect(list.body.nextCursor).toBeNull();
    const page = await api(u, 'GET', `${R}?limit=1`);
    expect((await api(u, 'GET', `${R}?limit=1&cursor=${page.body.nextCursor}`)).body.items.map((r: any) => r.id)).toEqual([once.id]);

    // The message alone: the occurrence stays where it was.
    const jobBefore = await dueJobOf(daily.id);
    const renamed = await api(u, 'PATCH', `${R}/${daily.id}`, { message: { title: 'Team standup' } });
    expect(renamed.body).toMatchObject({ message: { title: 'Team standup', summary: 'Daily standup in room 3' }, nextAt: nine.toISOString() });
    expect(await dueJobOf(daily.id)).toEqual(jobBefore);

    // A new cron moves the next occurrence, and the due job with it.
    const moved = await api(u, 'PATCH', `${R}/${daily.id}`, { cron: '30 21 * * *' });
    expect(moved.status).toBe(200);
    const ninePm = new Date(Math.floor((Date.now() + 8 * HOUR) / (24 * HOUR)) * 24 * HOUR - 8 * HOUR + 21.5 * HOUR);
    const expected = ninePm.getTime() > Date.now() ? ninePm : new Date(ninePm.getTime() + 24 * HOUR);
    expect(moved.body).toMatchObject({ cron: '30 21 * * *', count: 10, nextAt: expected.toISOString() });
    expect(await dueJobOf(daily.id)).toMatchObject({ status: 'pending', triggerAt: expected, thresholdAt: expected });

    // Switching to a one-off clears cron and count; endAt/count null clear them.
    const single = inMs(2 * HOUR);
    const switched = await api(u, 'PATCH', `${R}/${daily.id}`, { at: single.toISOString() });
    expect(switched.body).toMatchObject({ at: single.toISOString(), cron: null, count: null, endAt: null, nextAt: single.toISOString() });
    expect(await dueJobOf(daily.id)).toMatchObject({ status: 'pending', triggerAt: single });
    const back = await api(u, 'PATCH', `${R}/${daily.id}`, { cron: '0 8 * * *', endAt: inMs(30 * 24 * HOUR).toISOString(), count: 3 });
    expect(back.body).toMatchObject({ at: null, cron: '0 8 * * *', count: 3 });
    expect((await api(u, 'PATCH', `${R}/${daily.id}`, { endAt: null, count: null })).body).toMatchObject({ endAt: null, count: null, status: 'active' });

    expect((await api(u, 'DELETE', `${R}/${daily.id}`)).status).toBe(204);
    expect(await dueJobOf(daily.id)).toMatchObject({ status: 'canceled', reason: 'reminder_canceled' });
    expect(await reminderDoc(daily.id)).toMatchObject({ status: 'canceled', nextAt: null });
    for (const method of ['GET', 'PATCH', 'DELETE'])
      expect([method, (await api(u, method, `${R}/${daily.id}`, method === 'PATCH' ? { count: 2 } : undefined)).status]).toEqual([method, 404]);
    expect((await api(u, 'GET', R)).body.items.map((r: any) => r.id)).toEqual([once.id]);
    expect(await df.ctx.models.dueJobs.countDocuments({ key: `reminder:${daily.id}` })).toBe(1);
  });

  test("another user's reminder does not exist for me: 404 on read, change and delete; lists are mine only", async () => {
    const [a, b] = [user(), user()];
    const mine = await create(a, { at: inMs(HOUR).toISOString() });
    for (const [method, body] of [['GET'], ['PATCH', { message: { title: 'mine now' } }], ['DELETE']] as const) {
      const res = await api(b, method, `${R}/${mine.id}`, body);
      expect([method, res.status, res.body.error.code]).toEqual([method, 404, 'not_found']);
    }
    expect((await api(b, 'GET', R)).body.items).toEqual([]);
    expect((await api(a, 'GET', `${R}/${mine.id}`)).body).toEqual(mine);
    expect((await api(a, 'GET', `${R}/not-an-id`)).status).toBe(404);
    expect(await dueJobOf(mine.id)).toMatchObject({ status: 'pending' });
  });

  describe('bad input is a 400 naming the field, and changes nothing', () => {
    const u = `v-${randomUUID()}`;
    let once: any;
    let recurring: any;
    beforeAll(async () => {
      once = await create(u, { at: inMs(3 * HOUR).toISOString() });
      recurring = await create(u, { cron: '0 9 * * *' });
    });
    afterEach(async () => {
      expect((await api(u, 'GET', `${R}/${once.id}`)).body).toEqual(once);
      expect((await api(u, 'GET', `${R}/${recurring.id}`)).body).toEqual(recurring);
      expect((await api(u, 'GET', R)).body.items).toHaveLength(2);
    });

    const past = () => inMs(-60_000).toISOString();
    test.each<[string, Record<string, unknown>, string[], RegExp]>([
      ['neither at nor cron', {}, ['body.at', 'body.cron'], /either at .* or cron/],
      ['both at and cron', { at: inMs(HOUR).toISOString(), cron: '0 9 * * *' }, ['body.at', 'body.cron'], /not both/],
      ['a cron that is not one', { cron: 'every monday' }, ['body.cron'], /cron expression of 5 fields/],
      ['a cron with 3 fields', { cron: '* * *' }, ['body.cron'], /5 fields/],
      ['a cron out of range', { cron: '61 * * * *' }, ['body.cron'], /5 fields.*61/],
      ['a hashed cron', { cron: 'H * * * *' }, ['body.cron'], /H \(hashed\)/],
      ['a cron more often than the minimum interval', { cron: '* * * * * *' }, ['body.cron'], /more often than once every 2 s/],
      ['at in the past', { at: past() }, ['body.at'], /in the future/],
      ['at without a zone', { at: '2031-01-01T10:00:00' }, ['body.at'], /ISO 8601/],
      ['endAt in the past', { cron: '0 9 * * *', endAt: past() }, ['body.endAt'], /in the future/],
      ['endAt on a one-off', { at: inMs(HOUR).toISOString(), endAt: inMs(2 * HOUR).toISOString() }, ['body.endAt'], /only for a recurring/],
      ['count on a one-off', { at: inMs(HOUR).toISOString(), count: 2 }, ['body.count'], /only for a recurring/],
      ['count 0', { cron: '0 9 * * *', count: 0 }, ['body.count'], /at least 1/],
      ['count 1.5', { cron: '0 9 * * *', count: 1.5 }, ['body.count'], /whole number/],
      ['no occurrence before endAt', { cron: '0 0 1 1 *', endAt: inMs(60_000).toISOString() }, ['body.endAt'], /no occurrence of cron/],
      ['an empty title', { at: inMs(HOUR).toISOString(), message: { title: ' ', summary: 'x' } }, ['body.message.title'], /must not be empty/],
      ['an unknown field', { at: inMs(HOUR).toISOString(), every: 'day' }, ['body'], /Unrecognized key/],
    ])('POST with %s', async (_name, bad, expected, message) => {
      const res = await api(u, 'POST', R, { message: { title: 'x', summary: 'y' }, ...bad });
      expect([res.status, res.body.error.code]).toEqual([400, 'validation_failed']);
      expect(fields(res).sort()).toEqual(expect.arrayContaining(expected));
      expect(res.body.error.details.find((d: { field: string }) => d.field === expected[0]).message).toMatch(message);
    });

    test.each<[string, () => string, Record<string, unknown>, string, RegExp]>([
      ['both at and cron', () => recurring.id, { at: inMs(HOUR).toISOString(), cron: '0 9 * * *' }, 'body.cron', /not both/],
      ['a bad cron', () => recurring.id, { cron: '0 25 * * *' }, 'body.cron', /5 fields/],
      ['at in the past', () => once.id, { at: past() }, 'body.at', /in the future/],
      ['endAt on a one-off', () => once.id, { endAt: inMs(2 * HOUR).toISOString() }, 'body.endAt', /only for a recurring/],
      ['count on a one-off', () => once.id, { count: 3 }, 'body.count', /only for a recurring/],
      ['endAt before the next occurrence', () => recurring.id, { cron: '0 0 1 1 *', endAt: inMs(60_000).toISOString() }, 'body.endAt', /no occurrence of cron/],
      ['count 0', () => recurring.id, { count: 0 }, 'body.count', /at least 1/],
      ['at null', () => once.id, { at: null }, 'body.at', /ISO 8601/],
    ])('PATCH with %s', async (_name, id, bad, field, message) => {
      const res = await api(u, 'PATCH', `${R}/${id()}`, bad);
      expect([res.status, res.body.error.code]).toEqual([400, 'validation_failed']);
      expect(fields(res)).toContain(field);
      expect(res.body.error.details.find((d: { field: string }) => d.field === field).message).toMatch(message);
    });

    test('odd cron expressions and far dates are a 201 or a 400, never a 5xx', async () => {
      const odd = [
        '@daily',
        '0 0 * * * * *',
        '*/0 * * * *',
        '0 0 L * *',
        '0 0 ? * *',
        '0 0 * * 7',
        '0 0 1W * *',
        '0 0 * * 5L',
        '0 0 * * 1#6',
        '1-0 * * * *',
        '99999999999999999999 * * * *',
        'é * * * *',
        '0 0 29 2 *',
        '0 0 29 2 1',
        '0 0 31 */2 *',
        '0-59/61 * * * *',
        '0 0 * JAN,THU *',
        '0 0 * * MON-FRI',
        '\u0000 * * * *',
        '* * * * * ',
      ];
      const created: string[] = [];
      for (const cron of odd) {
        const res = await api(u, 'POST', R, { message: { title: 'odd', summary: 'odd' }, cron });
        expect([cron, [201, 400].includes(res.status)]).toEqual([cron, true]);
        if (res.status === 400) expect([cron, fields(res)]).toEqual([cron, ['body.cron']]);
        else created.push(res.body.id);
      }
      const far = await api(u, 'POST', R, { message: { title: 'far', summary: 'far' }, at: '9999-12-31T23:59:59Z' });
      expect(far.status).toBe(201);
      created.push(far.body.id);
      for (const id of created) expect((await api(u, 'DELETE', `${R}/${id}`)).status).toBe(204);
    });

    test('a bad list query', async () => {
      expect(fields(await api(u, 'GET', `${R}?status=canceled`))).toEqual(['query.status']);
      expect(fields(await api(u, 'GET', `${R}?limit=0`))).toEqual(['query.limit']);
      expect(fields(await api(u, 'GET', `${R}?cursor=abc`))).toEqual(['query.cursor']);
    });
  });
});

describe('firing, end to end', () => {
  test('a one-off fires once: its message reaches Feishu exactly once; the reminder is completed and its due job triggered', async () => {
    const { userId, token } = await userWithBot(df.baseUrl, feishu);
    const title = `Call the dentist ${randomUUID().slice(0, 8)}`;
    const r = await create(userId, { at: inMs(1500).toISOString(), message: { title, summary: 'Before noon, about the appointment.' } });

    await waitFor(() => messagesTo(token).length >= 1, 15_000, 'the reminder message');
    await sleep(1500); // a second message would have arrived by now
    expect(messagesTo(token)).toHaveLength(1);
    expect(JSON.stringify(messagesTo(token)[0].body)).toContain(title);
    expect(JSON.stringify(messagesTo(token)[0].body)).toContain('Before noon, about the appointment.');

    const view = (await api(userId, 'GET', `${R}/${r.id}`)).body;
    expect(view).toMatchObject({
      status: 'completed',
      firedCount: 1,
      nextAt: null,
      lastOccurrence: { at: r.at, outcome: 'sent', reason: null, triggerId: expect.any(String) },
    });
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'triggered', triggerId: view.lastOccurrence.triggerId });
    const trigger = await df.ctx.models.triggers.findById(view.lastOccurrence.triggerId).lean();
    expect(trigger).toMatchObject({
      userId,
      type: 'reminder',
      source: 'worker_due_job',
      target: { type: 'reminder', id: r.id },
      status: 'closed',
      reason: 'notification_requested',
    });
    expect(trigger!.dedupeKey).toBe(`${userId}|reminder|reminder:${r.id}|${r.at}`);
    expect(await df.ctx.models.notificationRecords.find({ triggerId: String(trigger!._id) }).lean()).toEqual([
      expect.objectContaining({ status: 'sent', triggerType: 'reminder' }),
    ]);
    expect(await df.ctx.models.previews.countDocuments({ triggerId: String(trigger!._id) })).toBe(0);
  });

  test('an occurrence claimed a second time (a firing that died before rolling forward) sends nothing again', async () => {
    const { userId, token } = await userWithBot(df.baseUrl, feishu);
    const r = await create(userId, { at: inMs(1000).toISOString() });
    await waitFor(async () => (await dueJobOf(r.id))?.status === 'triggered', 15_000, 'the occurrence to fire');
    await waitFor(() => messagesTo(token).length === 1, 10_000, 'its message');

    // As if the first firing had created the trigger and died: reminder and due job back at the occurrence.
    await df.ctx.models.reminders.updateOne(
      { _id: r.id },
      { $set: { status: 'active', nextAt: new Date(r.at), firedCount: 0 }, $unset: { lastOccurrence: '' } },
    );
    await df.ctx.models.dueJobs.updateOne(
      { key: `reminder:${r.id}` },
      { $set: { status: 'claimed', claimedAt: new Date(), leaseUntil: inMs(HOUR) }, $unset: { triggerId: '' } },
    );
    const job = (await dueJobOf(r.id))!;
    const again = await fireDueJob(df.ctx, String(job._id));
    expect(again).toMatchObject({ status: 'triggered', triggerId: expect.any(String) });
    expect(await df.ctx.models.triggers.countDocuments({ 'target.id': r.id })).toBe(1);
    await sleep(1500);
    expect(messagesTo(token)).toHaveLength(1);
  });

  test('deleting cancels the next occurrence: no message', async () => {
    const { userId, token } = await userWithBot(df.baseUrl, feishu);
    const r = await create(userId, { at: inMs(1500).toISOString() });
    expect((await api(userId, 'DELETE', `${R}/${r.id}`)).status).toBe(204);
    await sleep(3000);
    expect(messagesTo(token)).toHaveLength(0);
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'canceled', reason: 'reminder_canceled' });
    expect(await df.ctx.models.triggers.countDocuments({ 'target.id': r.id })).toBe(0);
  });

  test('editing moves the next occurrence: the message comes at the new time, not the old one', async () => {
    const { userId, token } = await userWithBot(df.baseUrl, feishu);
    const r = await create(userId, { at: inMs(1500).toISOString() });
    const later = new Date(Math.ceil((Date.now() + 4000) / 1000) * 1000);
    expect((await api(userId, 'PATCH', `${R}/${r.id}`, { at: later.toISOString() })).body).toMatchObject({ nextAt: later.toISOString() });
    await sleep(Math.max(0, new Date(r.at).getTime() + 1000 - Date.now()));
    expect(messagesTo(token)).toHaveLength(0); // the old time passed without a message
    await waitFor(() => messagesTo(token).length >= 1, 10_000, 'the message at the new time');
    expect(feishu.messages.find((m) => m.token === token)!.receivedAt).toBeGreaterThanOrEqual(later.getTime());
    await sleep(1000);
    expect(messagesTo(token)).toHaveLength(1);
    expect((await reminderDoc(r.id))!.lastOccurrence!.at).toEqual(later);
  });
});

describe('firing rules, on a clock the test sets', () => {
  /** A recurring reminder of a user without a channel (no message leaves), its due job claimed at its next occurrence. */
  async function claimedRecurring(body: Record<string, unknown>) {
    const userId = user();
    const r = await create(userId, body);
    const job = (await dueJobOf(r.id))!;
    await claim(job);
    return { userId, r, job, occurrence: job.triggerAt };
  }

  test('fired late within the catch-up limit: one trigger for all the missed occurrences; the next is the first after now', async () => {
    const { r, job, occurrence } = await claimedRecurring({ cron: '0 * * * *' });
    const now = new Date(occurrence.getTime() + 3.5 * HOUR); // three more hourly occurrences passed
    const fired = await fireDueJob(df.ctx, String(job._id), now);
    const next = new Date(occurrence.getTime() + 4 * HOUR);
    expect(fired).toEqual({ status: 'pending', triggerId: expect.any(String), nextAt: next.toISOString() });
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'pending', triggerAt: next, thresholdAt: next, attempts: 0 });
    expect(await reminderDoc(r.id)).toMatchObject({
      status: 'active',
      firedCount: 1,
      nextAt: next,
      lastOccurrence: { at: occurrence, outcome: 'sent', triggerId: fired.triggerId },
    });
    const trigger = await df.ctx.models.triggers.findById(fired.triggerId).lean();
    expect(JSON.parse(trigger!.detail!)).toEqual({
      title: 'Stand up',
      summary: 'Stretch for five minutes.',
      occurrenceAt: occurrence.toISOString(),
      collapsedOccurrences: 3,
    });
    expect(await df.ctx.models.triggers.countDocuments({ 'target.id': r.id })).toBe(1);
  });

  test('claimed beyond the catch-up limit (REMINDER_CATCHUP_MS, 24 h): skipped missed_beyond_catchup, nothing sent, rolled forward', async () => {
    const { r, job, occurrence } = await claimedRecurring({ cron: '0 * * * *' });
    expect(df.config.REMINDER_CATCHUP_MS).toBe(24 * HOUR);
    const now = new Date(occurrence.getTime() + 24 * HOUR + 60_000);
    const fired = await fireDueJob(df.ctx, String(job._id), now);
    const next = new Date(occurrence.getTime() + 25 * HOUR);
    expect(fired).toEqual({ status: 'pending', reason: 'missed_beyond_catchup', nextAt: next.toISOString() });
    expect(await reminderDoc(r.id)).toMatchObject({
      status: 'active',
      firedCount: 0,
      nextAt: next,
      lastOccurrence: { at: occurrence, outcome: 'skipped', reason: 'missed_beyond_catchup' },
    });
    expect(await df.ctx.models.triggers.countDocuments({ 'target.id': r.id })).toBe(0);

    // Exactly at the limit it is still sent.
    await claim((await dueJobOf(r.id))!);
    expect(await fireDueJob(df.ctx, String(job._id), new Date(next.getTime() + 24 * HOUR))).toMatchObject({ status: 'pending', triggerId: expect.any(String) });
  });

  test('an occurrence whose every claim expired (the firing process died each time) is given up, and the reminder rolls on', async () => {
    const { r, job, occurrence } = await claimedRecurring({ cron: '0 * * * *' });
    // The fifth claim of this occurrence has run out too, and no BullMQ job is left: the running scanner takes it back.
    await df.ctx.models.dueJobs.updateOne({ _id: job._id }, { $set: { attempts: 4, leaseUntil: new Date(Date.now() - 1000) } });
    const next = new Date(occurrence.getTime() + HOUR);
    const rolled = await waitFor(async () => {
      const doc = await dueJobOf(r.id);
      return doc?.status === 'pending' && doc.triggerAt.getTime() === next.getTime() ? doc : undefined;
    });
    expect(rolled).toMatchObject({ status: 'pending', triggerAt: next, thresholdAt: next, attempts: 0 });
    expect(await reminderDoc(r.id)).toMatchObject({
      status: 'active',
      firedCount: 0,
      nextAt: next,
      lastOccurrence: { at: occurrence, outcome: 'skipped', reason: 'attempts_exhausted' },
    });
    expect(await df.ctx.models.triggers.countDocuments({ 'target.id': r.id })).toBe(0);
  });

  test("a due job left failed after its occurrence was given up (the job's roll did not land) is brought in line by the reconcile", async () => {
    const { r, job, occurrence } = await claimedRecurring({ cron: '0 * * * *' });
    const next = new Date(occurrence.getTime() + HOUR);
    // The give-up rolled the reminder on; the due job's write did not land (its lock stayed taken, or the process died).
    await df.ctx.models.reminders.updateOne({ _id: r.id }, { $set: { nextAt: next } });
    await df.ctx.models.dueJobs.updateOne(
      { _id: job._id },
      { $set: { status: 'failed', attempts: 5, reason: 'attempts_exhausted' }, $unset: { claimedAt: '', leaseUntil: '' } },
    );
    const later = new Date(Date.now() + 120_000);

    // Just failed: the scanner may be giving it up right now, so it is left alone.
    await repairStuckReminderJobs(df.ctx);
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'failed' });
    expect(await repairStuckReminderJobs(df.ctx, later)).toBeGreaterThanOrEqual(1);
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'pending', triggerAt: next, thresholdAt: next, attempts: 0 });

    // A deleted reminder's failed job is canceled instead.
    const gone = await claimedRecurring({ cron: '30 * * * *' });
    await df.ctx.models.reminders.updateOne({ _id: gone.r.id }, { $set: { status: 'canceled', nextAt: null } });
    await df.ctx.models.dueJobs.updateOne({ _id: gone.job._id }, { $set: { status: 'failed' }, $unset: { claimedAt: '', leaseUntil: '' } });
    await repairStuckReminderJobs(df.ctx, later);
    expect(await dueJobOf(gone.r.id)).toMatchObject({ status: 'canceled', reason: 'reminder_canceled' });
  });

  test('a one-off beyond the catch-up limit: skipped, the reminder completed', async () => {
    const userId = user();
    const r = await create(userId, { at: inMs(HOUR).toISOString() });
    const job = (await dueJobOf(r.id))!;
    await claim(job);
    expect(await fireDueJob(df.ctx, String(job._id), new Date(job.triggerAt.getTime() + 25 * HOUR))).toEqual({
      status: 'skipped',
      reason: 'missed_beyond_catchup',
    });
    expect(await reminderDoc(r.id)).toMatchObject({
      status: 'completed',
      nextAt: null,
      firedCount: 0,
      lastOccurrence: { outcome: 'skipped', reason: 'missed_beyond_catchup' },
    });
    expect(await dueJobOf(r.id)).toMatchObject({ status: 'skipped', reason: 'missed_beyond_catchup' });
  });

  test('count ends it after that many messages; endAt ends it at the first occurrence past it', async () => {
    const counted = await claimedRecurring({ cron: '0 * * * *', count: 2 });
    const first = await fireDueJob(df.ctx, String(counted.job._id), new Date(counted.occurrence.getTime() + 1000));
    expect(first).toMatchObject({ status: 'pending', nextAt: new Date(counted.occurrence.getTime() + HOUR).toISOString() });
    await claim((await dueJobOf(counted.r.id))!);
    const second = await fireDueJob(df.ctx, String(counted.job._id), new Date(counted.occurrence.getTime() + HOUR + 1000));
    expect(second).toEqual({ status: 'triggered', triggerId: expect.any(String) });
    expect(await reminderDoc(counted.r.id)).toMatchObject({ status: 'completed', firedCount: 2, nextAt: null });
    expect((await api(counted.userId, 'GET', `${R}/${counted.r.id}`)).body).toMatchObject({ status: 'completed', firedCount: 2, nextAt: null });

    const ending = await claimedRecurring({ cron: '0 * * * *', endAt: inMs(90 * 60_000).toISOString() });
    const next = new Date(ending.occurrence.getTime() + HOUR);
    const endAt = (await reminderDoc(ending.r.id))!.endAt!;
    const fired = await fireDueJob(df.ctx, String(ending.job._id), new Date(ending.occurrence.getTime() + 1000));
    expect(fired).toEqual(
      next.getTime() <= endAt.getTime()
        ? expect.objectContaining({ status: 'pending', nextAt: next.toISOString() })
        : { status: 'triggered', triggerId: expect.any(String) },
    );
  });

  test('a reminder deleted or moved behind the due job: canceled, or the job follows it', async () => {
    const gone = await claimedRecurring({ cron: '0 * * * *' });
    await df.ctx.models.reminders.updateOne({ _id: gone.r.id }, { $set: { status: 'canceled', nextAt: null } });
    expect(await fireDueJob(df.ctx, String(gone.job._id), new Date(gone.occurrence.getTime() + 1000))).toEqual({
      status: 'canceled',
      reason: 'reminder_canceled',
    });

    const moved = await claimedRecurring({ cron: '0 * * * *' });
    const later = new Date(moved.occurrence.getTime() + 5 * HOUR);
    await df.ctx.models.reminders.updateOne({ _id: moved.r.id }, { $set: { nextAt: later } });
    expect(await fireDueJob(df.ctx, String(moved.job._id), new Date(moved.occurrence.getTime() + 1000))).toEqual({
      status: 'pending',
      reason: 'reminder_moved',
    });
    expect(await dueJobOf(moved.r.id)).toMatchObject({ status: 'pending', triggerAt: later, thresholdAt: later });

    const missing = await claimedRecurring({ cron: '0 * * * *' });
    await df.ctx.models.reminders.deleteOne({ _id: missing.r.id });
    expect(await fireDueJob(df.ctx, String(missing.job._id), new Date(missing.occurrence.getTime() + 1000))).toEqual({
      status: 'skipped',
      reason: 'reminder_not_found',
    });
  });
});

test('a database from before reminders: the unique taskId index is dropped, old due jobs get their key, reminders and tasks coexist', async () => {
  const config = testConfig();
  const old = await createContext(config, createLogger('silent'));
  try {
    // Make the collection look like the old version left it.
    const collection = old.models.dueJobs.collection;
    await collection.dropIndex('key_1');
    await collection.createIndex({ taskId: 1 }, { unique: true });
    const legacy = [new Types.ObjectId(), new Types.ObjectId()].map((id) => ({
      userId: 'u-old',
      taskId: String(id),
      kind: 'task_urgency',
      triggerAt: inMs(HOUR),
      status: 'pending',
      attempts: 0,
    }));
    await collection.insertMany(legacy.map((d) => ({ ...d })));

    const fresh = await createContext(config, createLogger('silent'));
    try {
      const names = (await fresh.models.dueJobs.collection.indexes()).map((i) => i.name);
      expect(names).toContain('key_1');
      expect(names).not.toContain('taskId_1');
      const docs = await fresh.models.dueJobs.find({ userId: 'u-old' }).sort({ taskId: 1 }).lean();
      expect(docs.map((d) => d.key).sort()).toEqual(legacy.map((d) => `task:${d.taskId}`).sort());
      // Two due jobs without a task (reminders) no longer collide on a missing taskId.
      await fresh.models.dueJobs.create(
        [1, 2].map(() => ({
          userId: 'u-old',
          key: `reminder:${new Types.ObjectId()}`,
          kind: 'reminder' as const,
          reminderId: String(new Types.ObjectId()),
          triggerAt: inMs(HOUR),
        })),
      );
      await expect(
        fresh.models.dueJobs.create({ userId: 'u-old', key: `task:${legacy[0].taskId}`, taskId: legacy[0].taskId, triggerAt: inMs(HOUR) }),
      ).rejects.toMatchObject({ code: 11000 });
      // A second start finds nothing to migrate.
      const again = await createContext(config, createLogger('silent'));
      await closeContext(again);
    } finally {
      await clearDatabase(fresh.mongo);
      await closeContext(fresh);
    }
  } finally {
    await closeContext(old);
  }
});
