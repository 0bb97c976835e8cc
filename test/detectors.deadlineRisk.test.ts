/**
 * Deadlines at risk: a todo task whose remaining estimate exceeds the free working time before its
 * deadline raises one `deadline_risk` anomaly naming the task, the deadline and the shortfall.
 * Real dueflow (all mode), real Redis and database, the Feishu-compatible server. The detector is
 * called with a chosen `now` (Mon 7 Jan 2030, 09:00 in Shanghai, the default zone; working hours
 * 08:00–22:00 by default), so the numbers are exact; the scanner's own runs use the real clock.
 */
import { asService, call } from './support/api';
import { deadlineRiskDetector, deadlineRiskFilter, deadlineShortfall } from '../src/detectors/deadlineRisk';
import { deadlineRiskText } from '../src/detectors/messages';
import { defaultWorkingHours } from '../src/workflow/freeSlots';
import { detectorTestEnv, MIN, sh, textOf, TZ } from './support/detectors';

const env = detectorTestEnv();
const { userWithBot } = env;
// Detectors look at every user: each test's tasks are put away so the next test's counts are its own.
afterEach(async () => {
  await env.df.ctx.models.tasks.updateMany({ status: 'todo' }, { $set: { status: 'done' } });
});

const DAY = 86_400_000;
const NOW = sh(9);
/** From NOW to Tue 10:00: Mon 09:00–22:00 (780 min) + Tue 08:00–10:00 (120 min) of working hours. */
const DEADLINE = sh(10, 0, 1);

const newTask = (userId: string, title: string, over: Record<string, unknown> = {}) =>
  env.df.ctx.models.tasks.create({ userId, title, priority: 2, estimatedMinutes: 60, deadline: DEADLINE, ...over });
const newBlock = (userId: string, taskId: unknown, start: Date, end: Date, status: 'planned' | 'done' | 'unfinished' = 'planned') =>
  env.df.ctx.models.scheduleBlocks.create({ userId, taskId: taskId ? String(taskId) : undefined, title: 'block', start, end, status });
const risksOf = (userId: string) => env.df.ctx.models.triggers.find({ userId, type: 'deadline_risk' }).sort({ createdAt: 1 }).lean();
const detect = (now = NOW) => deadlineRiskDetector.detect(env.df.ctx, now);

describe('the computation and the messages (pure)', () => {
  const base = { now: NOW, deadline: DEADLINE, timeZone: TZ, workingHours: defaultWorkingHours, done: [], own: [], others: [] };

  test('working hours only: 900 min before the deadline', () => {
    expect(deadlineShortfall({ ...base, estimatedMinutes: 1000 })).toEqual({ remainingMinutes: 1000, availableMinutes: 900, shortfallMinutes: 100 });
    expect(deadlineShortfall({ ...base, estimatedMinutes: 900 }).shortfallMinutes).toBe(0);
  });

  test('done blocks reduce the remaining work; own planned blocks count (outside working hours too, clipped to now and the deadline); other blocks take their time once', () => {
    const s = deadlineShortfall({
      ...base,
      estimatedMinutes: 1200,
      done: [{ start: sh(14, 0, -1), end: sh(15, 0, -1) }], // 60 min done
      own: [
        { start: sh(22, 30), end: sh(23, 30) }, // +60 outside working hours
        { start: sh(8), end: sh(9, 30) }, // already counted working time; the part before now is gone
        { start: sh(9, 30, 1), end: sh(11, 0, 1) }, // 09:30–10:00 counted, the rest is after the deadline
      ],
      others: [
        { start: sh(10), end: sh(12) }, // −120
        { start: sh(11), end: sh(11, 30) }, // inside the previous one: nothing more
        { start: sh(23), end: sh(23, 15) }, // −15 of the own evening block
      ],
    });
    expect(s).toEqual({ remainingMinutes: 1140, availableMinutes: 900 + 60 - 120 - 15, shortfallMinutes: 1140 - 825 });
  });

  test('the remaining work is never negative; seconds round against the user', () => {
    expect(deadlineShortfall({ ...base, estimatedMinutes: 30, done: [{ start: sh(8, 0, -1), end: sh(9, 0, -1) }] }).remainingMinutes).toBe(0);
    const s = deadlineShortfall({ ...base, now: new Date(NOW.getTime() + 30_000), estimatedMinutes: 900 });
    expect(s).toEqual({ remainingMinutes: 900, availableMinutes: 899, shortfallMinutes: 1 });
  });

  test('messages: zh-CN and en name the task, the deadline in the user zone and the shortfall (hours when large)', () => {
    const input = { taskTitle: 'Tax return', deadline: DEADLINE, remainingMinutes: 1140, availableMinutes: 825, shortfallMinutes: 315 };
    expect(deadlineRiskText({ ...input, language: 'zh-CN', timeZone: TZ })).toEqual({
      title: '截止风险：「Tax return」可能来不及完成',
      detail:
        '「Tax return」的截止时间是 1月8日 周二 10:00。预计还需要 1140 分钟（约 19 小时），但截止前的工作时间里只有 825 分钟（约 13.8 小时）空闲（已算上为它安排的时段），还差 315 分钟（约 5.3 小时）。\n可以推迟截止时间、缩小范围，或为它腾出时间。',
    });
    const en = deadlineRiskText({ ...input, shortfallMinutes: 45, language: 'en', timeZone: 'Europe/Berlin' });
    expect(en.title).toBe('Deadline at risk: "Tax return"');
    expect(en.detail).toBe(
      '"Tax return" is due Tue 8 Jan 03:00. It needs 1140 min (about 19 h) more, but your working hours before the deadline have only 825 min (about 13.8 h) free (counting the time planned for it): 45 min short.\nConsider moving the deadline, cutting the scope or freeing time for it.',
    );
  });

  test('the query: todo tasks with an estimate, due in (now, now + horizon]; the horizon defaults to 7 days', () => {
    expect(env.df.config.DEADLINE_RISK_HORIZON_MS).toBe(7 * DAY);
    const f = deadlineRiskFilter(NOW, 7 * DAY);
    expect(f).toEqual({ status: 'todo', deadline: { $gt: NOW, $lte: new Date(NOW.getTime() + 7 * DAY) }, estimatedMinutes: { $gt: 0 } });
  });
});

test('a task short of time: one deadline_risk with the exact shortfall; a second run fires nothing', async () => {
  const { userId } = await userWithBot();
  const task = await newTask(userId, 'Tax return', { estimatedMinutes: 1200 });
  const other = await newTask(userId, 'Other work', { deadline: sh(9, 0, 5) });
  await newBlock(userId, task._id, sh(14, 0, -1), sh(15, 0, -1), 'done'); // 60 min done
  await newBlock(userId, task._id, sh(8, 0, -1), sh(9, 0, -1), 'unfinished'); // no progress, no time
  await newBlock(userId, task._id, sh(22, 30), sh(23, 30)); // +60 outside working hours
  await newBlock(userId, other._id, sh(10), sh(12)); // −120
  await newBlock(userId, null, sh(23), sh(23, 15)); // −15 (a block without a task)
  await newBlock(userId, other._id, sh(14), sh(15), 'done'); // takes no time

  expect(await detect()).toEqual({ fired: 1 });
  const [t] = await risksOf(userId);
  expect(t).toMatchObject({ source: 'worker_due_job', target: { type: 'task', id: String(task._id) } });
  expect(t.dedupeKey).toBe(`${userId}|deadline_risk|task:${task._id}|${DEADLINE.toISOString()}`);
  expect(JSON.parse(t.detail!)).toMatchObject({
    taskId: String(task._id),
    estimatedMinutes: 1200,
    remainingMinutes: 1140,
    availableMinutes: 825,
    shortfallMinutes: 315,
  });
  expect(t.anomaly).toMatchObject({ severity: 'warning', title: '截止风险：「Tax return」可能来不及完成', occurredAt: NOW });
  expect(t.anomaly!.detail).toContain('截止时间是 1月8日 周二 10:00');
  expect(t.anomaly!.detail).toContain('还差 315 分钟（约 5.3 小时）');

  expect(await detect()).toEqual({ fired: 0 });
  expect(await risksOf(userId)).toHaveLength(1);
  await env.sentRecordOf(t._id);
  const view = await call(env.df.baseUrl, 'GET', `/api/v1/anomalies/${t._id}`, { auth: asService() });
  expect(view.body).toMatchObject({ status: 'sent', trigger: { type: 'deadline_risk' }, anomaly: { detail: t.anomaly!.detail } });
});

test('a healthy plan fires nothing: enough time, an exact fit, progress done, and tasks done, without an estimate, overdue or beyond the horizon', async () => {
  const { userId } = await userWithBot();
  await newTask(userId, 'Plenty of time', { estimatedMinutes: 600 });
  await newTask(userId, 'Exact fit', { estimatedMinutes: 900 });
  const progressed = await newTask(userId, 'Mostly done', { estimatedMinutes: 1000 });
  await newBlock(userId, progressed._id, sh(9, 0, -1), sh(12, 20, -1), 'done'); // 200 min done: 800 left
  await newTask(userId, 'Done task', { estimatedMinutes: 5000, status: 'done' });
  await newTask(userId, 'No estimate', { estimatedMinutes: undefined });
  await newTask(userId, 'Overdue', { estimatedMinutes: 5000, deadline: sh(8) });
  await newTask(userId, 'Far away', { estimatedMinutes: 50_000, deadline: sh(9, 0, 8) });
  expect(await detect()).toEqual({ fired: 0 });
  expect(await env.df.ctx.models.triggers.countDocuments({ userId })).toBe(0);

  // Within the horizon the far one is short: 6 days of 14 working hours are 5040 min.
  const near = await newTask(userId, 'Within the horizon', { estimatedMinutes: 5100, deadline: sh(9, 0, 6) });
  expect(await detect()).toEqual({ fired: 1 });
  expect(JSON.parse((await risksOf(userId))[0].detail!)).toMatchObject({ taskId: String(near._id), availableMinutes: 5040, shortfallMinutes: 60 });
});

test('fires again only when the deadline moves; a later run or a larger estimate before the same deadline is the same risk', async () => {
  const { userId } = await userWithBot();
  const task = await newTask(userId, 'Slides', { estimatedMinutes: 1000 });
  expect(await detect()).toEqual({ fired: 1 });
  expect(await detect(new Date(NOW.getTime() + 60 * MIN))).toEqual({ fired: 0 });
  await env.df.ctx.models.tasks.updateOne({ _id: task._id }, { $set: { estimatedMinutes: 1500 } });
  expect(await detect()).toEqual({ fired: 0 });

  await env.df.ctx.models.tasks.updateOne({ _id: task._id }, { $set: { deadline: sh(12, 0, 1) } }); // +120 min of working time: still short by 480
  expect(await detect()).toEqual({ fired: 1 });
  expect(await detect()).toEqual({ fired: 0 });
  const all = await risksOf(userId);
  expect(all.map((t) => t.dedupeKey)).toEqual([
    `${userId}|deadline_risk|task:${task._id}|${DEADLINE.toISOString()}`,
    `${userId}|deadline_risk|task:${task._id}|${sh(12, 0, 1).toISOString()}`,
  ]);
  expect(JSON.parse(all[1].detail!)).toMatchObject({ remainingMinutes: 1500, availableMinutes: 1020, shortfallMinutes: 480 });

  // Moved to where it fits: healthy, nothing new.
  await env.df.ctx.models.tasks.updateOne({ _id: task._id }, { $set: { deadline: sh(12, 0, 3) } });
  expect(await detect()).toEqual({ fired: 0 });
  expect(await risksOf(userId)).toHaveLength(2);
});

test('en user (Berlin): the Feishu server receives the message naming the task, its deadline and the shortfall', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'Europe/Berlin', language: 'en' });
  // Mon 09:00 Berlin; due Tue 10:00 Berlin: 780 + 120 min of working hours, 1200 needed.
  const now = new Date(Date.UTC(2030, 0, 7, 8));
  const task = await newTask(userId, 'Quarterly tax filing', { estimatedMinutes: 1200, deadline: new Date(Date.UTC(2030, 0, 8, 9)) });
  expect(await detect(now)).toEqual({ fired: 1 });
  const [t] = await risksOf(userId);
  expect(t.target.id).toBe(String(task._id));
  await env.sentRecordOf(t._id);
  const sent = env.feishu.messages.filter((m) => m.token === token).map((m) => textOf(m.body));
  expect(sent).toHaveLength(1);
  expect(sent[0]).toContain('[Warning] Deadline at risk: "Quarterly tax filing"');
  expect(sent[0]).toContain(
    '"Quarterly tax filing" is due Tue 8 Jan 10:00. It needs 1200 min (about 20 h) more, but your working hours before the deadline have only 900 min (about 15 h) free',
  );
  expect(sent[0]).toContain('300 min (about 5 h) short.');
});
