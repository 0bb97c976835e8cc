/** Tasks over real HTTP against real FerretDB; every write brings the task's due job in line. */
import { randomUUID } from 'node:crypto';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { asUser, call } from './support/api';

const TASKS = '/api/v1/tasks';
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
const dueJob = (taskId: string) => df.ctx.models.dueJobs.findOne({ taskId }).lean();
const inHours = (h: number) => new Date(Date.now() + h * 3_600_000);

async function createTask(userId: string, body: Record<string, unknown> = {}) {
  const res = await api(userId, 'POST', TASKS, { title: 'Write the report', priority: 1, ...body });
  expect(res.status).toBe(201);
  return res.body;
}

describe('tasks CRUD', () => {
  test('create, read, list, change, delete: a round trip in ISO datetimes', async () => {
    const u = user();
    const deadline = '2031-05-01T10:00:00.000Z';
    const created = await createTask(u, {
      deadline: '2031-05-01T18:00:00+08:00',
      urgencyThresholdAt: '2031-04-30T10:00:00Z',
      estimatedMinutes: 90,
      priority: 2,
    });
    expect(created).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
      title: 'Write the report',
      priority: 2,
      deadline,
      urgencyThresholdAt: '2031-04-30T10:00:00.000Z',
      estimatedMinutes: 90,
      status: 'todo',
      completedAt: null,
      externalId: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect((await api(u, 'GET', `${TASKS}/${created.id}`)).body).toEqual(created);

    const second = await createTask(u, { title: 'Read chapter 3', priority: 4 });
    const list = await api(u, 'GET', TASKS);
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: any) => t.id)).toEqual([second.id, created.id]);
    expect(list.body.nextCursor).toBeNull();
    const page = await api(u, 'GET', `${TASKS}?limit=1`);
    expect(page.body.items.map((t: any) => t.id)).toEqual([second.id]);
    expect((await api(u, 'GET', `${TASKS}?limit=1&cursor=${page.body.nextCursor}`)).body.items.map((t: any) => t.id)).toEqual([created.id]);

    const patched = await api(u, 'PATCH', `${TASKS}/${created.id}`, { title: 'Write the final report', deadline: null, status: 'done' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ title: 'Write the final report', deadline: null, status: 'done', priority: 2, estimatedMinutes: 90 });
    expect(patched.body.completedAt).toEqual(expect.any(String));
    expect((await api(u, 'GET', `${TASKS}?status=done`)).body.items.map((t: any) => t.id)).toEqual([created.id]);
    const reopened = await api(u, 'PATCH', `${TASKS}/${created.id}`, { status: 'todo' });
    expect(reopened.body).toMatchObject({ status: 'todo', completedAt: null });

    expect((await api(u, 'DELETE', `${TASKS}/${created.id}`)).status).toBe(204);
    expect((await api(u, 'GET', `${TASKS}/${created.id}`)).status).toBe(404);
    expect((await api(u, 'DELETE', `${TASKS}/${created.id}`)).status).toBe(404);
  });

  test("another user's task does not exist for me: 404 on read, change and delete; lists are mine only", async () => {
    const [a, b] = [user(), user()];
    const task = await createTask(a);
    for (const [method, body] of [['GET'], ['PATCH', { title: 'mine now' }], ['DELETE']] as const) {
      const res = await api(b, method, `${TASKS}/${task.id}`, body);
      expect([method, res.status, res.body.error.code]).toEqual([method, 404, 'not_found']);
    }
    expect((await api(b, 'GET', TASKS)).body.items).toEqual([]);
    expect((await api(a, 'GET', `${TASKS}/${task.id}`)).body.title).toBe('Write the report');
    expect((await api(a, 'GET', `${TASKS}/not-an-id`)).status).toBe(404);
  });

  describe('bad input is a 400 naming the field, and changes nothing', () => {
    const u = `v-${randomUUID()}`;
    let task: any;
    beforeAll(async () => {
      task = await createTask(u, { urgencyThresholdAt: '2031-01-01T00:00:00Z', deadline: '2031-01-02T00:00:00Z' });
    });
    afterEach(async () => {
      expect((await api(u, 'GET', `${TASKS}/${task.id}`)).body).toEqual(task);
      expect((await api(u, 'GET', TASKS)).body.items).toHaveLength(1);
    });

    test.each<[string, Record<string, unknown>, string, RegExp]>([
      ['priority 5', { priority: 5 }, 'body.priority', /1 \(important and urgent\) to 4/],
      ['priority 0', { priority: 0 }, 'body.priority', /1 \(important and urgent\) to 4/],
      ['priority 1.5', { priority: 1.5 }, 'body.priority', /1, 2, 3 or 4/],
      ['a priority that is a string', { priority: '1' }, 'body.priority', /1, 2, 3 or 4/],
      ['a deadline that is not a date', { deadline: 'tomorrow' }, 'body.deadline', /ISO 8601/],
      ['a datetime without a zone', { urgencyThresholdAt: '2031-01-01T10:00:00' }, 'body.urgencyThresholdAt', /ISO 8601/],
      ['a date without a time', { deadline: '2031-01-01' }, 'body.deadline', /ISO 8601/],
      ['an unknown status', { status: 'doing' }, 'body.status', /todo|done/],
      ['an empty title', { title: '   ' }, 'body.title', /must not be empty/],
      ['minutes that are not whole', { estimatedMinutes: 2.5 }, 'body.estimatedMinutes', /whole minutes/],
      ['an unknown field', { owner: 'someone' }, 'body', /Unrecognized key/],
    ])('POST and PATCH with %s', async (_name, bad, field, message) => {
      for (const res of [await api(u, 'POST', TASKS, { title: 'x', priority: 1, ...bad }), await api(u, 'PATCH', `${TASKS}/${task.id}`, bad)]) {
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
        expect(fields(res)).toContain(field);
        expect(res.body.error.details.find((d: { field: string }) => d.field === field).message).toMatch(message);
      }
    });

    test('POST without title and priority names both', async () => {
      const res = await api(u, 'POST', TASKS, {});
      expect(res.status).toBe(400);
      expect(fields(res).sort()).toEqual(['body.priority', 'body.title']);
    });

    test('a bad list query', async () => {
      expect(fields(await api(u, 'GET', `${TASKS}?status=doing`))).toEqual(['query.status']);
      expect(fields(await api(u, 'GET', `${TASKS}?limit=1000`))).toEqual(['query.limit']);
      expect(fields(await api(u, 'GET', `${TASKS}?cursor=abc`))).toEqual(['query.cursor']);
    });
  });
});

describe("a task's due job follows every write", () => {
  test('created at the threshold, moved, canceled when done, pending again when reopened, canceled without threshold and on delete', async () => {
    const u = user();
    const t1 = inHours(5);
    const task = await createTask(u, { urgencyThresholdAt: t1.toISOString() });
    expect(await dueJob(task.id)).toMatchObject({
      userId: u,
      taskId: task.id,
      kind: 'task_urgency',
      status: 'pending',
      triggerAt: t1,
      thresholdAt: t1,
      attempts: 0,
    });

    const t2 = inHours(7);
    await api(u, 'PATCH', `${TASKS}/${task.id}`, { urgencyThresholdAt: t2.toISOString() });
    expect(await dueJob(task.id)).toMatchObject({ status: 'pending', triggerAt: t2, thresholdAt: t2 });

    // A change that is not about the threshold leaves it alone.
    const before = await dueJob(task.id);
    await api(u, 'PATCH', `${TASKS}/${task.id}`, { title: 'Renamed', priority: 3 });
    expect(await dueJob(task.id)).toEqual(before);

    await api(u, 'PATCH', `${TASKS}/${task.id}`, { status: 'done' });
    expect(await dueJob(task.id)).toMatchObject({ status: 'canceled', reason: 'task_completed', triggerAt: t2 });

    await api(u, 'PATCH', `${TASKS}/${task.id}`, { status: 'todo' });
    expect(await dueJob(task.id)).toMatchObject({ status: 'pending', triggerAt: t2 });
    expect((await dueJob(task.id))!.reason).toBeUndefined();

    await api(u, 'PATCH', `${TASKS}/${task.id}`, { urgencyThresholdAt: null });
    expect(await dueJob(task.id)).toMatchObject({ status: 'canceled', reason: 'threshold_removed' });

    const t3 = inHours(9);
    await api(u, 'PATCH', `${TASKS}/${task.id}`, { urgencyThresholdAt: t3.toISOString() });
    expect(await dueJob(task.id)).toMatchObject({ status: 'pending', triggerAt: t3 });

    await api(u, 'DELETE', `${TASKS}/${task.id}`);
    expect(await dueJob(task.id)).toMatchObject({ status: 'canceled', reason: 'task_deleted' });
    expect(await df.ctx.models.dueJobs.countDocuments({ taskId: task.id })).toBe(1);
  });

  test('no threshold or created done: no due job', async () => {
    const u = user();
    expect(await dueJob((await createTask(u)).id)).toBeNull();
    expect(await dueJob((await createTask(u, { status: 'done', urgencyThresholdAt: inHours(1).toISOString() })).id)).toBeNull();
  });

  test('moving the threshold of a job that already triggered, skipped or was canceled starts a new occurrence', async () => {
    const u = user();
    for (const [status, extra] of [
      ['triggered', { triggerId: 'trg-1' }],
      ['skipped', { reason: 'task_not_important' }],
      ['failed', { reason: 'attempts_exhausted', lastError: 'boom', attempts: 5 }],
    ] as const) {
      const task = await createTask(u, { urgencyThresholdAt: inHours(-1).toISOString() });
      await df.ctx.models.dueJobs.updateOne({ taskId: task.id }, { $set: { status, ...extra } });
      const moved = inHours(3);
      await api(u, 'PATCH', `${TASKS}/${task.id}`, { urgencyThresholdAt: moved.toISOString() });
      const job = await dueJob(task.id);
      expect([status, job]).toEqual([status, expect.objectContaining({ status: 'pending', triggerAt: moved, thresholdAt: moved, attempts: 0 })]);
      expect([job!.reason, job!.triggerId, job!.lastError]).toEqual([undefined, undefined, undefined]);
    }
  });

  test('a retrying job (triggerAt after its threshold) is not reset by an unrelated change', async () => {
    const u = user();
    const threshold = inHours(-1);
    const task = await createTask(u, { urgencyThresholdAt: threshold.toISOString() });
    const retryAt = inHours(0.5);
    await df.ctx.models.dueJobs.updateOne({ taskId: task.id }, { $set: { attempts: 2, triggerAt: retryAt, lastError: 'boom' } });
    await api(u, 'PATCH', `${TASKS}/${task.id}`, { estimatedMinutes: 30 });
    expect(await dueJob(task.id)).toMatchObject({ status: 'pending', attempts: 2, triggerAt: retryAt, thresholdAt: threshold });
  });

  test('concurrent writes of one task leave one due job', async () => {
    const u = user();
    const task = await createTask(u);
    const times = [1, 2, 3, 4].map((h) => inHours(h));
    const answers = await Promise.all(times.map((t) => api(u, 'PATCH', `${TASKS}/${task.id}`, { urgencyThresholdAt: t.toISOString() })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(await df.ctx.models.dueJobs.countDocuments({ taskId: task.id })).toBe(1);
  });
});
