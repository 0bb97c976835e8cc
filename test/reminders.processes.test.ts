/**
 * Reminders with real worker processes (the compiled build: run `npm run build` first), as dynos
 * run them, sharing one database and one queue prefix with an in-process API that runs no worker:
 * - a recurring reminder (every 3 s) fires at each of its occurrences once, across two worker processes;
 * - occurrences missed while every worker was down fire once when a worker comes back, and the
 *   next occurrence is in the future;
 * - an occurrence missed for longer than REMINDER_CATCHUP_MS is skipped, not sent.
 * The minimum interval is lowered to 1 s so second-level crons keep the test short.
 */
import { asUser, call, userWithBot } from './support/api';
import { testEnv, waitFor } from './support/env';
import { startFeishuServer, type FeishuServer } from './support/feishuServer';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { spawnDueflow, type DueflowProcess } from './support/processes';
import type { ReminderDoc } from '../src/db/reminder';

const R = '/api/v1/reminders';
let feishu: FeishuServer;
let env: Record<string, string>;
let api: TestDueflow;
const procs: DueflowProcess[] = [];

const tunables = { SCAN_INTERVAL_MS: '200', REMINDER_MIN_INTERVAL_MS: '1000', NOTIFY_BACKOFF_MS: '20', NOTIFY_BACKOFF_MAX_MS: '100' };

beforeAll(async () => {
  feishu = await startFeishuServer();
  env = testEnv({ LOG_LEVEL: 'info', ...tunables });
  api = await startTestDueflow('api', { MONGODB_DB: env.MONGODB_DB, QUEUE_PREFIX: env.QUEUE_PREFIX, ...tunables });
});
afterEach(async () => {
  await stopWorkers();
});
afterAll(async () => {
  await api?.stop();
  await feishu?.close();
});

async function startWorker(extra: Record<string, string> = {}) {
  const p = spawnDueflow({ ...env, DUEFLOW_MODE: 'worker', ...extra });
  procs.push(p);
  await p.waitForLog('dueflow started');
  return p;
}
async function stopWorkers() {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode !== null) continue;
    p.kill('SIGTERM');
    await p.waitForExit(25_000).catch(() => {
      p.kill('SIGKILL');
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const messagesTo = (token: string) => feishu.messages.filter((m) => m.token === token);
const reminderDoc = (id: string) => api.ctx.models.reminders.findById(id).lean<ReminderDoc>();
const triggersOf = (id: string) => api.ctx.models.triggers.find({ type: 'reminder', 'target.id': id }).lean();
const occurrenceOf = (t: { detail?: string | null }) => new Date(JSON.parse(t.detail!).occurrenceAt).getTime();
/** The `reminder occurrence fired` log lines of a process for one reminder. */
const firedLines = (p: DueflowProcess, id: string) =>
  p.output.flatMap((line) => {
    try {
      const l = JSON.parse(line);
      return l.msg === 'reminder occurrence fired' && l.reminderId === id ? [l] : [];
    } catch {
      return [];
    }
  });

async function create(auth: string, body: Record<string, unknown>) {
  const res = await call(api.baseUrl, 'POST', R, { auth, body: { message: { title: 'Drink water', summary: 'A glass, now.' }, ...body } });
  expect([res.status, res.body?.error ?? null]).toEqual([201, null]);
  return res.body;
}

test('every 3 s, 4 times, with two worker processes: each occurrence fires once, one message each', async () => {
  const workers = [await startWorker(), await startWorker()];
  const { userId, token, auth } = await userWithBot(api.baseUrl, feishu);
  const r = await create(auth, { cron: '*/3 * * * * *', count: 4, message: { title: 'Posture check', summary: 'Sit up straight.' } });

  const done = await waitFor(
    async () => {
      const d = await reminderDoc(r.id);
      return d?.status === 'completed' ? d : undefined;
    },
    30_000,
    'four occurrences',
  );
  await waitFor(() => messagesTo(token).length >= 4, 10_000, 'four messages');
  await sleep(3500); // one more tick: nothing more may come

  expect(done).toMatchObject({ firedCount: 4, nextAt: null });
  const messages = messagesTo(token);
  expect(messages).toHaveLength(4);
  for (const m of messages) expect(JSON.stringify(m.body)).toContain('Posture check');

  // One trigger and one sent record per occurrence, the occurrences 3 s apart: none skipped, none twice.
  const triggers = await triggersOf(r.id);
  const occurrences = triggers.map(occurrenceOf).sort((a, b) => a - b);
  expect(occurrences).toHaveLength(4);
  expect(occurrences.slice(1).map((t, i) => t - occurrences[i])).toEqual([3000, 3000, 3000]);
  expect(occurrences[0]).toBeGreaterThan(new Date(r.createdAt).getTime() - 1);
  const records = await api.ctx.models.notificationRecords.find({ userId }).lean();
  expect(records.map((x) => x.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
  expect(new Set(records.map((x) => x.triggerId)).size).toBe(4);
  expect(await api.ctx.models.dueJobs.findOne({ key: `reminder:${r.id}` }).lean()).toMatchObject({ status: 'triggered' });

  // Which process fired which occurrence: together all four, each once.
  const byProcess = workers.map((w) => firedLines(w, r.id).map((l) => new Date(l.occurrenceAt).getTime()));
  const all = byProcess.flat().sort((a, b) => a - b);
  expect(all).toEqual(occurrences);
  process.stdout.write(`reminders: occurrences fired per worker process: ${byProcess.map((o) => o.length).join(' + ')}\n`);
}, 60_000);

test('occurrences missed while all workers were down fire once when a worker returns; the next is in the future', async () => {
  const { token, auth } = await userWithBot(api.baseUrl, feishu);
  // Three occurrences 2 s apart, starting 2 s from now, then none until the same seconds next minute.
  const base = Math.ceil(Date.now() / 1000) * 1000 + 2000;
  const seconds = [0, 2000, 4000].map((d) => new Date(base + d).getUTCSeconds());
  const r = await create(auth, { cron: `${seconds.join(',')} * * * * *` });
  expect(new Date(r.nextAt).getTime()).toBe(base);

  await sleep(base + 4000 + 1500 - Date.now()); // all three passed, no worker ran
  expect(messagesTo(token)).toHaveLength(0);
  const back = Date.now();
  await startWorker();

  await waitFor(() => messagesTo(token).length >= 1, 15_000, 'the caught-up message');
  await sleep(3000);
  expect(messagesTo(token)).toHaveLength(1);
  const doc = (await reminderDoc(r.id))!;
  expect(doc).toMatchObject({ status: 'active', firedCount: 1, lastOccurrence: { at: new Date(base), outcome: 'sent' } });
  expect(doc.nextAt!.getTime()).toBeGreaterThan(back);
  expect(doc.nextAt!.getTime()).toBe(base + 60_000);
  const [trigger] = await triggersOf(r.id);
  expect(JSON.parse(trigger.detail!)).toMatchObject({ occurrenceAt: new Date(base).toISOString(), collapsedOccurrences: 2 });
  await call(api.baseUrl, 'DELETE', `${R}/${r.id}`, { auth });
}, 60_000);

test('an occurrence missed for longer than REMINDER_CATCHUP_MS is skipped when a worker returns: no message', async () => {
  const { token, auth } = await userWithBot(api.baseUrl, feishu);
  const r = await create(auth, { at: new Date(Date.now() + 1000).toISOString() });
  await sleep(new Date(r.at).getTime() + 3500 - Date.now());
  await startWorker({ REMINDER_CATCHUP_MS: '3000' });

  const doc = await waitFor(
    async () => {
      const d = await reminderDoc(r.id);
      return d?.status === 'completed' ? d : undefined;
    },
    30_000,
    'the reminder to finish',
  );
  expect(doc).toMatchObject({ firedCount: 0, nextAt: null, lastOccurrence: { outcome: 'skipped', reason: 'missed_beyond_catchup' } });
  // The reminder is written first, its due job just after: wait for the due job to settle too.
  const dueJob = await waitFor(
    async () => {
      const j = await api.ctx.models.dueJobs.findOne({ key: `reminder:${r.id}` }).lean();
      return j?.status !== 'claimed' ? j : undefined;
    },
    10_000,
    'the due job to settle',
  );
  expect(dueJob).toMatchObject({ status: 'skipped', reason: 'missed_beyond_catchup' });
  await sleep(1000);
  expect(messagesTo(token)).toHaveLength(0);
  expect(await triggersOf(r.id)).toHaveLength(0);
  expect((await call(api.baseUrl, 'GET', `${R}/${r.id}`, { auth: await asUser(doc.userId) })).body).toMatchObject({
    status: 'completed',
    lastOccurrence: { outcome: 'skipped', reason: 'missed_beyond_catchup' },
  });
}, 60_000);
