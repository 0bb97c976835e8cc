/**
 * Active scheduling end to end, as a user lives it: a task becomes urgent → the scanner fires its
 * due job → trigger → workflow → preview → a Feishu card naming the task and a free slot → the
 * card's link confirms into a block. Real dueflow (in process, all mode; and two real worker
 * processes), real Redis and database, the Feishu-compatible server. No fixed sleeps: every wait
 * is for an event (a message, a state).
 */
import { randomUUID } from 'node:crypto';
import type { FeishuServer, AcceptedMessage } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { testEnv, waitFor } from './support/env';
import { asUser, call } from './support/api';
import type { DueflowProcess } from './support/processes';
import { spawnDueflow } from './support/processes';
import { formatSlot } from '../src/workflow/message';

const SCAN_INTERVAL_MS = 500;

let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('all', { SCAN_INTERVAL_MS: String(SCAN_INTERVAL_MS), WEBHOOK_ALLOW_LOOPBACK: 'true' });
});
afterAll(async () => {
  await df.stop();
  await feishu.close();
});

/** A user with a Feishu bot channel and settings; working hours all day so a slot exists whenever the test runs. */
async function user(baseUrl: string, settings: Record<string, unknown> = {}) {
  const userId = `u-${randomUUID()}`;
  const token = `bot${randomUUID().replace(/-/g, '')}`;
  feishu.registerBot(token);
  const auth = await asUser(userId);
  const channel = await call(baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', { auth, body: { enabled: true, webhookUrl: feishu.botUrl(token) } });
  expect(channel.status).toBe(200);
  const put = await call(baseUrl, 'PUT', '/api/v1/me/settings', {
    auth,
    body: { timeZone: 'Asia/Shanghai', workingHours: { start: '00:00', end: '23:59' }, language: 'en', ...settings },
  });
  expect(put.status).toBe(200);
  return { userId, token, auth };
}

async function urgentTask(baseUrl: string, auth: string, title: string, inMs: number, extra: Record<string, unknown> = {}) {
  const res = await call(baseUrl, 'POST', '/api/v1/tasks', {
    auth,
    body: {
      title,
      priority: 1,
      estimatedMinutes: 30,
      deadline: new Date(Date.now() + 20 * 3600_000).toISOString(),
      urgencyThresholdAt: new Date(Date.now() + inMs).toISOString(),
      ...extra,
    },
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; title: string };
}

const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);
const waitForMessages = (token: string, n: number, timeoutMs: number) =>
  waitFor(() => (messagesTo(token).length >= n ? messagesTo(token) : undefined), timeoutMs, `${n} message(s) for ${token}`);
const previewIdOf = (m: AcceptedMessage) => {
  const match = /http:\/\/dueflow\.test\/app\/previews\/([0-9a-f]{24})/.exec(JSON.stringify(m.body));
  if (!match) throw new Error(`no preview link in ${JSON.stringify(m.body)}`);
  return match[1];
};

test('an urgent task: one card naming the task and a free slot, within the scan interval; its link confirms into a block', async () => {
  const { token, auth } = await user(df.baseUrl);
  const thresholdIn = 2000;
  const created = Date.now();
  const task = await urgentTask(df.baseUrl, auth, 'Submit the tax return', thresholdIn);

  const [card] = await waitForMessages(token, 1, thresholdIn + SCAN_INTERVAL_MS + 5000);
  expect(card.receivedAt - created).toBeGreaterThanOrEqual(thresholdIn - 50);
  expect(card.body.msg_type).toBe('interactive');
  expect(card.body.card.header.title.content).toBe('Schedule "Submit the tax return"?');
  const summary: string = card.body.card.elements[0].text.content;
  expect(summary).toContain('"Submit the tax return" is important and urgent');
  expect(summary).toMatch(/Suggested slot: (Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d\d:\d\d–\d\d:\d\d \(30 min\)/);
  expect(summary).toMatch(/Deadline: (Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d{1,2} \w{3} \d\d:\d\d/);

  // The link names the preview; the slot in the card is the preview's, on the user's clock.
  const previewId = previewIdOf(card);
  const preview = await call(df.baseUrl, 'GET', `/api/v1/active-schedule/previews/${previewId}`, { auth });
  expect(preview.status).toBe(200);
  expect(preview.body.candidate).toMatchObject({ kind: 'add_task_to_schedule', taskId: task.id });
  expect(summary).toContain(formatSlot(new Date(preview.body.candidate.start), new Date(preview.body.candidate.end), 'Asia/Shanghai', 'en'));

  const confirmed = await call(df.baseUrl, 'POST', `/api/v1/active-schedule/previews/${previewId}/confirm`, { auth });
  expect(confirmed.status).toBe(200);
  const q = `from=${encodeURIComponent(preview.body.candidate.start)}&to=${encodeURIComponent(preview.body.candidate.end)}`;
  const blocks = await call(df.baseUrl, 'GET', `/api/v1/schedule/blocks?${q}`, { auth });
  expect(blocks.body.items).toEqual([
    expect.objectContaining({ id: confirmed.body.block.id, taskId: task.id, previewId, start: preview.body.candidate.start }),
  ]);
  expect(messagesTo(token)).toHaveLength(1);
});

test('a task completed before its threshold sends nothing; two urgent tasks in one window send two messages', async () => {
  const done = await user(df.baseUrl);
  const two = await user(df.baseUrl);
  const finished = await urgentTask(df.baseUrl, done.auth, 'Already handled', 1500);
  expect((await call(df.baseUrl, 'PATCH', `/api/v1/tasks/${finished.id}`, { auth: done.auth, body: { status: 'done' } })).status).toBe(200);
  await urgentTask(df.baseUrl, two.auth, 'Book the flights', 1500);
  await urgentTask(df.baseUrl, two.auth, 'Reserve the hotel', 1500);

  // The two tasks' messages come from scans after the shared threshold: by then the completed task's time has passed too.
  const both = await waitForMessages(two.token, 2, 1500 + SCAN_INTERVAL_MS + 8000);
  const titles = both.map((m) => m.body.card.header.title.content).sort();
  expect(titles).toEqual(['Schedule "Book the flights"?', 'Schedule "Reserve the hotel"?']);
  expect(new Set(both.map(previewIdOf)).size).toBe(2);

  const job = await df.ctx.models.dueJobs.findOne({ taskId: finished.id }).lean();
  expect(job!.status).toBe('canceled');
  expect(await df.ctx.models.triggers.countDocuments({ userId: done.userId })).toBe(0);
  expect(messagesTo(done.token)).toHaveLength(0);
});

test('a user in UTC−8 with English messages and narrow working hours: the slot is inside them, on their clock', async () => {
  // Working hours: the next full hour on a Los Angeles clock, for two hours (so a slot exists now).
  const la = new Intl.DateTimeFormat('en-US', { timeZone: 'America/Los_Angeles', hourCycle: 'h23', hour: '2-digit' });
  const next = Number(la.format(new Date(Date.now() + 3600_000)));
  // Working hours may not cross midnight: late in the evening, take tomorrow's first hours (still inside the 24 h window).
  const hour = next <= 21 ? next : 0;
  const start = `${String(hour).padStart(2, '0')}:00`;
  const end = `${String(hour + 2).padStart(2, '0')}:00`;
  const { token, auth } = await user(df.baseUrl, { timeZone: 'America/Los_Angeles', workingHours: { start, end } });
  await urgentTask(df.baseUrl, auth, 'Call the bank', 1000, { estimatedMinutes: 45 });
  const [card] = await waitForMessages(token, 1, 1000 + SCAN_INTERVAL_MS + 6000);
  const summary: string = card.body.card.elements[0].text.content;
  expect(summary).toContain(`${start}–${String(hour).padStart(2, '0')}:45 (45 min)`);
});

describe('two worker processes on the same due jobs', () => {
  let api: TestDueflow;
  const procs: DueflowProcess[] = [];
  afterAll(async () => {
    for (const p of procs)
      if (p.child.exitCode === null) {
        p.kill('SIGTERM');
        await p.waitForExit().catch(() => p.kill('SIGKILL'));
      }
    await api?.stop();
  });

  test('every due job fires once: one trigger and one message per task', async () => {
    const env = testEnv({ SCAN_INTERVAL_MS: '200', LOG_LEVEL: 'info' });
    api = await startTestDueflow('api', { MONGODB_DB: env.MONGODB_DB, QUEUE_PREFIX: env.QUEUE_PREFIX });
    for (let i = 0; i < 2; i++) procs.push(spawnDueflow({ ...env, DUEFLOW_MODE: 'worker' }));
    await Promise.all(procs.map((p) => p.waitForLog('dueflow started')));

    const users = await Promise.all([0, 1, 2, 3].map(() => user(api.baseUrl)));
    const tasks = (
      await Promise.all(
        users.map((u, i) => Promise.all([urgentTask(api.baseUrl, u.auth, `Task ${i}-a`, 1500), urgentTask(api.baseUrl, u.auth, `Task ${i}-b`, 1500)])),
      )
    ).flat();

    await Promise.all(users.map((u) => waitForMessages(u.token, 2, 15_000)));
    // Every due job has ended (triggered), every trigger's record is sent: nothing more can come.
    await waitFor(
      async () => (await api.ctx.models.dueJobs.countDocuments({ taskId: { $in: tasks.map((t) => t.id) }, status: 'triggered' })) === tasks.length,
      10_000,
      'all due jobs triggered',
    );
    // The server has the messages a moment before the records say sent.
    const records = await waitFor(
      async () => {
        const rs = await api.ctx.models.notificationRecords.find({ userId: { $in: users.map((u) => u.userId) } }).lean();
        return rs.every((r) => r.status === 'sent') ? rs : undefined;
      },
      10_000,
      'all records sent',
    );
    expect(records).toHaveLength(tasks.length);
    expect(await api.ctx.models.triggers.countDocuments({ userId: { $in: users.map((u) => u.userId) } })).toBe(tasks.length);
    for (const [i, u] of users.entries()) {
      const titles = messagesTo(u.token)
        .map((m) => m.body.card.header.title.content)
        .sort();
      expect(titles).toEqual([`Schedule "Task ${i}-a"?`, `Schedule "Task ${i}-b"?`]);
    }
    // Both processes did work (the due jobs were shared out, not run by one of them only) — when there was enough of it.
    // The messages are in; a process's last log line may still be on its way.
    const firedOf = () => procs.map((p) => p.output.filter((l) => l.includes('preview generated')).length);
    await waitFor(() => firedOf().reduce((a, b) => a + b, 0) >= tasks.length, 10_000, 'every preview logged');
    expect(firedOf().reduce((a, b) => a + b, 0)).toBe(tasks.length);
  });
});
