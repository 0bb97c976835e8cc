/**
 * Previews: reading, confirming (idempotent, expiry, conflicts), rejecting, and the dry run.
 * Real dueflow (all mode) on real Redis and the database; previews come from real triggers.
 */
import { randomUUID } from 'node:crypto';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asUser, call } from './support/api';

let df: TestDueflow;

beforeAll(async () => {
  // A delivery of an earlier test wakes the events relay; one run a minute at most keeps it out of the dry run's count of writes.
  df = await startTestDueflow('all', { EVENT_RELAY_INTERVAL_MS: '60000' });
});
afterAll(async () => {
  await df.stop();
});

const base = '/api/v1/active-schedule';

/** A user with a task, and the ready preview of its trigger (users without a channel: records are skipped, nothing is sent). */
async function readyPreview(title = 'Draft the proposal', estimatedMinutes = 60) {
  const userId = `u-${randomUUID()}`;
  const auth = await asUser(userId);
  const task = await df.ctx.models.tasks.create({ userId, title, priority: 1, estimatedMinutes, deadline: new Date(Date.now() + 30 * 3600_000) });
  // Working hours all day long, so a slot exists whatever time the test runs at.
  await df.ctx.models.userSettings.create({ userId, timeZone: 'UTC', workingHours: { start: '00:00', end: '23:59' }, language: 'en' });
  const res = await call(df.baseUrl, 'POST', `${base}/triggers`, {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
  });
  expect(res.status).toBe(201);
  const trigger = await waitFor(
    async () => {
      const t = await df.ctx.models.triggers.findById(res.body.id).lean();
      return t && t.status !== 'pending' && t.status !== 'processing' ? t : undefined;
    },
    20_000,
    'the workflow to finish',
  );
  expect(trigger.status).toBe('preview_generated');
  const preview = await call(df.baseUrl, 'GET', `${base}/previews/${trigger.previewId}`, { auth });
  expect(preview.status).toBe(200);
  return { userId, auth, task, triggerId: res.body.id as string, previewId: trigger.previewId!, preview: preview.body };
}

const confirm = (auth: string, id: string) => call(df.baseUrl, 'POST', `${base}/previews/${id}/confirm`, { auth });

test('a preview shows the chosen slot and its message; another user gets 404', async () => {
  const { preview, previewId, triggerId, task } = await readyPreview();
  expect(preview).toMatchObject({ id: previewId, triggerId, status: 'ready', candidate: { kind: 'add_task_to_schedule', taskId: String(task._id) } });
  expect(new Date(preview.candidate.end).getTime() - new Date(preview.candidate.start).getTime()).toBe(3600_000);
  expect(preview.message.summary).toContain('Draft the proposal');
  expect(preview.message.actionUrl).toBe(`http://dueflow.test/app/previews/${previewId}`);
  expect(new Date(preview.expiresAt).getTime() - new Date(preview.createdAt).getTime()).toBeGreaterThan(3590_000);
  const stranger = await asUser(`u-${randomUUID()}`);
  expect((await call(df.baseUrl, 'GET', `${base}/previews/${previewId}`, { auth: stranger })).status).toBe(404);
  expect((await confirm(stranger, previewId)).status).toBe(404);
  expect((await call(df.baseUrl, 'POST', `${base}/previews/${previewId}/reject`, { auth: stranger })).status).toBe(404);
});

test('confirm creates the block (with the previewId) and closes the trigger; the schedule shows it', async () => {
  const { auth, previewId, triggerId, preview, task } = await readyPreview();
  const res = await confirm(auth, previewId);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({
    replayed: false,
    preview: { status: 'confirmed' },
    block: { taskId: String(task._id), previewId, start: preview.candidate.start, end: preview.candidate.end, status: 'planned' },
  });
  const list = await call(
    df.baseUrl,
    'GET',
    `/api/v1/schedule/blocks?from=${encodeURIComponent(preview.candidate.start)}&to=${encodeURIComponent(preview.candidate.end)}`,
    { auth },
  );
  expect(list.status).toBe(200);
  expect(list.body.items.map((b: any) => b.id)).toEqual([res.body.block.id]);
  const trigger = await call(df.baseUrl, 'GET', `${base}/triggers/${triggerId}`, { auth });
  expect(trigger.body).toMatchObject({ status: 'closed', reason: 'preview_confirmed' });
});

test('double confirm (at once, and again later): one block, the same answer', async () => {
  const { auth, previewId, userId } = await readyPreview();
  const [a, b] = await Promise.all([confirm(auth, previewId), confirm(auth, previewId)]);
  expect([a.status, b.status]).toEqual([200, 200]);
  expect(a.body.block.id).toBe(b.body.block.id);
  expect([a.body.replayed, b.body.replayed].sort()).toEqual([false, true]);
  const c = await confirm(auth, previewId);
  expect([c.status, c.body.block.id, c.body.replayed]).toEqual([200, a.body.block.id, true]);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId, previewId })).toBe(1);
});

test('five confirms at once, and a confirm racing a reject: exactly one answer wins', async () => {
  const one = await readyPreview();
  const all = await Promise.all(Array.from({ length: 5 }, () => confirm(one.auth, one.previewId)));
  expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  expect(all.filter((r) => !r.body.replayed)).toHaveLength(1);
  expect(new Set(all.map((r) => r.body.block.id)).size).toBe(1);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId: one.userId })).toBe(1);

  const two = await readyPreview();
  const [c, r] = await Promise.all([
    confirm(two.auth, two.previewId),
    call(df.baseUrl, 'POST', `${base}/previews/${two.previewId}/reject`, { auth: two.auth }),
  ]);
  const final = (await df.ctx.models.previews.findById(two.previewId).lean())!.status;
  if (final === 'confirmed') expect([c.status, r.status]).toEqual([200, 409]);
  else expect([final, c.status, r.status]).toEqual(['rejected', 409, 200]);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId: two.userId })).toBe(final === 'confirmed' ? 1 : 0);
});

test('confirm after expiry: 409 preview_expired, no block', async () => {
  const { auth, previewId, userId } = await readyPreview();
  await df.ctx.models.previews.updateOne({ _id: previewId }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
  expect((await call(df.baseUrl, 'GET', `${base}/previews/${previewId}`, { auth })).body.status).toBe('expired');
  const res = await confirm(auth, previewId);
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('preview_expired');
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId })).toBe(0);
  expect((await call(df.baseUrl, 'POST', `${base}/previews/${previewId}/reject`, { auth })).status).toBe(409);
});

test('a preview made with a short PREVIEW_TTL_MS expires by itself', async () => {
  const short = await startTestDueflow('all', { PREVIEW_TTL_MS: '1000' });
  try {
    const userId = `u-${randomUUID()}`;
    const auth = await asUser(userId);
    const task = await short.ctx.models.tasks.create({ userId, title: 'Short-lived', priority: 1 });
    await short.ctx.models.userSettings.create({ userId, timeZone: 'UTC', workingHours: { start: '00:00', end: '23:59' } });
    const res = await call(short.baseUrl, 'POST', `${base}/triggers`, {
      auth,
      body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
    });
    const t = await waitFor(
      async () => {
        const x = await short.ctx.models.triggers.findById(res.body.id).lean();
        return x?.previewId ? x : undefined;
      },
      20_000,
      'the preview',
    );
    const p = await short.ctx.models.previews.findById(t.previewId).lean();
    expect(p!.expiresAt.getTime() - p!.createdAt!.getTime()).toBeLessThanOrEqual(1000);
    await waitFor(
      async () => (await call(short.baseUrl, 'GET', `${base}/previews/${t.previewId}`, { auth })).body.status === 'expired',
      5000,
      'the preview to expire',
    );
    const late = await call(short.baseUrl, 'POST', `${base}/previews/${t.previewId}/confirm`, { auth });
    expect([late.status, late.body.error.code]).toEqual([409, 'preview_expired']);
  } finally {
    await short.stop();
  }
});

test('confirm into a slot taken meanwhile: 409 schedule_conflict naming the block; free it and confirm works', async () => {
  const { auth, previewId, preview, userId } = await readyPreview();
  const start = new Date(new Date(preview.candidate.start).getTime() + 30 * 60_000);
  const taken = await call(df.baseUrl, 'POST', '/api/v1/schedule/blocks', {
    auth,
    body: { title: 'Dentist', start: start.toISOString(), end: new Date(start.getTime() + 3600_000).toISOString() },
  });
  expect(taken.status).toBe(201);
  const res = await confirm(auth, previewId);
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('schedule_conflict');
  expect(res.body.error.details.blocks.map((b: any) => b.id)).toEqual([taken.body.id]);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId, previewId })).toBe(0);
  // The preview is still ready: once the slot is free again it can be confirmed.
  expect((await call(df.baseUrl, 'DELETE', `/api/v1/schedule/blocks/${taken.body.id}`, { auth })).status).toBeLessThan(300);
  expect((await confirm(auth, previewId)).status).toBe(200);
});

test('two previews for overlapping slots confirmed at once: one block, the other 409', async () => {
  const userId = `u-${randomUUID()}`;
  const auth = await asUser(userId);
  await df.ctx.models.userSettings.create({ userId, timeZone: 'UTC', workingHours: { start: '00:00', end: '23:59' } });
  const ids: string[] = [];
  for (const title of ['First', 'Second']) {
    const task = await df.ctx.models.tasks.create({ userId, title, priority: 1 });
    const res = await call(df.baseUrl, 'POST', `${base}/triggers`, {
      auth,
      body: { type: 'important_urgent_task', target: { type: 'task', id: String(task._id) } },
    });
    const t = await waitFor(
      async () => {
        const x = await df.ctx.models.triggers.findById(res.body.id).lean();
        return x?.previewId ? x : undefined;
      },
      20_000,
      'the preview',
    );
    ids.push(t.previewId!);
  }
  // Both were planned on the same empty schedule: the same slot.
  const results = await Promise.all(ids.map((id) => confirm(auth, id)));
  expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId })).toBe(1);
});

test('reject: nothing changes in the schedule, the trigger is rejected; confirming afterwards is refused', async () => {
  const { auth, previewId, triggerId, userId } = await readyPreview();
  const res = await call(df.baseUrl, 'POST', `${base}/previews/${previewId}/reject`, { auth });
  expect([res.status, res.body.preview.status, res.body.replayed]).toEqual([200, 'rejected', false]);
  expect((await call(df.baseUrl, 'POST', `${base}/previews/${previewId}/reject`, { auth })).body.replayed).toBe(true);
  expect((await call(df.baseUrl, 'GET', `${base}/triggers/${triggerId}`, { auth })).body).toMatchObject({ status: 'rejected', reason: 'preview_rejected' });
  const late = await confirm(auth, previewId);
  expect([late.status, late.body.error.code]).toEqual([409, 'preview_rejected']);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ userId })).toBe(0);
});

describe('dry run', () => {
  async function counts() {
    const collections = await df.ctx.mongo.db!.listCollections().toArray();
    const out: Record<string, number> = {};
    for (const c of collections) out[c.name] = await df.ctx.mongo.db!.collection(c.name).countDocuments();
    for (const [name, q] of Object.entries(df.ctx.queues)) out[`queue:${name}`] = Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
    return out;
  }

  test('returns context, issues and candidates, and writes nothing anywhere', async () => {
    const userId = `u-${randomUUID()}`;
    const auth = await asUser(userId);
    await df.ctx.models.userSettings.create({ userId, timeZone: 'America/Los_Angeles', workingHours: { start: '00:00', end: '23:59' }, language: 'en' });
    const task = await df.ctx.models.tasks.create({ userId, title: 'Dry', priority: 1, estimatedMinutes: 90 });
    await df.ctx.models.scheduleBlocks.create({ userId, title: 'Busy', start: new Date(Date.now() - 60_000), end: new Date(Date.now() + 2 * 3600_000) });
    // Let the queues settle (the previous tests' jobs), so the counts compare like with like.
    await waitFor(
      async () => {
        const c = await df.ctx.queues['active-schedule-triggered'].getJobCounts('active', 'waiting', 'delayed');
        return Object.values(c).every((n) => n === 0);
      },
      20_000,
      'idle queues',
    );
    await waitFor(
      async () => {
        const c = await df.ctx.queues.notifications.getJobCounts('active', 'waiting', 'delayed');
        return Object.values(c).every((n) => n === 0);
      },
      20_000,
      'idle queues',
    );

    const before = await counts();
    const res = await call(df.baseUrl, 'POST', `${base}/dry-run`, { auth, body: { taskId: String(task._id) } });
    expect(res.status).toBe(200);
    expect(await counts()).toEqual(before);

    expect(res.body).toMatchObject({
      source: 'api_dry_run',
      closeReason: null,
      issues: ['can_place'],
      context: { timeZone: 'America/Los_Angeles', neededMinutes: 90, task: { id: String(task._id), title: 'Dry' } },
    });
    expect(res.body.context.blocks).toHaveLength(1);
    expect(new Date(res.body.context.freeSlots[0].start).getTime()).toBeGreaterThanOrEqual(new Date(res.body.context.blocks[0].end).getTime());
    // The first free slot long enough for the task (near the end of the working day the first one may be too short).
    const fits = res.body.context.freeSlots.find(
      (slot: { start: string; end: string }) => new Date(slot.end).getTime() - new Date(slot.start).getTime() >= 90 * 60_000,
    );
    expect(res.body.candidates[0]).toMatchObject({ kind: 'add_task_to_schedule', start: fits.start });
    expect(res.body.candidates.length).toBeLessThanOrEqual(3);
    expect(res.body.message.summary).toContain('Dry');
    expect((await call(df.baseUrl, 'POST', `${base}/dry-run`, { auth: await asUser('someone-else'), body: { taskId: String(task._id) } })).status).toBe(404);
  });
});
