/**
 * Detectors: the missed-block detector raises one `missed_block` trigger per missed block end
 * (a planned block whose end passed more than MISSED_BLOCK_GRACE_MS ago), which the workflow turns
 * into a make-up preview and one message naming the block. Real dueflow (all mode), real Redis and
 * database, the Feishu-compatible server. The scanner's own runs are pushed an hour apart so the
 * test's direct calls are the only ones.
 */
import { waitFor } from './support/env';
import { missedBlockDetector, missedBlockFilter } from '../src/detectors/missedBlock';
import { runDetectors } from '../src/detectors';
import { formatSlot } from '../src/workflow/message';
import { plan } from '../src/workflow/plan';
import { queueNames } from '../queues/names';
import { scanJobName } from '../queues/schedulers';
import { detectorTestEnv, MIN } from './support/detectors';

const env = detectorTestEnv();
const { userWithBot } = env;

const newTask = (userId: string, title: string) =>
  env.df.ctx.models.tasks.create({ userId, title, priority: 1, estimatedMinutes: 30, deadline: new Date(Date.now() + 20 * 3600_000) });
const newBlock = async (userId: string, title: string, endedMinutesAgo: number, over: Record<string, unknown> = {}) => {
  const task = await newTask(userId, title);
  const end = new Date(Date.now() - endedMinutesAgo * MIN);
  return env.df.ctx.models.scheduleBlocks.create({
    userId,
    taskId: String(task._id),
    title,
    start: new Date(end.getTime() - 45 * MIN),
    end,
    status: 'planned',
    ...over,
  });
};
const triggersOf = (blockId: unknown) =>
  env.df.ctx.models.triggers
    .find({ type: 'missed_block', 'target.type': 'schedule_block', 'target.id': String(blockId) })
    .sort({ createdAt: 1 })
    .lean();
const detect = () => missedBlockDetector.detect(env.df.ctx, new Date());
const settled = (id: unknown) =>
  waitFor(
    async () => {
      const t = await env.df.ctx.models.triggers.findById(id).lean();
      return t && !['pending', 'processing'].includes(t.status) ? t : undefined;
    },
    20_000,
    `trigger ${id} to settle`,
  );
const sentRecord = (id: string) =>
  waitFor(
    async () => {
      const r = await env.df.ctx.models.notificationRecords.findById(id).lean();
      return r && r.status !== 'pending' && r.status !== 'sending' ? r : undefined;
    },
    20_000,
    `record ${id} to be sent`,
  );
const messagesTo = (token: string) => env.feishu.messages.filter((m) => m.token === token);

test('a planned block that ended 20 min ago: one missed_block trigger, a make-up preview, one message naming the block; a second run fires nothing', async () => {
  const { userId, token } = await userWithBot();
  const block = await newBlock(userId, 'Write the quarterly report', 20);

  await detect();
  const [t] = await triggersOf(block._id);
  expect(t).toMatchObject({ userId, type: 'missed_block', source: 'worker_due_job', target: { type: 'schedule_block', id: String(block._id) } });
  expect(t.dedupeKey).toBe(`${userId}|missed_block|schedule_block:${block._id}|${block.end.toISOString()}`);

  const done = await settled(t._id);
  expect(done.status).toBe('preview_generated');
  const preview = await env.df.ctx.models.previews.findById(done.previewId).lean();
  expect(preview!.candidate.kind).toBe('create_makeup_block');
  expect(preview!.candidate.end!.getTime() - preview!.candidate.start!.getTime()).toBe(45 * MIN); // sized by the block
  expect((await sentRecord(done.notificationId!)).status).toBe('sent');
  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  const text = JSON.stringify(sent[0].body);
  const when = formatSlot(block.start, block.end, preview!.timeZone!, 'zh-CN');
  expect(text).toContain(`计划在 ${when} 的「Write the quarterly report」已经结束，但还没有标记完成`);
  expect(text).toContain('要重新安排「Write the quarterly report」吗？');

  // Again (as the next scan would): nothing new, no second message.
  expect(await detect()).toEqual({ fired: 0 });
  expect(await triggersOf(block._id)).toHaveLength(1);
  await new Promise((r) => setTimeout(r, 300));
  expect(messagesTo(token)).toHaveLength(1);
});

test('nothing fires for a block inside the grace, a done block, an unfinished one, a block without a task, or a healthy plan', async () => {
  const { userId } = await userWithBot();
  const inGrace = await newBlock(userId, 'Just ended', 5);
  const done = await newBlock(userId, 'Done already', 20, { status: 'done' });
  const unfinished = await newBlock(userId, 'Reported unfinished', 20, { status: 'unfinished' });
  const noTask = await newBlock(userId, 'No task', 20, { taskId: undefined });
  const future = await newBlock(userId, 'Tomorrow', -20 * 60);
  const running = await newBlock(userId, 'Running now', -10);
  const tooOld = await newBlock(userId, 'Two days ago', 48 * 60);
  await detect();
  for (const b of [inGrace, done, unfinished, noTask, future, running, tooOld]) expect(await triggersOf(b._id)).toHaveLength(0);
  expect(await env.df.ctx.models.triggers.countDocuments({ userId })).toBe(0);
});

test('moving the missed block (a new end) is a new anomaly: it fires again, once; the message is in the user language', async () => {
  const { userId, token } = await userWithBot({ timeZone: 'Europe/Berlin', language: 'en' });
  const block = await newBlock(userId, 'Gym session', 30);
  await detect();
  const [first] = await triggersOf(block._id);
  expect(first).toBeDefined();
  const firstDone = await settled(first._id);
  expect(firstDone.status).toBe('preview_generated');

  const end = new Date(Date.now() - 20 * MIN);
  await env.df.ctx.models.scheduleBlocks.updateOne({ _id: block._id }, { $set: { start: new Date(end.getTime() - 30 * MIN), end } });
  expect(await detect()).toEqual({ fired: 1 });
  expect(await detect()).toEqual({ fired: 0 });
  const all = await triggersOf(block._id);
  expect(all).toHaveLength(2);
  expect(all[1].dedupeKey).toBe(`${userId}|missed_block|schedule_block:${block._id}|${end.toISOString()}`);
  const second = await settled(all[1]._id);
  expect(second.status).toBe('preview_generated');
  await sentRecord(second.notificationId!);
  await sentRecord(firstDone.notificationId!);
  const sent = messagesTo(token).map((m) => JSON.stringify(m.body));
  expect(sent).toHaveLength(2);
  const when = formatSlot(new Date(end.getTime() - 30 * MIN), end, 'Europe/Berlin', 'en');
  expect(
    sent.some(
      (s) =>
        s.includes(`\\"Gym session\\", planned for ${when}, has ended but is not marked done`) ||
        s.includes(`"Gym session", planned for ${when}, has ended but is not marked done`),
    ),
  ).toBe(true);
  expect(sent.some((s) => s.includes('Reschedule'))).toBe(true);
});

test('a missed_block trigger whose block was since marked done, or moved, is closed by the planner (no message)', async () => {
  const { userId } = await userWithBot();
  const block = await newBlock(userId, 'Call the bank', 20);
  const input = { userId, triggerType: 'missed_block' as const, target: { type: 'schedule_block', id: String(block._id) }, now: new Date() };
  const ok = await plan(env.df.ctx, { ...input, detail: { end: block.end.toISOString() } });
  expect(ok.closeReason).toBeNull();
  expect(ok.chosen?.kind).toBe('create_makeup_block');
  expect(ok.issues).toContain('needs_makeup_block');
  expect((await plan(env.df.ctx, { ...input, detail: { end: new Date(block.end.getTime() - MIN).toISOString() } })).closeReason).toBe('block_moved');
  await env.df.ctx.models.scheduleBlocks.updateOne({ _id: block._id }, { $set: { status: 'done' } });
  expect((await plan(env.df.ctx, { ...input, detail: { end: block.end.toISOString() } })).closeReason).toBe('block_not_missed');
});

test('runDetectors reports each detector by name, and the query is the {status, end} range', async () => {
  const now = new Date();
  const r = await runDetectors(env.df.ctx, now);
  expect(r.failed).toEqual([]);
  expect(typeof r.fired.missed_block).toBe('number');
  const f = missedBlockFilter(now, env.df.config.MISSED_BLOCK_GRACE_MS);
  expect(f.status).toBe('planned');
  expect(now.getTime() - f.end.$lte.getTime()).toBe(15 * MIN);
  expect(f.end.$lte.getTime() - f.end.$gte.getTime()).toBe(24 * 3600_000);
  const failing = await runDetectors(env.df.ctx, now, [
    {
      name: 'broken',
      detect: async () => {
        throw new Error('boom');
      },
    },
    { name: 'ok', detect: async () => ({ fired: 0 }) },
  ]);
  expect(failing).toEqual({ fired: { ok: 0 }, failed: ['broken'] });
});

test('the scanner job runs the detectors after the due-job scan and reports their counts', async () => {
  const { userId } = await userWithBot();
  const block = await newBlock(userId, 'Missed by the scanner', 25);
  const job = await env.df.ctx.queues[queueNames.scanner].add(scanJobName, { v: 1 });
  const done = await waitFor(
    async () => {
      const j = await env.df.ctx.queues[queueNames.scanner].getJob(job.id!);
      return j?.finishedOn ? j : undefined;
    },
    20_000,
    'the scan job',
  );
  expect(done.returnvalue).toMatchObject({ claimed: expect.any(Number), detectors: { fired: { missed_block: expect.any(Number) }, failed: [] } });
  expect(done.returnvalue.detectors.fired.missed_block).toBeGreaterThanOrEqual(1);
  expect(await triggersOf(block._id)).toHaveLength(1);
});

test("each user's own grace: 5 min for one, 60 min for another, the default for the rest", async () => {
  const quick = await userWithBot({ timeZone: 'Asia/Shanghai', missedBlockGraceMinutes: 5 });
  const patient = await userWithBot({ timeZone: 'Asia/Shanghai', missedBlockGraceMinutes: 60 });
  const usual = await userWithBot();
  const quickBlock = await newBlock(quick.userId, 'Quick one', 10);
  const patientBlock = await newBlock(patient.userId, 'Patient one', 30);
  const usualBlock = await newBlock(usual.userId, 'Usual one', 10);

  await detect();
  expect(await triggersOf(quickBlock._id)).toHaveLength(1); // 10 min > 5 min
  expect(await triggersOf(patientBlock._id)).toHaveLength(0); // 30 min < 60 min
  expect(await triggersOf(usualBlock._id)).toHaveLength(0); // 10 min < the default 15

  // An hour later (as the scanner would see it) both others are past their grace.
  await missedBlockDetector.detect(env.df.ctx, new Date(Date.now() + 61 * MIN));
  expect(await triggersOf(patientBlock._id)).toHaveLength(1);
  expect(await triggersOf(usualBlock._id)).toHaveLength(1);
  const [t] = await triggersOf(patientBlock._id);
  expect(JSON.parse(t.detail!)).toMatchObject({ graceMs: 60 * MIN });
});
