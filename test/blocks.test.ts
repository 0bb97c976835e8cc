/** Schedule blocks over real HTTP against real FerretDB, and reporting one unfinished. */
import { randomUUID } from 'node:crypto';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { asUser, call } from './support/api';

const BLOCKS = '/api/v1/schedule/blocks';
let df: TestDueflow;

beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df?.stop();
});

const user = () => `u-${randomUUID()}`;
const api = async (userId: string, method: string, path: string, body?: unknown) => call(df.baseUrl, method, path, { auth: await asUser(userId), body });
const fields = (res: { body: any }) => (res.body?.error?.details ?? []).map((d: { field: string }) => d.field);
const at = (hhmm: string, day = '2031-03-10') => `${day}T${hhmm}:00.000Z`;

async function task(userId: string, title = 'Study for the exam') {
  const res = await api(userId, 'POST', '/api/v1/tasks', { title, priority: 1 });
  expect(res.status).toBe(201);
  return res.body.id as string;
}
async function block(userId: string, body: Record<string, unknown>) {
  const res = await api(userId, 'POST', BLOCKS, { title: 'Focus', start: at('09:00'), end: at('10:00'), ...body });
  expect(res.status).toBe(201);
  return res.body;
}
const range = (userId: string, from: string, to: string) => api(userId, 'GET', `${BLOCKS}?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);

describe('schedule blocks', () => {
  test('create, list by range, change, delete; overlapping blocks are allowed', async () => {
    const u = user();
    const taskId = await task(u);
    const b1 = await block(u, { taskId, title: undefined, start: '2031-03-10T17:00:00+08:00', end: at('10:00') });
    expect(b1).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
      taskId,
      title: 'Study for the exam',
      start: at('09:00'),
      end: at('10:00'),
      status: 'planned',
      previewId: null,
      externalId: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const b2 = await block(u, { start: at('09:30'), end: at('11:00') }); // overlaps b1
    const b3 = await block(u, { start: at('20:00'), end: at('08:00', '2031-03-11') }); // crosses midnight
    await block(u, { start: at('09:00', '2031-03-12'), end: at('10:00', '2031-03-12') });

    const ids = async (from: string, to: string) => (await range(u, from, to)).body.items.map((b: any) => b.id);
    expect(await ids(at('00:00'), at('00:00', '2031-03-11'))).toEqual([b1.id, b2.id, b3.id]);
    expect(await ids(at('10:00'), at('10:30'))).toEqual([b2.id]); // b1 ends at 10:00: [from, to) does not touch it
    expect(await ids(at('06:00', '2031-03-11'), at('07:00', '2031-03-11'))).toEqual([b3.id]); // started the day before
    expect(await ids(at('00:00', '2031-03-13'), at('00:00', '2031-03-14'))).toEqual([]);

    const moved = await api(u, 'PATCH', `${BLOCKS}/${b2.id}`, { start: at('13:00'), end: at('14:00'), title: 'Moved', status: 'done' });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id: b2.id, title: 'Moved', start: at('13:00'), end: at('14:00'), status: 'done', taskId: null });
    expect(moved.body.feedbackTrigger).toBeUndefined();
    const unlinked = await api(u, 'PATCH', `${BLOCKS}/${b1.id}`, { taskId: null });
    expect(unlinked.body.taskId).toBeNull();
    expect((await api(u, 'PATCH', `${BLOCKS}/${b1.id}`, { taskId })).body.taskId).toBe(taskId);

    expect((await api(u, 'DELETE', `${BLOCKS}/${b3.id}`)).status).toBe(204);
    expect(await ids(at('00:00'), at('00:00', '2031-03-11'))).toEqual([b1.id, b2.id]);
    expect((await api(u, 'DELETE', `${BLOCKS}/${b3.id}`)).status).toBe(404);
  });

  test("another user's blocks and tasks do not exist for me", async () => {
    const [a, b] = [user(), user()];
    const theirTask = await task(a);
    const theirs = await block(a, { taskId: theirTask });
    for (const [method, path, body] of [
      ['PATCH', `${BLOCKS}/${theirs.id}`, { title: 'mine' }],
      ['DELETE', `${BLOCKS}/${theirs.id}`, undefined],
      ['POST', `${BLOCKS}/${theirs.id}/feedback`, { status: 'unfinished' }],
    ] as const) {
      expect([method, (await api(b, method, path, body)).status]).toEqual([method, 404]);
    }
    expect((await range(b, at('00:00'), at('23:59'))).body.items).toEqual([]);

    // Linking a block to someone else's task: a 400 on taskId, nothing written.
    const create = await api(b, 'POST', BLOCKS, { taskId: theirTask, start: at('09:00'), end: at('10:00') });
    expect([create.status, fields(create)]).toEqual([400, ['body.taskId']]);
    const mine = await block(b, {});
    const link = await api(b, 'PATCH', `${BLOCKS}/${mine.id}`, { taskId: theirTask });
    expect([link.status, fields(link)]).toEqual([400, ['body.taskId']]);
    expect((await range(b, at('00:00'), at('23:59'))).body.items).toEqual([mine]);
    expect(await df.ctx.models.triggers.countDocuments({ userId: b })).toBe(0);
  });

  describe('bad input is a 400 naming the field, and changes nothing', () => {
    const u = `v-${randomUUID()}`;
    let stored: any;
    beforeAll(async () => {
      stored = await block(u, {});
    });
    afterEach(async () => {
      expect((await range(u, at('00:00'), at('23:59'))).body.items).toEqual([stored]);
    });

    test.each<[string, Record<string, unknown>, string, RegExp]>([
      ['end before start', { start: at('10:00'), end: at('09:00') }, 'body.end', /after start/],
      ['end equal to start', { start: at('10:00'), end: at('10:00') }, 'body.end', /after start/],
      ['a block of 8 days', { start: at('10:00'), end: at('10:00', '2031-03-18') }, 'body.end', /at most 7 days/],
      ['a start that is not a date', { start: 'soon', end: at('10:00') }, 'body.start', /ISO 8601/],
      ['a datetime without a zone', { start: '2031-03-10T09:00:00', end: at('10:00') }, 'body.start', /ISO 8601/],
      ['an unknown status', { start: at('09:00'), end: at('10:00'), status: 'skipped' }, 'body.status', /planned/],
      ['a taskId that is not an id', { start: at('09:00'), end: at('10:00'), taskId: 'abc' }, 'body.taskId', /id returned by this API/],
      ['a taskId that is no task', { start: at('09:00'), end: at('10:00'), taskId: '0123456789abcdef01234567' }, 'body.taskId', /no such task of yours/],
    ])('POST with %s', async (_name, body, field, message) => {
      const res = await api(u, 'POST', BLOCKS, { title: 'Bad', ...body });
      expect(res.status).toBe(400);
      expect(fields(res)).toContain(field);
      expect(res.body.error.details.find((d: { field: string }) => d.field === field).message).toMatch(message);
    });

    test('POST without title or taskId, and without start and end', async () => {
      expect(fields(await api(u, 'POST', BLOCKS, { start: at('09:00'), end: at('10:00') }))).toEqual(['body.title']);
      expect(fields(await api(u, 'POST', BLOCKS, { title: 'x' })).sort()).toEqual(['body.end', 'body.start']);
    });

    test.each<[string, Record<string, unknown>, string]>([
      ['an end before the stored start', { end: at('08:00') }, 'body.end'],
      ['a start after the stored end', { start: at('11:00') }, 'body.start'],
      ['both, the wrong way round', { start: at('12:00'), end: at('11:00') }, 'body.end'],
      ['an unknown status', { status: 'lost' }, 'body.status'],
      ['an empty title', { title: '' }, 'body.title'],
    ])('PATCH with %s', async (_name, body, field) => {
      const res = await api(u, 'PATCH', `${BLOCKS}/${stored.id}`, body);
      expect([res.status, fields(res)]).toEqual([400, [field]]);
    });

    test('a bad range', async () => {
      expect(fields(await range(u, at('10:00'), at('09:00')))).toEqual(['query.to']);
      expect(fields(await range(u, 'yesterday', at('09:00')))).toEqual(['query.from']);
      expect(fields(await api(u, 'GET', BLOCKS)).sort()).toEqual(['query.from', 'query.to']);
      expect(fields(await range(u, at('00:00', '2031-01-01'), at('00:00', '2031-06-01')))).toEqual(['query.to']);
    });

    test('feedback that is not "unfinished"', async () => {
      const res = await api(u, 'POST', `${BLOCKS}/${stored.id}/feedback`, { status: 'done' });
      expect([res.status, fields(res)]).toEqual([400, ['body.status']]);
      expect(await df.ctx.models.triggers.countDocuments({ userId: u })).toBe(0);
    });
  });

  describe('reporting a block unfinished creates an unfinished_feedback trigger', () => {
    test('by PATCH status unfinished: one trigger, not a second for the same state', async () => {
      const u = user();
      const taskId = await task(u);
      const b = await block(u, { taskId });
      const res = await api(u, 'PATCH', `${BLOCKS}/${b.id}`, { status: 'unfinished' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'unfinished', feedbackTrigger: { id: expect.any(String), created: true } });
      const trigger = await df.ctx.models.triggers.findById(res.body.feedbackTrigger.id).lean();
      expect(trigger).toMatchObject({ userId: u, type: 'unfinished_feedback', source: 'user_feedback', target: { type: 'schedule_block', id: b.id } });
      expect(JSON.parse(trigger!.detail!)).toMatchObject({ blockId: b.id, taskId, title: 'Focus' });

      const again = await api(u, 'PATCH', `${BLOCKS}/${b.id}`, { status: 'unfinished', title: 'Focus!' });
      expect(again.body.feedbackTrigger).toBeUndefined();
      expect(await df.ctx.models.triggers.countDocuments({ userId: u })).toBe(1);
    });

    test('by the feedback route, with a note; a repeated report is deduplicated', async () => {
      const u = user();
      const b = await block(u, {});
      const res = await api(u, 'POST', `${BLOCKS}/${b.id}/feedback`, { status: 'unfinished', note: 'got interrupted' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: b.id, status: 'unfinished', feedbackTrigger: { created: true } });
      const trigger = await df.ctx.models.triggers.findById(res.body.feedbackTrigger.id).lean();
      expect(trigger).toMatchObject({ type: 'unfinished_feedback', source: 'user_feedback', target: { type: 'schedule_block', id: b.id } });
      expect(JSON.parse(trigger!.detail!).note).toBe('got interrupted');

      const again = await api(u, 'POST', `${BLOCKS}/${b.id}/feedback`, { status: 'unfinished' });
      expect(again.body.feedbackTrigger).toEqual({ ...res.body.feedbackTrigger, created: false, status: expect.any(String) });
      expect(await df.ctx.models.triggers.countDocuments({ userId: u })).toBe(1);
    });
  });
});
