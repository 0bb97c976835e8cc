/**
 * Schedule conflicts: two planned blocks of a user overlapping within the coming 24 h raise one
 * `schedule_conflict` anomaly naming both blocks and suggesting a free slot for the later one.
 * Real dueflow (all mode), real Redis and database, the Feishu-compatible server. The detector is
 * called with a chosen `now` (Mon 7 Jan 2030, 09:00 in Shanghai, the default zone), so working
 * hours and weekdays are fixed; the scanner's own runs use the real clock and are an hour apart.
 */
import { waitFor } from './support/env';
import { asService, call } from './support/api';
import { conflictBlocksFilter, findConflicts, scheduleConflictDetector } from '../src/detectors/scheduleConflict';
import { formatDuration, scheduleConflictText } from '../src/detectors/messages';
import { formatSlot } from '../src/workflow/message';
import { queueNames } from '../queues/names';
import { scanJobName } from '../queues/schedulers';
import { detectorTestEnv, MIN, sh, textOf, TZ } from './support/detectors';

const env = detectorTestEnv();
const { userWithBot } = env;
// Detectors look at every user: each test's blocks are put away so the next test's counts are its own.
afterEach(async () => {
  await env.df.ctx.models.scheduleBlocks.updateMany({ status: 'planned' }, { $set: { status: 'done' } });
});

const HOUR = 3_600_000;
const NOW = sh(9);

const newBlock = (userId: string, title: string, start: Date, end: Date, status: 'planned' | 'done' | 'unfinished' = 'planned') =>
  env.df.ctx.models.scheduleBlocks.create({ userId, title, start, end, status });
const conflictsOf = (userId: string) => env.df.ctx.models.triggers.find({ userId, type: 'schedule_conflict' }).sort({ createdAt: 1 }).lean();
const detect = (now = NOW) => scheduleConflictDetector.detect(env.df.ctx, now);
const pairId = (a: { _id: unknown }, b: { _id: unknown }) => [String(a._id), String(b._id)].sort().join('+');
const messagesTo = (token: string) => env.feishu.messages.filter((m) => m.token === token).map((m) => textOf(m.body));

describe('messages (pure)', () => {
  const first = { title: 'Team meeting', start: sh(10), end: sh(11) };
  const second = { title: 'Dentist', start: sh(10, 30), end: sh(11, 30) };
  const overlap = { start: sh(10, 30), end: sh(11) };

  test('zh-CN names both blocks with their times, the overlap and the suggested slot', () => {
    const t = scheduleConflictText({ language: 'zh-CN', timeZone: TZ, first, second, overlap, move: 'second', suggestion: { start: sh(14), end: sh(15) } });
    expect(t.title).toBe('日程冲突：「Team meeting」与「Dentist」时间重叠');
    expect(t.detail).toBe(
      '「Team meeting」（周一 10:00–11:00）和「Dentist」（周一 10:30–11:30）重叠了 30 分钟。\n建议把「Dentist」改到 周一 14:00–15:00（接下来 24 小时工作时间里最早能放下它的空闲时段）。',
    );
  });

  test('en, in another time zone, without a free slot', () => {
    const t = scheduleConflictText({ language: 'en', timeZone: 'Europe/Berlin', first, second, overlap, move: 'second', suggestion: null });
    expect(t.title).toBe('Schedule conflict: "Team meeting" and "Dentist" overlap');
    expect(t.detail).toBe(
      '"Team meeting" (Mon 03:00–04:00) and "Dentist" (Mon 03:30–04:30) overlap by 30 min.\nNo free slot in your working hours in the next 24 h fits "Dentist" (60 min); please move one of them yourself.',
    );
  });

  test('long titles are clipped; long durations also in hours', () => {
    const t = scheduleConflictText({
      language: 'en',
      timeZone: TZ,
      first: { ...first, title: 'x'.repeat(300) },
      second,
      overlap,
      move: 'first',
      suggestion: null,
    });
    expect(t.title.length).toBeLessThan(120);
    expect(t.detail).toContain(`"${'x'.repeat(79)}…" (60 min)`);
    expect(formatDuration(119, 'en')).toBe('119 min');
    expect(formatDuration(150, 'en')).toBe('150 min (about 2.5 h)');
    expect(formatDuration(180, 'zh-CN')).toBe('180 分钟（约 3 小时）');
  });

  test('findConflicts: pairs whose overlap touches [now, now + 24 h), the later (or shorter) block second', () => {
    const b = (id: string, userId: string, start: Date, end: Date) => ({ _id: id as never, userId, title: id, start, end });
    const found = findConflicts(
      [
        b('a', 'u1', sh(10), sh(11)),
        b('b', 'u1', sh(10, 30), sh(11, 30)), // overlap 10:30–11:00
        b('c', 'u1', sh(12), sh(13)),
        b('d', 'u1', sh(13), sh(14)), // back to back: none
        b('e', 'u1', sh(7), sh(8, 30)),
        b('f', 'u1', sh(8), sh(8, 45)), // overlap ended before now
        b('g', 'u2', sh(15), sh(15, 30)),
        b('h', 'u2', sh(15), sh(17)), // same start: the shorter is moved
        b('i', 'u1', sh(8, 30, 1), sh(10, 0, 1)),
        b('j', 'u1', sh(9, 0, 1), sh(9, 30, 1)), // overlap starts at now + 24 h: outside
        b('k', 'u3', sh(8), sh(9, 30)),
        b('l', 'u3', sh(8, 30), sh(10)), // running now, overlap began before now
      ],
      NOW,
    );
    expect(found.map((c) => `${c.userId}:${c.first._id}/${c.second._id}@${(c.overlap.start.getTime() - NOW.getTime()) / MIN}`)).toEqual([
      'u3:k/l@-30',
      'u1:a/b@90',
      'u2:h/g@360',
    ]);
    const f = conflictBlocksFilter(NOW);
    expect(f.start.$lt.getTime() - NOW.getTime()).toBe(24 * HOUR);
    expect(f.end.$lte.getTime() - NOW.getTime()).toBe(8 * 24 * HOUR);
  });
});

test('two overlapping blocks: one schedule_conflict naming both, a suggested free slot for the later one; a second run fires nothing', async () => {
  const { userId } = await userWithBot();
  const a = await newBlock(userId, 'Team meeting', sh(10), sh(11));
  const b = await newBlock(userId, 'Dentist', sh(10, 30), sh(11, 30));
  await newBlock(userId, 'Lunch', sh(12), sh(13));
  await newBlock(userId, 'Early call', sh(9), sh(9, 30)); // 09:30–10:00 is too short for the hour: first fit is 11:00

  expect(await detect()).toEqual({ fired: 1 });
  const [t] = await conflictsOf(userId);
  expect(t).toMatchObject({ source: 'worker_due_job', target: { type: 'schedule_block', id: pairId(a, b) } });
  expect(t.dedupeKey).toBe(`${userId}|schedule_conflict|schedule_block:${pairId(a, b)}|${sh(10, 30).toISOString()}`);
  expect(t.anomaly).toMatchObject({ severity: 'warning', title: '日程冲突：「Team meeting」与「Dentist」时间重叠', occurredAt: sh(10, 30) });
  expect(t.anomaly!.detail).toContain('「Team meeting」（周一 10:00–11:00）和「Dentist」（周一 10:30–11:30）重叠了 30 分钟');
  expect(t.anomaly!.detail).toContain('建议把「Dentist」改到 周一 11:00–12:00');
  const detail = JSON.parse(t.detail!);
  expect(detail).toMatchObject({
    moveBlockId: String(b._id),
    overlapEnd: sh(11).toISOString(),
    suggestion: { start: sh(11).toISOString(), end: sh(12).toISOString() },
  });

  expect(await detect()).toEqual({ fired: 0 });
  expect(await detect(new Date(NOW.getTime() + 30 * MIN))).toEqual({ fired: 0 });
  expect(await conflictsOf(userId)).toHaveLength(1);
  // The workflow sends it as an anomaly: no preview, visible through the anomalies API.
  await env.sentRecordOf(t._id);
  const view = await call(env.df.baseUrl, 'GET', `/api/v1/anomalies/${t._id}`, { auth: asService() });
  expect(view.status).toBe(200);
  expect(view.body).toMatchObject({ status: 'sent', anomaly: { title: t.anomaly!.title, detail: t.anomaly!.detail } });
  expect((await env.df.ctx.models.triggers.findById(t._id).lean())!.previewId).toBeUndefined();
});

test('a healthy plan fires nothing: back to back, overlaps outside the 24 h, done blocks, another user, an overlap already over', async () => {
  const { userId } = await userWithBot();
  const other = await userWithBot();
  await newBlock(userId, 'Back', sh(10), sh(11));
  await newBlock(userId, 'To back', sh(11), sh(12));
  await newBlock(userId, 'Day after', sh(10, 0, 2), sh(11, 0, 2));
  await newBlock(userId, 'Day after too', sh(10, 30, 2), sh(11, 30, 2));
  await newBlock(userId, 'Done already', sh(14), sh(15), 'done');
  await newBlock(userId, 'Planned', sh(14, 30), sh(15, 30));
  await newBlock(other.userId, 'Someone else', sh(11, 30), sh(12, 30));
  await newBlock(userId, 'Early', sh(7), sh(8, 30));
  await newBlock(userId, 'Earlier', sh(8), sh(8, 45));
  expect(await detect()).toEqual({ fired: 0 });
  expect(await env.df.ctx.models.triggers.countDocuments({ userId: { $in: [userId, other.userId] } })).toBe(0);
});

test('moving a block to a new overlap fires again, once; a change keeping the overlap start does not', async () => {
  const { userId } = await userWithBot();
  const a = await newBlock(userId, 'Write report', sh(10), sh(11));
  const b = await newBlock(userId, 'Call supplier', sh(10, 30), sh(11, 30));
  expect(await detect()).toEqual({ fired: 1 });

  // The earlier block stretched: still the conflict starting 10:30, already told.
  await env.df.ctx.models.scheduleBlocks.updateOne({ _id: a._id }, { $set: { end: sh(11, 15) } });
  expect(await detect()).toEqual({ fired: 0 });

  await env.df.ctx.models.scheduleBlocks.updateOne({ _id: b._id }, { $set: { start: sh(10, 45), end: sh(11, 45) } });
  expect(await detect()).toEqual({ fired: 1 });
  expect(await detect()).toEqual({ fired: 0 });
  const all = await conflictsOf(userId);
  expect(all.map((t) => t.dedupeKey)).toEqual([
    `${userId}|schedule_conflict|schedule_block:${pairId(a, b)}|${sh(10, 30).toISOString()}`,
    `${userId}|schedule_conflict|schedule_block:${pairId(a, b)}|${sh(10, 45).toISOString()}`,
  ]);
  expect(all[1].anomaly!.detail).toContain('「Write report」（周一 10:00–11:15）和「Call supplier」（周一 10:45–11:45）重叠了 30 分钟');

  // Moved apart: healthy again, nothing new.
  await env.df.ctx.models.scheduleBlocks.updateOne({ _id: b._id }, { $set: { start: sh(16), end: sh(17) } });
  expect(await detect()).toEqual({ fired: 0 });
});

test('en user with no free slot left: the Feishu message names both blocks and says there is no slot', async () => {
  // Working hours 09:00–11:00 Berlin; now 09:00 Berlin: the coming 24 h hold only today's two hours.
  const { userId, token } = await userWithBot({ timeZone: 'Europe/Berlin', language: 'en', workingHours: { start: '09:00', end: '11:00' } });
  const now = new Date(Date.UTC(2030, 0, 7, 8));
  await newBlock(userId, 'Budget review', new Date(Date.UTC(2030, 0, 7, 8)), new Date(Date.UTC(2030, 0, 7, 9, 30)));
  await newBlock(userId, 'Standup', new Date(Date.UTC(2030, 0, 7, 9)), new Date(Date.UTC(2030, 0, 7, 10)));
  expect(await detect(now)).toEqual({ fired: 1 });
  const [t] = await conflictsOf(userId);
  expect(JSON.parse(t.detail!).suggestion).toBeNull();
  await env.sentRecordOf(t._id);
  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  expect(sent[0]).toContain('Schedule conflict: "Budget review" and "Standup" overlap');
  expect(sent[0]).toContain('"Budget review" (Mon 09:00–10:30) and "Standup" (Mon 10:00–11:00) overlap by 30 min.');
  expect(sent[0]).toContain('No free slot in your working hours in the next 24 h fits "Standup" (60 min)');
});

test('end to end (zh-CN): the scanner job runs the detector and the Feishu server receives the message naming both blocks', async () => {
  const { userId, token } = await userWithBot({ timeZone: TZ, workingHours: { start: '00:00', end: '23:55' } });
  const base = Math.ceil(Date.now() / (5 * MIN)) * 5 * MIN + 2 * HOUR;
  const a = await newBlock(userId, '季度复盘会', new Date(base), new Date(base + HOUR));
  const b = await newBlock(userId, '客户电话', new Date(base + 30 * MIN), new Date(base + 90 * MIN));
  const job = await env.df.ctx.queues[queueNames.scanner].add(scanJobName, { v: 1 });
  const done = await waitFor(
    async () => {
      const j = await env.df.ctx.queues[queueNames.scanner].getJob(job.id!);
      return j?.finishedOn ? j : undefined;
    },
    20_000,
    'the scan job',
  );
  expect(done.returnvalue.detectors).toMatchObject({ fired: { schedule_conflict: expect.any(Number), deadline_risk: expect.any(Number) }, failed: [] });
  const [t] = await conflictsOf(userId);
  expect(t.target.id).toBe(pairId(a, b));
  await env.sentRecordOf(t._id);
  const sent = messagesTo(token);
  expect(sent).toHaveLength(1);
  expect(sent[0]).toContain('【警告】日程冲突：「季度复盘会」与「客户电话」时间重叠');
  expect(sent[0]).toContain(
    `「季度复盘会」（${formatSlot(a.start, a.end, TZ, 'zh-CN')}）和「客户电话」（${formatSlot(b.start, b.end, TZ, 'zh-CN')}）重叠了 30 分钟`,
  );
  expect(sent[0]).toContain('建议把「客户电话」改到');
});
