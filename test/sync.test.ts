/**
 * The host product syncing by its own ids (service token), over real HTTP against real FerretDB
 * and Redis: PUT/DELETE by externalId with due jobs following, POST /api/v1/sync (per-item
 * answers, idempotent repeats, Idempotency-Key), races and the crash between mapping and insert.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { asService, asUser, call } from './support/api';

let df: TestDueflow;
beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df?.stop();
});

const user = () => `s-${randomUUID().slice(0, 8)}`;
const service = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  call(df.baseUrl, method, path, { auth: asService(), body, headers });
const asThem = async (userId: string, method: string, path: string, body?: unknown) => call(df.baseUrl, method, path, { auth: await asUser(userId), body });
const taskPath = (u: string, x: string) => `/api/v1/users/${encodeURIComponent(u)}/tasks/${encodeURIComponent(x)}`;
const blockPath = (u: string, x: string) => `/api/v1/users/${encodeURIComponent(u)}/blocks/${encodeURIComponent(x)}`;
const fields = (res: { body: any }) => (res.body?.error?.details ?? []).map((d: { field: string }) => d.field);
const dueJob = (taskId: string) => df.ctx.models.dueJobs.findOne({ taskId }).lean();
const inHours = (h: number) => new Date(Date.now() + h * 3_600_000);
const at = (hhmm: string, day = '2031-03-10') => `${day}T${hhmm}:00.000Z`;
const tasksOf = (userId: string) => df.ctx.models.tasks.find({ userId }).sort({ _id: 1 }).lean();

describe('a task by externalId', () => {
  test('PUT creates (201), replaces whole (200), the same PUT again changes nothing; DELETE 204 then 404; the due job follows each', async () => {
    const u = user();
    const t1 = inHours(5);
    const created = await service('PUT', taskPath(u, 'task-1'), {
      title: 'Write the report',
      priority: 1,
      deadline: '2031-05-01T18:00:00+08:00',
      urgencyThresholdAt: t1.toISOString(),
      estimatedMinutes: 30,
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
      title: 'Write the report',
      priority: 1,
      deadline: '2031-05-01T10:00:00.000Z',
      urgencyThresholdAt: t1.toISOString(),
      estimatedMinutes: 30,
      status: 'todo',
      completedAt: null,
      externalId: 'task-1',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const id = created.body.id;
    expect(await dueJob(id)).toMatchObject({ userId: u, status: 'pending', triggerAt: t1 });

    // The threshold moved, the deadline and minutes left out: the job moves, the fields are gone.
    const t2 = inHours(8);
    const replaced = await service('PUT', taskPath(u, 'task-1'), { title: 'Write the final report', priority: 2, urgencyThresholdAt: t2.toISOString() });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      id,
      title: 'Write the final report',
      priority: 2,
      deadline: null,
      estimatedMinutes: null,
      externalId: 'task-1',
      createdAt: created.body.createdAt,
    });
    expect(await dueJob(id)).toMatchObject({ status: 'pending', triggerAt: t2, thresholdAt: t2 });

    const again = await service('PUT', taskPath(u, 'task-1'), { title: 'Write the final report', priority: 2, urgencyThresholdAt: t2.toISOString() });
    expect([again.status, again.body]).toEqual([200, replaced.body]);

    const done = await service('PUT', taskPath(u, 'task-1'), {
      title: 'Write the final report',
      priority: 2,
      urgencyThresholdAt: t2.toISOString(),
      status: 'done',
    });
    expect(done.body).toMatchObject({ status: 'done', completedAt: expect.any(String) });
    expect(await dueJob(id)).toMatchObject({ status: 'canceled', reason: 'task_completed' });
    // Still done: when it was done stays.
    const stillDone = await service('PUT', taskPath(u, 'task-1'), {
      title: 'Write the final report',
      priority: 2,
      urgencyThresholdAt: t2.toISOString(),
      status: 'done',
    });
    expect(stillDone.body.completedAt).toBe(done.body.completedAt);
    const reopened = await service('PUT', taskPath(u, 'task-1'), { title: 'Write the final report', priority: 2, urgencyThresholdAt: t2.toISOString() });
    expect(reopened.body).toMatchObject({ status: 'todo', completedAt: null });
    expect(await dueJob(id)).toMatchObject({ status: 'pending', triggerAt: t2 });

    expect((await service('DELETE', taskPath(u, 'task-1'))).status).toBe(204);
    expect(await dueJob(id)).toMatchObject({ status: 'canceled', reason: 'task_deleted' });
    expect((await asThem(u, 'GET', `/api/v1/tasks/${id}`)).status).toBe(404);
    const gone = await service('DELETE', taskPath(u, 'task-1'));
    expect([gone.status, gone.body.error.code]).toEqual([404, 'not_found']);
    expect(await df.ctx.models.externalIds.countDocuments({ userId: u })).toBe(0);

    // Created again: a new task.
    const anew = await service('PUT', taskPath(u, 'task-1'), { title: 'Back', priority: 3 });
    expect(anew.status).toBe(201);
    expect(anew.body.id).not.toBe(id);
  });

  test('externalId is in every view; null for tasks of the user routes, which still work', async () => {
    const u = user();
    const synced = (await service('PUT', taskPath(u, 'ext.1:a_b-c'), { title: 'Synced', priority: 1 })).body;
    const own = (await asThem(u, 'POST', '/api/v1/tasks', { title: 'Mine', priority: 2 })).body;
    expect(own.externalId).toBeNull();
    expect((await asThem(u, 'GET', `/api/v1/tasks/${synced.id}`)).body).toEqual(synced);
    expect((await asThem(u, 'GET', '/api/v1/tasks')).body.items.map((t: any) => [t.id, t.externalId])).toEqual([
      [own.id, null],
      [synced.id, 'ext.1:a_b-c'],
    ]);
    // The user may change a synced task; the host product's next PUT replaces it again.
    expect((await asThem(u, 'PATCH', `/api/v1/tasks/${synced.id}`, { title: 'Renamed by the user' })).body).toMatchObject({
      title: 'Renamed by the user',
      externalId: 'ext.1:a_b-c',
    });
    expect((await service('PUT', taskPath(u, 'ext.1:a_b-c'), { title: 'Synced', priority: 1 })).body).toMatchObject({ id: synced.id, title: 'Synced' });
  });

  test('the same externalId for two users is two tasks', async () => {
    const [a, b] = [user(), user()];
    const ta = await service('PUT', taskPath(a, 'shared'), { title: 'A', priority: 1 });
    const tb = await service('PUT', taskPath(b, 'shared'), { title: 'B', priority: 1 });
    expect([ta.status, tb.status]).toEqual([201, 201]);
    expect(ta.body.id).not.toBe(tb.body.id);
    expect((await asThem(b, 'GET', `/api/v1/tasks/${ta.body.id}`)).status).toBe(404);
    expect((await service('DELETE', taskPath(a, 'shared'))).status).toBe(204);
    expect((await asThem(b, 'GET', `/api/v1/tasks/${tb.body.id}`)).body.title).toBe('B');
  });

  test('deleted through the user routes: its mapping goes too, so the next PUT creates it again', async () => {
    const u = user();
    const first = (await service('PUT', taskPath(u, 'x1'), { title: 'Synced', priority: 1, urgencyThresholdAt: inHours(3).toISOString() })).body;
    expect((await asThem(u, 'DELETE', `/api/v1/tasks/${first.id}`)).status).toBe(204);
    expect(await dueJob(first.id)).toMatchObject({ status: 'canceled', reason: 'task_deleted' });
    expect(await df.ctx.models.externalIds.countDocuments({ userId: u })).toBe(0);
    expect((await service('DELETE', taskPath(u, 'x1'))).status).toBe(404);
    const again = await service('PUT', taskPath(u, 'x1'), { title: 'Synced', priority: 1 });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.id);
  });

  test('bad input: 400 naming the field (params.externalId, params.userId, body.*), nothing written', async () => {
    const u = user();
    for (const bad of ['x'.repeat(129), 'has space', 'a|b', 'ä', 'a/b', '%00']) {
      for (const [method, path, body] of [
        ['PUT', taskPath(u, bad), { title: 't', priority: 1 }],
        ['DELETE', taskPath(u, bad)],
        ['PUT', blockPath(u, bad), { title: 'b', start: at('09:00'), end: at('10:00') }],
        ['DELETE', blockPath(u, bad)],
      ] as const) {
        const res = await service(method, path, body);
        expect([bad, method, path.split('/')[5], res.status, res.body?.error?.code, fields(res)]).toEqual([
          bad,
          method,
          path.split('/')[5],
          400,
          'validation_failed',
          ['params.externalId'],
        ]);
      }
    }
    expect(fields(await service('PUT', taskPath('u'.repeat(129), 'ok'), { title: 't', priority: 1 }))).toEqual(['params.userId']);
    const res = await service('PUT', taskPath(u, 'ok'), { title: 't', priority: 9, deadline: 'tomorrow', owner: 'x' });
    expect([res.status, fields(res).sort()]).toEqual([400, ['body', 'body.deadline', 'body.priority']]);
    expect(await tasksOf(u)).toEqual([]);
    expect(await df.ctx.models.externalIds.countDocuments({ userId: u })).toBe(0);
  });

  test('two concurrent PUTs of one new externalId: one task, one 201', async () => {
    const u = user();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        service('PUT', taskPath(u, 'race'), { title: `Try ${i % 2}`, priority: 1, urgencyThresholdAt: inHours(2).toISOString() }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(await tasksOf(u)).toHaveLength(1);
    expect(await df.ctx.models.dueJobs.countDocuments({ userId: u })).toBe(1);
  });

  test('PUTs and DELETEs racing on one externalId never leave a task nobody maps, nor two', async () => {
    const u = user();
    for (let round = 0; round < 6; round++) {
      await Promise.all([
        service('PUT', taskPath(u, 'churn'), { title: `r${round}`, priority: 1, urgencyThresholdAt: inHours(4).toISOString() }),
        service('DELETE', taskPath(u, 'churn')),
        service('PUT', taskPath(u, 'churn'), { title: `r${round}b`, priority: 2, urgencyThresholdAt: inHours(4).toISOString() }),
        service('DELETE', taskPath(u, 'churn')),
      ]);
      const tasks = await tasksOf(u);
      const mappings = await df.ctx.models.externalIds.find({ userId: u }).lean();
      expect([round, tasks.length <= 1, mappings.length <= 1]).toEqual([round, true, true]);
      if (tasks.length) expect([round, String(mappings[0]?.resourceId)]).toEqual([round, String(tasks[0]._id)]);
      // Every due job still open belongs to a task that is there.
      const open = await df.ctx.models.dueJobs.find({ userId: u, status: 'pending' }).lean();
      expect([round, open.map((j) => j.taskId)]).toEqual([round, tasks.filter((t) => t.urgencyThresholdAt).map((t) => String(t._id))]);
    }
  });

  test('a crash after the mapping was written, before the task: the next PUT creates the task with the mapped id (201)', async () => {
    const u = user();
    const id = new Types.ObjectId();
    await df.ctx.models.externalIds.create({ _id: `task|${u}|crashed`, kind: 'task', userId: u, externalId: 'crashed', resourceId: id });
    const res = await service('PUT', taskPath(u, 'crashed'), { title: 'Survivor', priority: 1, urgencyThresholdAt: inHours(1).toISOString() });
    expect([res.status, res.body.id, res.body.externalId]).toEqual([201, String(id), 'crashed']);
    expect(await dueJob(String(id))).toMatchObject({ status: 'pending' });
    // And a delete of such a mapping to nothing answers 204 and removes it.
    await df.ctx.models.externalIds.create({ _id: `task|${u}|crashed2`, kind: 'task', userId: u, externalId: 'crashed2', resourceId: new Types.ObjectId() });
    expect((await service('DELETE', taskPath(u, 'crashed2'))).status).toBe(204);
    expect(await df.ctx.models.externalIds.exists({ _id: `task|${u}|crashed2` })).toBeNull();
  });
});

describe('a block by externalId', () => {
  test('PUT creates (naming its task by taskExternalId), replaces, DELETE 204 then 404; externalId in the views', async () => {
    const u = user();
    const task = (await service('PUT', taskPath(u, 'exam'), { title: 'Study for the exam', priority: 1 })).body;
    const created = await service('PUT', blockPath(u, 'blk-1'), { taskExternalId: 'exam', start: at('09:00'), end: at('10:00') });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
      taskId: task.id,
      title: 'Study for the exam',
      start: at('09:00'),
      end: at('10:00'),
      status: 'planned',
      previewId: null,
      externalId: 'blk-1',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const own = (await asThem(u, 'POST', '/api/v1/schedule/blocks', { title: 'Mine', start: at('11:00'), end: at('12:00') })).body;
    expect(own.externalId).toBeNull();
    const range = `/api/v1/schedule/blocks?from=${at('00:00')}&to=${at('23:59')}`;
    expect((await asThem(u, 'GET', range)).body.items).toEqual([created.body, own]);

    // Replaced whole: the task link left out is gone; the same PUT again changes nothing.
    const moved = await service('PUT', blockPath(u, 'blk-1'), { title: 'Focus', start: at('13:00'), end: at('14:00') });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id: created.body.id, taskId: null, title: 'Focus', start: at('13:00'), createdAt: created.body.createdAt });
    expect((await service('PUT', blockPath(u, 'blk-1'), { title: 'Focus', start: at('13:00'), end: at('14:00') })).body).toEqual(moved.body);

    // Moved to unfinished: reported once, as PATCH does.
    const unfinished = await service('PUT', blockPath(u, 'blk-1'), { title: 'Focus', start: at('13:00'), end: at('14:00'), status: 'unfinished' });
    expect(unfinished.body.feedbackTrigger).toMatchObject({ created: true });
    expect(
      (await service('PUT', blockPath(u, 'blk-1'), { title: 'Focus', start: at('13:00'), end: at('14:00'), status: 'unfinished' })).body.feedbackTrigger,
    ).toBeUndefined();

    expect((await service('DELETE', blockPath(u, 'blk-1'))).status).toBe(204);
    expect((await service('DELETE', blockPath(u, 'blk-1'))).status).toBe(404);
    expect((await asThem(u, 'GET', range)).body.items).toEqual([own]);
    // A block deleted through the user routes releases its externalId too.
    const b2 = (await service('PUT', blockPath(u, 'blk-2'), { title: 'Two', start: at('15:00'), end: at('16:00') })).body;
    expect((await asThem(u, 'DELETE', `/api/v1/schedule/blocks/${b2.id}`)).status).toBe(204);
    expect((await service('DELETE', blockPath(u, 'blk-2'))).status).toBe(404);
  });

  test("an unknown taskExternalId, another user's task, both task fields, bad times: 400 naming the field", async () => {
    const [u, other] = [user(), user()];
    const theirs = (await service('PUT', taskPath(other, 'theirs'), { title: 'Theirs', priority: 1 })).body;
    await service('PUT', taskPath(other, 'only-theirs'), { title: 'Theirs', priority: 1 });
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ taskExternalId: 'nope', start: at('09:00'), end: at('10:00') }, ['body.taskExternalId']],
      [{ taskExternalId: 'only-theirs', start: at('09:00'), end: at('10:00') }, ['body.taskExternalId']],
      [{ taskId: theirs.id, start: at('09:00'), end: at('10:00') }, ['body.taskId']],
      [{ taskId: theirs.id, taskExternalId: 'x', start: at('09:00'), end: at('10:00') }, ['body.taskExternalId']],
      [{ title: 'x', start: at('10:00'), end: at('09:00') }, ['body.end']],
      [{ start: at('09:00'), end: at('10:00') }, ['body.title']],
    ];
    for (const [body, expected] of cases) {
      const res = await service('PUT', blockPath(u, 'b'), body);
      expect([body, res.status, fields(res)]).toEqual([body, 400, expected]);
    }
    expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId: u })).toBe(0);
  });
});

test("a user's settings through the service route: the same as PUT /api/v1/me/settings", async () => {
  const u = user();
  const body = { timeZone: 'Europe/Paris', quietHours: { start: '22:00', end: '07:00' }, language: 'en' };
  const res = await service('PUT', `/api/v1/users/${u}/settings`, body);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject(body);
  expect((await asThem(u, 'GET', '/api/v1/me/settings')).body).toEqual(res.body);
  const bad = await service('PUT', `/api/v1/users/${u}/settings`, { timeZone: 'Mars/Olympus' });
  expect([bad.status, fields(bad)]).toEqual([400, ['body.timeZone']]);
});

describe('POST /api/v1/sync', () => {
  const snapshot = async (userId: string) =>
    JSON.stringify(
      await Promise.all([
        tasksOf(userId),
        df.ctx.models.scheduleBlocks.find({ userId }).sort({ _id: 1 }).lean(),
        df.ctx.models.dueJobs.find({ userId }).sort({ _id: 1 }).lean(),
        df.ctx.models.externalIds.find({ userId }).sort({ _id: 1 }).lean(),
      ]),
    );

  test('500 items with bad ones among them: every good one applied, each bad one answered with its field, in order; repeating changes nothing more', async () => {
    const u = user();
    const gone = (await service('PUT', taskPath(u, 'old'), { title: 'Old', priority: 3, urgencyThresholdAt: inHours(9).toISOString() })).body;
    const threshold = inHours(6).toISOString();
    const items: any[] = [];
    const expected: Array<[number, string?]> = [];
    // Blocks first in the request, naming tasks that come later in it: tasks are applied first.
    for (let i = 0; i < 80; i++) {
      items.push({ op: 'upsert', kind: 'block', userId: u, externalId: `b-${i}`, data: { taskExternalId: `t-${i}`, start: at('09:00'), end: at('10:00') } });
      expected.push([201]);
    }
    for (let i = 0; items.length < 500; i++) {
      items.push({
        op: 'upsert',
        kind: 'task',
        userId: u,
        externalId: `t-${i}`,
        data: { title: `T${i}`, priority: 1 + (i % 4), ...(i % 2 ? { urgencyThresholdAt: threshold } : {}) },
      });
      expected.push([201]);
    }
    const bad: Array<[number, unknown, string]> = [
      [
        3,
        { op: 'upsert', kind: 'block', userId: u, externalId: 'b-3', data: { taskExternalId: 'no-such', start: at('09:00'), end: at('10:00') } },
        'items[3].data.taskExternalId',
      ],
      // Past index 160: the tasks the blocks name (t-0 to t-79, indexes 80 to 159) stay good.
      [170, { op: 'upsert', kind: 'task', userId: u, externalId: 't-90', data: { title: 'x', priority: 1, deadline: 'tomorrow' } }, 'items[170].data.deadline'],
      [210, { op: 'upsert', kind: 'task', userId: u, externalId: 't-130' }, 'items[210].data'],
      [250, { op: 'upsert', kind: 'note', userId: u, externalId: 'n-1', data: {} }, 'items[250].kind'],
      [290, { op: 'upsert', kind: 'task', userId: u, externalId: 'bad id', data: { title: 'x', priority: 1 } }, 'items[290].externalId'],
      [300, 42, 'items[300]'],
      [350, { op: 'remove', kind: 'task', userId: u, externalId: 't-1' }, 'items[350].op'],
    ];
    for (const [i, item, field] of bad) {
      items[i] = item;
      expected[i] = [400, field];
    }
    items[400] = { op: 'delete', kind: 'task', userId: u, externalId: 'never-was' };
    expected[400] = [404];
    items[450] = { op: 'delete', kind: 'task', userId: u, externalId: 'old' };
    expected[450] = [204];
    expect(JSON.stringify({ items }).length).toBeLessThan(100 * 1024); // BODY_LIMIT's default

    const started = Date.now();
    const first = await service('POST', '/api/v1/sync', { items });
    process.stdout.write(`sync of 500 items: ${Date.now() - started} ms\n`);
    expect(first.status).toBe(200);
    const results = first.body.results;
    expect(results).toHaveLength(500);
    expect(results.map((r: any, i: number) => [i, r.status, r.error?.details?.[0]?.field])).toEqual(expected.map(([status, field], i) => [i, status, field]));
    expect(results[170].error).toEqual({
      code: 'validation_failed',
      message: expect.stringContaining('items[170].data.deadline: '),
      details: [{ field: 'items[170].data.deadline', message: expect.stringMatching(/ISO 8601/) }],
    });
    expect(results[450].id).toBe(gone.id);

    const taskItems = items.filter(
      (it) => it?.kind === 'task' && it.op === 'upsert' && it.data && it.externalId !== 'bad id' && !(typeof it.data.deadline === 'string'),
    );
    const tasks = await tasksOf(u);
    expect(tasks).toHaveLength(taskItems.length);
    const byExternal = new Map(tasks.map((t) => [t.externalId, t]));
    for (const [i, r] of results.entries()) {
      if (r.status === 201 && items[i].kind === 'task') expect(String(byExternal.get(items[i].externalId)!._id)).toBe(r.id);
    }
    const blocks = await df.ctx.models.scheduleBlocks.find({ userId: u }).lean();
    expect(blocks).toHaveLength(79);
    for (const b of blocks) expect(b.taskId).toBe(String(byExternal.get(`t-${b.externalId!.slice(2)}`)!._id));
    expect(await df.ctx.models.dueJobs.countDocuments({ userId: u, status: 'pending' })).toBe(tasks.filter((t) => t.urgencyThresholdAt).length);
    expect(await dueJob(gone.id)).toMatchObject({ status: 'canceled', reason: 'task_deleted' });

    const before = await snapshot(u);
    const repeat = await service('POST', '/api/v1/sync', { items });
    expect(repeat.body.results.map((r: any) => r.status)).toEqual(results.map((r: any) => (r.status === 201 ? 200 : r.status === 204 ? 404 : r.status)));
    expect(repeat.body.results.map((r: any) => r.id)).toEqual(results.map((r: any) => (r.status === 204 ? undefined : r.id)));
    expect(await snapshot(u)).toBe(before);
  }, 120_000);

  test('more than 500 items, or no items array: 400 naming body.items; nothing applied', async () => {
    const u = user();
    const items = Array.from({ length: 501 }, (_, i) => ({ op: 'upsert', kind: 'task', userId: u, externalId: `t${i}`, data: { title: 'x', priority: 1 } }));
    const res = await service('POST', '/api/v1/sync', { items });
    expect([res.status, fields(res), res.body.error.message]).toEqual([400, ['body.items'], 'body.items: at most 500 items per request']);
    expect(fields(await service('POST', '/api/v1/sync', {}))).toEqual(['body.items']);
    expect(fields(await service('POST', '/api/v1/sync', { items: [], extra: 1 }))).toEqual(['body']);
    expect(await tasksOf(u)).toEqual([]);
  });

  test('Idempotency-Key: the same key and body get the first answer again; another body is a 422', async () => {
    const u = user();
    const body = {
      items: [
        { op: 'upsert', kind: 'task', userId: u, externalId: 'k1', data: { title: 'Keyed', priority: 1 } },
        { op: 'delete', kind: 'block', userId: u, externalId: 'none' },
      ],
    };
    const key = { 'idempotency-key': randomUUID() };
    const first = await service('POST', '/api/v1/sync', body, key);
    expect(first.body.results.map((r: any) => r.status)).toEqual([201, 404]);
    const second = await service('POST', '/api/v1/sync', body, key);
    expect([second.status, second.body]).toEqual([200, first.body]);
    // Without the key the work is repeated, idempotently: replaced, not created.
    expect((await service('POST', '/api/v1/sync', body)).body.results.map((r: any) => r.status)).toEqual([200, 404]);
    const other = await service('POST', '/api/v1/sync', { items: [body.items[1]] }, key);
    expect([other.status, other.body.error.code]).toEqual([422, 'idempotency_key_reused']);
    expect(await tasksOf(u)).toHaveLength(1);
  });

  test('items of one externalId apply in their order; a delete then an upsert in one request ends created', async () => {
    const u = user();
    const task = (title: string) => ({ op: 'upsert', kind: 'task', userId: u, externalId: 'seq', data: { title, priority: 1 } });
    const res = await service('POST', '/api/v1/sync', {
      items: [task('one'), task('two'), { op: 'delete', kind: 'task', userId: u, externalId: 'seq' }, task('three')],
    });
    expect(res.body.results.map((r: any) => r.status)).toEqual([201, 200, 204, 201]);
    expect((await tasksOf(u)).map((t) => t.title)).toEqual(['three']);
  });
});
