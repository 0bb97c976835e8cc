/**
 * The workflow's pure parts (free slots, candidates, message text) as unit tests, and the workflow
 * itself against the real database: preview, notification request, trigger states.
 */
import { Queue } from 'bullmq';
import { Types } from 'mongoose';
import { createRedis, waitForReady } from '../queues/connection';
import type { AppContext } from '../src/context';
import { closeContext, createContext } from '../src/context';
import { createLogger } from '../src/logger';
import { generateCandidates, observe, type PlanningContext } from '../src/workflow/candidates';
import { freeSlots, workingIntervals } from '../src/workflow/freeSlots';
import { buildMessage, formatMoment, formatSlot } from '../src/workflow/message';
import { runClaimedWorkflow, runWorkflow } from '../src/workflow/run';
import { createTrigger } from '../src/triggers/create';
import { WORKFLOW_ATTEMPTS } from '../src/triggers/enqueue';
import { triggerJobId } from '../src/triggers/schemas';
import { loadPlanningContext } from '../src/workflow/context';
import { notificationDedupeKey, triggerDedupeKey } from '../src/triggers/dedupe';
import { testConfig } from './support/env';
import { clearDatabase } from './support/harness';

const at = (iso: string) => new Date(iso);
const iso = (slots: { start: Date; end: Date }[]) => slots.map((s) => [s.start.toISOString(), s.end.toISOString()]);
const wh = (start: string, end: string) => ({ start, end });

describe('free slots', () => {
  test('a window crossing midnight (Asia/Shanghai, 08:00–22:00): the rest of today, then tomorrow until now', () => {
    // 21:00 on Thursday in Shanghai (UTC+8) → the window ends 21:00 Friday.
    const slots = freeSlots({
      from: at('2026-11-26T13:00:00Z'),
      to: at('2026-11-27T13:00:00Z'),
      timeZone: 'Asia/Shanghai',
      workingHours: wh('08:00', '22:00'),
      busy: [],
    });
    expect(iso(slots)).toEqual([
      ['2026-11-26T13:00:00.000Z', '2026-11-26T14:00:00.000Z'], // Thu 21:00–22:00
      ['2026-11-27T00:00:00.000Z', '2026-11-27T13:00:00.000Z'], // Fri 08:00–21:00
    ]);
  });

  test('blocks are cut out; a block touching a slot does not shorten it', () => {
    const busy = [
      { start: at('2026-11-27T01:00:00Z'), end: at('2026-11-27T02:00:00Z') }, // Fri 09:00–10:00
      { start: at('2026-11-27T01:30:00Z'), end: at('2026-11-27T02:30:00Z') }, // overlapping the first
      { start: at('2026-11-27T12:00:00Z'), end: at('2026-11-27T13:00:00Z') }, // 20:00–21:00, ends at the window's end
      { start: at('2026-11-26T12:00:00Z'), end: at('2026-11-26T13:00:00Z') }, // before the window, touching it
    ];
    const slots = freeSlots({
      from: at('2026-11-26T13:00:00Z'),
      to: at('2026-11-27T13:00:00Z'),
      timeZone: 'Asia/Shanghai',
      workingHours: wh('08:00', '22:00'),
      busy,
    });
    expect(iso(slots)).toEqual([
      ['2026-11-26T13:00:00.000Z', '2026-11-26T14:00:00.000Z'],
      ['2026-11-27T00:00:00.000Z', '2026-11-27T01:00:00.000Z'],
      ['2026-11-27T02:30:00.000Z', '2026-11-27T12:00:00.000Z'],
    ]);
  });

  test('a user in UTC−8 (America/Los_Angeles): working hours on their clock, not UTC', () => {
    // 02:00 PST Thursday; 09:00–17:00 PST is 17:00Z–01:00Z.
    const slots = freeSlots({
      from: at('2026-11-26T10:00:00Z'),
      to: at('2026-11-27T10:00:00Z'),
      timeZone: 'America/Los_Angeles',
      workingHours: wh('09:00', '17:00'),
      busy: [],
    });
    expect(iso(slots)).toEqual([['2026-11-26T17:00:00.000Z', '2026-11-27T01:00:00.000Z']]);
    expect(formatSlot(slots[0].start, slots[0].end, 'America/Los_Angeles', 'en')).toBe('Thu 09:00–17:00');
  });

  test('working-hours edges: starting exactly at the end gives nothing that day; a slot shorter than 15 min is dropped', () => {
    const shanghai = { timeZone: 'Asia/Shanghai', workingHours: wh('08:00', '22:00'), busy: [] };
    // exactly 22:00 → next slot is tomorrow 08:00
    expect(iso(freeSlots({ ...shanghai, from: at('2026-11-26T14:00:00Z'), to: at('2026-11-27T14:00:00Z') }))[0]).toEqual([
      '2026-11-27T00:00:00.000Z',
      '2026-11-27T14:00:00.000Z',
    ]);
    // 21:50 → ten minutes left today: not a slot
    expect(iso(freeSlots({ ...shanghai, from: at('2026-11-26T13:50:00Z'), to: at('2026-11-27T13:50:00Z') }))[0][0]).toBe('2026-11-27T00:00:00.000Z');
    // 07:59 → starts at 08:00 sharp, not before
    expect(iso(freeSlots({ ...shanghai, from: at('2026-11-25T23:59:00Z'), to: at('2026-11-26T23:59:00Z') }))).toEqual([
      ['2026-11-26T00:00:00.000Z', '2026-11-26T14:00:00.000Z'],
    ]);
  });

  test('a slot starts on a 5-minute mark', () => {
    const slots = freeSlots({
      from: at('2026-11-26T02:03:17Z'),
      to: at('2026-11-26T04:00:00Z'),
      timeZone: 'Asia/Shanghai',
      workingHours: wh('08:00', '22:00'),
      busy: [],
    });
    expect(slots[0].start.toISOString()).toBe('2026-11-26T02:05:00.000Z');
  });

  test('working hours crossing midnight (22:00–06:00), including the part that began yesterday', () => {
    const slots = workingIntervals(at('2026-11-26T18:00:00Z'), at('2026-11-27T18:00:00Z'), 'Asia/Shanghai', wh('22:00', '06:00'));
    // now is 02:00 Friday local: 02:00–06:00, then 22:00 Friday–02:00 Saturday (window end).
    expect(iso(slots)).toEqual([
      ['2026-11-26T18:00:00.000Z', '2026-11-26T22:00:00.000Z'],
      ['2026-11-27T14:00:00.000Z', '2026-11-27T18:00:00.000Z'],
    ]);
  });

  test('the same start and end means the whole day: one slot over midnight', () => {
    expect(iso(workingIntervals(at('2026-11-26T13:00:00Z'), at('2026-11-27T13:00:00Z'), 'Asia/Shanghai', wh('00:00', '00:00')))).toEqual([
      ['2026-11-26T13:00:00.000Z', '2026-11-27T13:00:00.000Z'],
    ]);
  });

  test('a DST day (Los Angeles springs forward on 2026-03-08): 01:00–04:00 local is two real hours', () => {
    const slots = workingIntervals(at('2026-03-08T00:00:00Z'), at('2026-03-09T00:00:00Z'), 'America/Los_Angeles', wh('01:00', '04:00'));
    expect(iso(slots)).toEqual([['2026-03-08T09:00:00.000Z', '2026-03-08T11:00:00.000Z']]);
  });
});

describe('message text', () => {
  const base = {
    timeZone: 'Asia/Shanghai',
    triggerType: 'important_urgent_task',
    taskTitle: 'Finish the quarterly report',
    neededMinutes: 60,
    deadline: at('2026-11-27T10:00:00Z'),
    actionUrl: 'http://dueflow.test/app/previews/abc',
  };
  const slot = { start: at('2026-11-26T06:00:00Z'), end: at('2026-11-26T07:00:00Z') }; // Thu 14:00–15:00 in Shanghai

  test('zh-CN: the task, the slot, the deadline and the link', () => {
    const m = buildMessage({ ...base, language: 'zh-CN', kind: 'add_task_to_schedule', slot });
    expect(m.title).toBe('把「Finish the quarterly report」排进日程？');
    expect(m.summary).toBe(
      '重要且紧急的任务「Finish the quarterly report」还没有排进日程。\n建议时段：周四 14:00–15:00（60 分钟）\n截止时间：11月27日 周五 18:00\n确认后会加入你的日程。',
    );
    expect(m.actionText).toBe('确认安排');
    expect(m.actionUrl).toBe('http://dueflow.test/app/previews/abc');
  });

  test('en: the same, in English', () => {
    const m = buildMessage({ ...base, language: 'en', kind: 'add_task_to_schedule', slot });
    expect(m.title).toBe('Schedule "Finish the quarterly report"?');
    expect(m.summary).toBe(
      '"Finish the quarterly report" is important and urgent but not in your schedule yet.\nSuggested slot: Thu 14:00–15:00 (60 min)\nDeadline: Fri 27 Nov 18:00\nConfirm to add it to your schedule.',
    );
    expect(m.actionText).toBe('Confirm');
  });

  test("times are written on the user's clock (Los Angeles), a slot over midnight names both days", () => {
    expect(formatSlot(at('2026-11-27T07:30:00Z'), at('2026-11-27T08:30:00Z'), 'America/Los_Angeles', 'en')).toBe('Thu 23:30–Fri 00:30');
    expect(formatSlot(at('2026-11-27T07:30:00Z'), at('2026-11-27T08:30:00Z'), 'America/Los_Angeles', 'zh-CN')).toBe('周四 23:30–周五 00:30');
    expect(formatMoment(at('2026-11-27T10:00:00Z'), 'America/Los_Angeles', 'en')).toBe('Fri 27 Nov 02:00');
  });

  test('unfinished feedback, a short slot, no deadline; and ask_user names why', () => {
    const makeup = buildMessage({
      ...base,
      language: 'zh-CN',
      kind: 'create_makeup_block',
      triggerType: 'unfinished_feedback',
      deadline: null,
      neededMinutes: 90,
      slot,
    });
    expect(makeup.title).toBe('为「Finish the quarterly report」补一段时间？');
    expect(makeup.summary).toContain('你反馈「Finish the quarterly report」没有完成');
    expect(makeup.summary).toContain('建议补做时段：周四 14:00–15:00（60 分钟）（预计需要 90 分钟，这段空闲只有 60 分钟）');
    expect(makeup.summary).toContain('截止时间：未设置');
    const ask = buildMessage({ ...base, language: 'en', kind: 'ask_user', issue: 'no_free_slot', slot: null });
    expect(ask.title).toBe('"Finish the quarterly report" needs your decision');
    expect(ask.summary).toContain('your working hours in the next 24 h have no free slot');
    expect(ask.summary).toContain('Deadline: Fri 27 Nov 18:00');
  });
});

describe('candidates and the score', () => {
  const ctxOf = (over: Partial<PlanningContext> = {}): PlanningContext => ({
    userId: 'u',
    triggerType: 'important_urgent_task',
    now: at('2026-11-26T00:00:00Z'),
    window: { start: at('2026-11-26T00:00:00Z'), end: at('2026-11-27T00:00:00Z') },
    timeZone: 'UTC',
    language: 'en',
    workingHours: wh('08:00', '22:00'),
    task: { id: 't1', title: 'Task', priority: 1, status: 'todo', deadline: at('2026-11-26T18:00:00Z'), estimatedMinutes: 60 },
    block: null,
    neededMinutes: 60,
    blocks: [],
    freeSlots: [],
    ...over,
  });

  test('the earliest slot that fits before the deadline wins; the estimate sizes it', () => {
    const c = ctxOf({
      freeSlots: [
        { start: at('2026-11-26T08:00:00Z'), end: at('2026-11-26T08:30:00Z') },
        { start: at('2026-11-26T10:00:00Z'), end: at('2026-11-26T14:00:00Z') },
        { start: at('2026-11-26T15:00:00Z'), end: at('2026-11-26T20:00:00Z') },
      ],
    });
    const issues = observe(c);
    expect(issues).toEqual(['can_place']);
    const cands = generateCandidates(c, issues);
    expect(cands.map((x) => [x.kind, x.start?.toISOString()])).toEqual([
      ['add_task_to_schedule', '2026-11-26T10:00:00.000Z'],
      ['add_task_to_schedule', '2026-11-26T15:00:00.000Z'],
      ['notify_only', undefined],
    ]);
    expect(cands[0].end!.toISOString()).toBe('2026-11-26T11:00:00.000Z');
    expect(cands[0].score).toBe(90);
  });

  test('no free slot: ask the user (then notify)', () => {
    const c = ctxOf();
    const issues = observe(c);
    expect(issues).toEqual(['no_free_slot', 'no_slot_before_deadline']);
    expect(generateCandidates(c, issues).map((x) => x.kind)).toEqual(['ask_user', 'notify_only']);
  });

  test('not enough capacity: the longest short slot, capped by it, still beats asking when it comes soon', () => {
    const c = ctxOf({ neededMinutes: 120, freeSlots: [{ start: at('2026-11-26T08:00:00Z'), end: at('2026-11-26T08:45:00Z') }] });
    const issues = observe(c);
    expect(issues).toEqual(['not_enough_capacity']);
    const cands = generateCandidates(c, issues);
    expect(cands.map((x) => x.kind)).toEqual(['add_task_to_schedule', 'ask_user', 'notify_only']);
    expect(cands[0].end!.toISOString()).toBe('2026-11-26T08:45:00.000Z');
  });

  test('unfinished feedback proposes a make-up block', () => {
    const c = ctxOf({ triggerType: 'unfinished_feedback', freeSlots: [{ start: at('2026-11-26T09:00:00Z'), end: at('2026-11-26T12:00:00Z') }] });
    const issues = observe(c);
    expect(issues).toEqual(['can_place', 'needs_makeup_block']);
    expect(generateCandidates(c, issues)[0]).toMatchObject({ kind: 'create_makeup_block', taskId: 't1' });
  });
});

test('dedupe keys name the target, and the window of a due job is its triggerAt', () => {
  const base = { userId: 'u1', type: 'important_urgent_task', source: 'api_trigger' };
  const a = triggerDedupeKey({ ...base, target: { type: 'task', id: 'A' }, at: at('2026-11-26T10:05:00Z') });
  const b = triggerDedupeKey({ ...base, target: { type: 'task', id: 'B' }, at: at('2026-11-26T10:05:00Z') });
  expect(a).not.toBe(b);
  expect(a).toBe(triggerDedupeKey({ ...base, target: { type: 'task', id: 'A' }, at: at('2026-11-26T10:29:59Z') }));
  expect(a).not.toBe(triggerDedupeKey({ ...base, target: { type: 'task', id: 'A' }, at: at('2026-11-26T10:30:00Z') }));
  expect(triggerDedupeKey({ ...base, source: 'worker_due_job', target: { type: 'task', id: 'A' }, at: at('2026-11-26T10:05:07Z') })).toBe(
    'u1|important_urgent_task|task:A|2026-11-26T10:05:07.000Z',
  );
  expect(notificationDedupeKey('x'.repeat(300)).length).toBeLessThanOrEqual(256);
});

describe('the workflow on the real database', () => {
  let ctx: AppContext;
  beforeAll(async () => {
    ctx = await createContext(testConfig({ PUBLIC_BASE_URL: 'https://dueflow.example/' }), createLogger('silent'));
  });
  afterAll(async () => {
    await Promise.all(Object.values(ctx.queues).map((q) => q.obliterate({ force: true })));
    await clearDatabase(ctx.mongo);
    await closeContext(ctx);
  });

  const userId = () => `u-${new Types.ObjectId()}`;
  const newTrigger = async (uid: string, taskId: string, over: Record<string, unknown> = {}) =>
    ctx.models.triggers.create({
      userId: uid,
      type: 'important_urgent_task',
      source: 'api_trigger',
      target: { type: 'task', id: taskId },
      dedupeKey: `k-${new Types.ObjectId()}`,
      status: 'pending',
      ...over,
    });

  test('a trigger becomes a preview with a concrete message, a notification request, and preview_generated', async () => {
    const uid = userId();
    await ctx.models.userSettings.create({ userId: uid, timeZone: 'America/Los_Angeles', language: 'en' });
    const now = at('2026-11-26T17:00:00Z'); // 09:00 PST
    const task = await ctx.models.tasks.create({
      userId: uid,
      title: 'Write the release notes',
      priority: 1,
      deadline: at('2026-11-27T01:00:00Z'),
      estimatedMinutes: 45,
    });
    await ctx.models.scheduleBlocks.create({ userId: uid, title: 'Standup', start: now, end: at('2026-11-26T17:30:00Z') });
    const trigger = await newTrigger(uid, String(task._id));

    const outcome = await runWorkflow(ctx, String(trigger._id), { now });
    expect(outcome.status).toBe('preview_generated');
    const t = await ctx.models.triggers.findById(trigger._id).lean();
    expect(t).toMatchObject({ status: 'preview_generated', attempts: 1 });
    const preview = await ctx.models.previews.findById(t!.previewId).lean();
    expect(preview!.candidate).toMatchObject({ kind: 'add_task_to_schedule', start: at('2026-11-26T17:30:00Z'), end: at('2026-11-26T18:15:00Z') });
    expect(preview!.expiresAt.getTime() - now.getTime()).toBe(3_600_000);
    const record = await ctx.models.notificationRecords.findById(t!.notificationId).lean();
    expect(record).toMatchObject({ triggerId: String(trigger._id), previewId: String(preview!._id), triggerType: 'important_urgent_task' });
    // Default working hours (08:00–22:00) on the user's clock; the standup takes 09:00–09:30.
    expect(record!.message.summary).toBe(
      '"Write the release notes" is important and urgent but not in your schedule yet.\nSuggested slot: Thu 09:30–10:15 (45 min)\nDeadline: Thu 26 Nov 17:00\nConfirm to add it to your schedule.',
    );
    expect(record!.message.actionUrl).toBe(`https://dueflow.example/app/previews/${preview!._id}`);
    expect(record!.dedupeKey).toBe(notificationDedupeKey(trigger.dedupeKey));

    // Running it again changes nothing: the trigger is no longer claimable.
    expect(await runWorkflow(ctx, String(trigger._id), { now })).toEqual({ status: 'not_claimed', current: 'preview_generated' });
    expect(await ctx.models.previews.countDocuments({ triggerId: String(trigger._id) })).toBe(1);
  });

  test('runs racing over one trigger: one claims it, one preview, one notification (FerretDB needs the guard lock for this)', async () => {
    const uid = userId();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Raced', priority: 1 });
    const trigger = await newTrigger(uid, String(task._id));
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => runWorkflow(ctx, String(trigger._id))));
    expect(outcomes.filter((o) => o.status === 'preview_generated')).toHaveLength(1);
    expect(await ctx.models.previews.countDocuments({ triggerId: String(trigger._id) })).toBe(1);
    expect(await ctx.models.notificationRecords.countDocuments({ triggerId: String(trigger._id) })).toBe(1);
    expect((await ctx.models.triggers.findById(trigger._id).lean())!.attempts).toBe(1);
  });

  test('a completed task closes the trigger with a reason, and nothing is requested', async () => {
    const uid = userId();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Done already', priority: 1, status: 'done' });
    const trigger = await newTrigger(uid, String(task._id));
    expect(await runWorkflow(ctx, String(trigger._id))).toEqual({ status: 'closed', reason: 'task_completed' });
    expect(await ctx.models.notificationRecords.countDocuments({ userId: uid })).toBe(0);
    expect(await ctx.models.previews.countDocuments({ userId: uid })).toBe(0);
  });

  test('a trigger held by a live run is not taken; one whose lease ran out is, and a half-done preview is reused', async () => {
    const uid = userId();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Lease', priority: 1 });
    const held = await newTrigger(uid, String(task._id), { status: 'processing', processingSince: new Date() });
    const busy = await runWorkflow(ctx, String(held._id));
    expect(busy).toMatchObject({ status: 'not_claimed', current: 'processing' });
    expect((busy as { leaseEndsAt?: Date }).leaseEndsAt).toBeInstanceOf(Date);

    const stale = await newTrigger(uid, String(task._id), { status: 'processing', processingSince: new Date(Date.now() - 120_000) });
    // The run that died had written its preview already.
    const p = await ctx.models.previews.create({
      userId: uid,
      triggerId: String(stale._id),
      triggerType: 'important_urgent_task',
      candidate: { kind: 'notify_only', taskId: String(task._id), title: 'Lease' },
      summaryText: 'earlier text',
      message: { title: 'Earlier', summary: 'earlier text', actionUrl: 'https://dueflow.example/app/previews/x' },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const taken = await runWorkflow(ctx, String(stale._id));
    expect(taken).toMatchObject({ status: 'preview_generated', previewId: String(p._id) });
    expect((await ctx.models.notificationRecords.findOne({ triggerId: String(stale._id) }).lean())!.message.summary).toBe('earlier text');
  });

  test('an error hands the trigger back (pending) for the retry, and on the last attempt marks it failed', async () => {
    const uid = userId();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Redis is away', priority: 1 });
    // A real producer connection that is gone: requesting the notification fails as it would in production.
    const gone = createRedis(ctx.config, 'producer');
    await waitForReady(gone);
    const queue = new Queue('notifications', { connection: gone, prefix: ctx.config.QUEUE_PREFIX });
    queue.on('error', () => undefined);
    gone.disconnect();
    const broken = { ...ctx, queues: { ...ctx.queues, notifications: queue } };

    const trigger = await newTrigger(uid, String(task._id));
    await expect(runWorkflow(broken, String(trigger._id))).rejects.toThrow();
    expect(await ctx.models.triggers.findById(trigger._id).lean()).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.any(String) });
    await expect(runWorkflow(broken, String(trigger._id), { finalAttempt: true })).rejects.toThrow();
    expect(await ctx.models.triggers.findById(trigger._id).lean()).toMatchObject({ status: 'failed', reason: 'workflow_failed', attempts: 2 });
    await queue.close().catch(() => undefined);

    // Unsupported targets close rather than fail.
    expect(await runWorkflow(ctx, String((await newTrigger(uid, 'x', { target: { type: 'calendar', id: 'c1' } }))._id))).toEqual({
      status: 'closed',
      reason: 'unsupported_target',
    });
  });

  test('a trigger inserted claimed by its creator (a fired due job) has no job, runs at once with what was read; an error gives it a job with the attempts left', async () => {
    const uid = userId();
    const now = new Date();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Fired', priority: 1, estimatedMinutes: 30 });
    const input = {
      userId: uid,
      type: 'important_urgent_task',
      source: 'worker_due_job' as const,
      target: { type: 'task', id: String(task._id) },
      at: now,
      dueJobId: String(new Types.ObjectId()),
      claimedAt: now,
    };
    const { trigger, created } = await createTrigger(ctx, input);
    expect(created).toBe(true);
    expect(trigger).toMatchObject({ status: 'processing', processingSince: now, attempts: 1 });
    const queue = ctx.queues['active-schedule-triggered'];
    expect(await queue.getJob(triggerJobId(String(trigger._id)))).toBeUndefined();
    // Created again (a repeat of the firing): the same trigger, not claimed by this caller, still no job.
    expect(await createTrigger(ctx, input)).toMatchObject({ created: false, trigger: { _id: trigger._id, status: 'processing' } });
    expect(await queue.getJob(triggerJobId(String(trigger._id)))).toBeUndefined();

    const planning = { now, task: task.toObject(), blocks: [] };
    const outcome = await runClaimedWorkflow(ctx, trigger, planning);
    expect(outcome.status).toBe('preview_generated');
    expect(await ctx.models.triggers.findById(trigger._id).lean()).toMatchObject({ status: 'preview_generated', attempts: 1 });
    expect(await ctx.models.previews.countDocuments({ triggerId: String(trigger._id) })).toBe(1);

    // The notifications queue is unreachable: the run fails, the trigger is pending again, and its job takes the retries.
    const gone = createRedis(ctx.config, 'producer');
    await waitForReady(gone);
    const notifications = new Queue('notifications', { connection: gone, prefix: ctx.config.QUEUE_PREFIX });
    notifications.on('error', () => undefined);
    gone.disconnect();
    const other = await createTrigger(ctx, { ...input, at: new Date(now.getTime() + 60_000) });
    await expect(runClaimedWorkflow({ ...ctx, queues: { ...ctx.queues, notifications } }, other.trigger, planning)).rejects.toThrow();
    await notifications.close().catch(() => undefined);
    expect(await ctx.models.triggers.findById(other.trigger._id).lean()).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.any(String) });
    const retry = (await queue.getJob(triggerJobId(String(other.trigger._id))))!;
    expect(retry.opts.attempts).toBe(WORKFLOW_ATTEMPTS - 1);
    expect(await retry.getState()).toBe('delayed');
    await retry.remove();
  });

  test('loadPlanningContext reads the unfinished block of a feedback trigger and sizes the make-up by it', async () => {
    const uid = userId();
    const now = new Date();
    const task = await ctx.models.tasks.create({ userId: uid, title: 'Read chapter 3', priority: 2, estimatedMinutes: 120 });
    const block = await ctx.models.scheduleBlocks.create({
      userId: uid,
      taskId: String(task._id),
      title: 'Read chapter 3',
      start: new Date(now.getTime() - 2 * 3600_000),
      end: new Date(now.getTime() - 3600_000 - 30 * 60_000),
      status: 'unfinished',
    });
    const r = await loadPlanningContext(ctx, {
      userId: uid,
      triggerType: 'unfinished_feedback',
      target: { type: 'schedule_block', id: String(block._id) },
      now,
    });
    expect(r.closeReason).toBeNull();
    expect(r.context!.neededMinutes).toBe(30);
    expect(r.context!.task.id).toBe(String(task._id));
    const other = await loadPlanningContext(ctx, {
      userId: 'someone-else',
      triggerType: 'unfinished_feedback',
      target: { type: 'schedule_block', id: String(block._id) },
      now,
    });
    expect(other.closeReason).toBe('block_not_found');
  });
});
