/**
 * The due-job scanner and fireDueJob on real Redis (BullMQ) and real FerretDB: each outcome of
 * firing, claim leases, two scanners racing over the same jobs, the claim query's plan, the
 * Job Scheduler of worker mode claiming a due job on its own, and on-time firing: a job claimed
 * ahead of its triggerAt fires then, whatever happened to its task, its reminder or Redis meanwhile.
 */
import { randomUUID } from 'node:crypto';
import mongoose, { Types } from 'mongoose';
import { Worker } from 'bullmq';
import { createRedis } from '../queues/connection';
import { createContext, closeContext, type AppContext } from '../src/context';
import { createModels } from '../src/db/models';
import type { DueJobDoc } from '../src/db/dueJob';
import { createLogger } from '../src/logger';
import { syncDueJobForTask } from '../src/scheduling/dueJobs';
import { fireDueJob, fireDueJobForWorkflow } from '../src/scheduling/fireDueJob';
import { recoverTriggers } from '../src/triggers/recover';
import { triggerJobId } from '../src/triggers/schemas';
import { processingLeaseMs } from '../src/triggers/transitions';
import { dueFilter, scanDueJobs, scanLookaheadMs } from '../src/scheduling/scanner';
import { dueJobJobId } from '../src/scheduling/schemas';
import { claimDueJobs, dueJobMaxAttempts } from '../src/scheduling/transitions';
import { dueJobScannerId, upsertJobSchedulers } from '../queues/schedulers';
import { createReminder, updateReminder } from '../src/reminders/store';
import type { ReminderCreateBody } from '../src/reminders/schemas';
import { startTestDueflow, type TestDueflow } from './support/harness';
import { waitFor } from './support/env';

let df: TestDueflow;
let ctx: AppContext;

beforeAll(async () => {
  df = await startTestDueflow('api', { SCAN_BATCH_SIZE: '50', DUE_JOB_LEASE_MS: '60000' });
  ctx = df.ctx;
});
afterAll(async () => {
  await df?.stop();
});

const minutes = (m: number) => new Date(Date.now() + m * 60_000);
const dueJobs = () => ctx.models.dueJobs;
const queue = () => ctx.queues['active-schedule-triggered'];
const reload = async (id: unknown) => (await dueJobs().findById(id).lean<DueJobDoc>())!;

/** A task of a new user and its due job (through the same sync the API uses). */
async function taskWithDueJob(task: { priority?: number; urgencyThresholdAt?: Date; status?: 'todo' | 'done' } = {}) {
  const userId = `u-${randomUUID()}`;
  const created = await ctx.models.tasks.create({ userId, title: 'Hand in the thesis', priority: 1, urgencyThresholdAt: minutes(-5), ...task });
  const job = (await syncDueJobForTask(ctx, created.toObject()))!;
  return { userId, task: created, job };
}

/** The job as the scanner would leave it: claimed with a lease. */
async function claimed(job: DueJobDoc, leaseUntil = minutes(1)) {
  await dueJobs().updateOne({ _id: job._id }, { $set: { status: 'claimed', claimedAt: new Date(), leaseUntil } });
  return reload(job._id);
}

describe('fireDueJob: the rules, in order', () => {
  test('task gone → skipped task_not_found', async () => {
    const { task, job } = await taskWithDueJob();
    await claimed(job);
    await ctx.models.tasks.deleteOne({ _id: task._id }); // behind the API's back, as a race would
    expect(await fireDueJob(ctx, String(job._id))).toEqual({ status: 'skipped', reason: 'task_not_found' });
    expect(await reload(job._id)).toMatchObject({ status: 'skipped', reason: 'task_not_found' });
    expect((await reload(job._id)).leaseUntil).toBeUndefined();
  });

  test('task done → canceled task_completed', async () => {
    const { task, job } = await taskWithDueJob();
    await claimed(job);
    await ctx.models.tasks.updateOne({ _id: task._id }, { $set: { status: 'done' } });
    expect(await fireDueJob(ctx, String(job._id))).toEqual({ status: 'canceled', reason: 'task_completed' });
  });

  test('threshold removed → canceled threshold_removed', async () => {
    const { task, job } = await taskWithDueJob();
    await claimed(job);
    await ctx.models.tasks.updateOne({ _id: task._id }, { $unset: { urgencyThresholdAt: '' } });
    expect(await fireDueJob(ctx, String(job._id))).toEqual({ status: 'canceled', reason: 'threshold_removed' });
  });

  test('threshold moved later → pending again at the new time', async () => {
    const { task, job } = await taskWithDueJob();
    await claimed(job);
    const later = minutes(90);
    await ctx.models.tasks.updateOne({ _id: task._id }, { $set: { urgencyThresholdAt: later } });
    expect(await fireDueJob(ctx, String(job._id))).toEqual({ status: 'pending', reason: 'threshold_moved' });
    expect(await reload(job._id)).toMatchObject({ status: 'pending', triggerAt: later, thresholdAt: later, attempts: 0 });
  });

  test('priority 3 or 4 → skipped task_not_important', async () => {
    for (const priority of [3, 4]) {
      const { job } = await taskWithDueJob({ priority });
      await claimed(job);
      expect([priority, await fireDueJob(ctx, String(job._id))]).toEqual([priority, { status: 'skipped', reason: 'task_not_important' }]);
    }
  });

  test('a planned or done block of the task within the next 24 h → skipped task_already_scheduled', async () => {
    for (const status of ['planned', 'done'] as const) {
      const { userId, task, job } = await taskWithDueJob({ priority: 2 });
      await ctx.models.scheduleBlocks.create({ userId, taskId: String(task._id), title: 'Thesis', start: minutes(23 * 60), end: minutes(24 * 60), status });
      await claimed(job);
      expect([status, await fireDueJob(ctx, String(job._id))]).toEqual([status, { status: 'skipped', reason: 'task_already_scheduled' }]);
    }
  });

  test('otherwise → triggered, with an important_urgent_task trigger; firing again changes nothing', async () => {
    const { userId, task, job } = await taskWithDueJob({ priority: 1 });
    // Blocks that do not count: later than 24 h, unfinished, another task's, already over.
    await ctx.models.scheduleBlocks.create([
      { userId, taskId: String(task._id), title: 'later', start: minutes(25 * 60), end: minutes(26 * 60), status: 'planned' },
      { userId, taskId: String(task._id), title: 'unfinished', start: minutes(60), end: minutes(120), status: 'unfinished' },
      { userId, taskId: 'another-task', title: 'other', start: minutes(60), end: minutes(120), status: 'planned' },
      { userId, taskId: String(task._id), title: 'over', start: minutes(-120), end: minutes(-60), status: 'done' },
    ]);
    await claimed(job);
    const fired = await fireDueJob(ctx, String(job._id));
    expect(fired).toEqual({ status: 'triggered', triggerId: expect.stringMatching(/^[0-9a-f]{24}$/) });
    const trigger = await ctx.models.triggers.findById(fired.triggerId).lean();
    expect(trigger).toMatchObject({
      userId,
      type: 'important_urgent_task',
      source: 'worker_due_job',
      target: { type: 'task', id: String(task._id) },
      dueJobId: String(job._id),
    });
    expect(await reload(job._id)).toMatchObject({ status: 'triggered', triggerId: fired.triggerId });

    expect(await fireDueJob(ctx, String(job._id))).toEqual(fired);
    expect(await ctx.models.triggers.countDocuments({ userId })).toBe(1);
  });

  test('fired for the worker: the trigger is inserted claimed and handed back with the reads; if its run is lost, recoverTriggers gives it a job after the lease', async () => {
    const { userId, task, job } = await taskWithDueJob({ priority: 1 });
    const other = await ctx.models.scheduleBlocks.create({ userId, taskId: 'another-task', title: 'other', start: minutes(60), end: minutes(120) });
    await claimed(job);
    const now = new Date();
    const { outcome, fired } = await fireDueJobForWorkflow(ctx, { dueJobId: String(job._id), now });
    expect(outcome).toEqual({ status: 'triggered', triggerId: expect.any(String) });
    expect(fired!.trigger).toMatchObject({ _id: new Types.ObjectId(outcome.triggerId), status: 'processing', processingSince: now, attempts: 1 });
    expect(fired!.planning).toMatchObject({ now, task: { _id: task._id, title: 'Hand in the thesis' }, blocks: [{ _id: other._id, title: 'other' }] });
    expect(await queue().getJob(triggerJobId(outcome.triggerId!))).toBeUndefined();
    expect(await reload(job._id)).toMatchObject({ status: 'triggered', triggerId: outcome.triggerId });

    // The worker died before running it: nothing to do within the lease, a job after it.
    expect(await recoverTriggers(ctx, new Date(now.getTime() + 1000))).toEqual({ requeued: 0 });
    expect(await recoverTriggers(ctx, new Date(now.getTime() + processingLeaseMs + 1000))).toEqual({ requeued: 1 });
    expect(await queue().getJob(triggerJobId(outcome.triggerId!))).toBeDefined();
  });

  test('a job that brings its claim: fired without reading the due job; run twice, one trigger; stale (the task moved earlier), nothing fired', async () => {
    const { userId, task, job } = await taskWithDueJob({ priority: 1 });
    const made = await claimed(job);
    const claim = { ...made, claimedAt: made.claimedAt! };
    const now = new Date();
    const first = await fireDueJobForWorkflow(ctx, { dueJobId: String(job._id), now, claimedFor: job.triggerAt, claim });
    expect(first.outcome).toEqual({ status: 'triggered', triggerId: expect.any(String) });
    // A second run of the same job (a stalled job run again): the trigger's dedupe key stops a second, the answer is the due job's.
    const again = await fireDueJobForWorkflow(ctx, { dueJobId: String(job._id), now, claimedFor: job.triggerAt, claim });
    expect(again).toEqual({ outcome: first.outcome });
    expect(await ctx.models.triggers.countDocuments({ userId })).toBe(1);

    // The task moved earlier and its new occurrence claimed: the old claim's job fires nothing.
    const moved = await ctx.models.tasks
      .findOneAndUpdate({ _id: task._id }, { $set: { urgencyThresholdAt: minutes(-10) } }, { returnDocument: 'after' })
      .lean();
    const next = await claimed((await syncDueJobForTask(ctx, moved as any))!);
    expect(next.triggerAt.getTime()).toBeLessThan(job.triggerAt.getTime());
    const stale = await fireDueJobForWorkflow(ctx, { dueJobId: String(job._id), now, claimedFor: job.triggerAt, claim });
    expect(stale).toEqual({ outcome: { status: 'superseded' } });
    expect(await ctx.models.triggers.countDocuments({ userId })).toBe(1);
    expect(await reload(job._id)).toMatchObject({ status: 'claimed', claimedAt: next.claimedAt, triggerAt: next.triggerAt });
  });

  test('a job that is not claimed is left alone', async () => {
    const { job } = await taskWithDueJob();
    expect(await fireDueJob(ctx, String(job._id))).toEqual({ status: 'pending' });
    expect(await fireDueJob(ctx, '0123456789abcdef01234567')).toEqual({ status: 'missing' });
    expect(await fireDueJob(ctx, 'nonsense')).toEqual({ status: 'missing' });
  });

  test('an error counts as an attempt: pending again after a backoff, failed for good after the last', async () => {
    const { job } = await taskWithDueJob();
    // The tasks collection is unreachable: its model lives on a closed connection.
    const closed = mongoose.createConnection(df.config.MONGODB_URI, { dbName: df.config.MONGODB_DB });
    await closed.asPromise();
    await closed.close();
    const broken = { ...ctx, models: { ...ctx.models, tasks: createModels(closed).tasks } } as AppContext;

    await claimed(job);
    const before = Date.now();
    expect(await fireDueJob(broken, String(job._id))).toEqual({ status: 'pending' });
    const retried = await reload(job._id);
    expect(retried).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.any(String) });
    expect(retried.triggerAt.getTime()).toBeGreaterThanOrEqual(before + 20_000); // 30 s ± 20%
    expect(retried.thresholdAt!.getTime()).toBe(job.triggerAt.getTime());

    for (let attempt = 2; attempt <= dueJobMaxAttempts; attempt++) {
      await claimed(retried);
      await fireDueJob(broken, String(job._id));
    }
    expect(await reload(job._id)).toMatchObject({ status: 'failed', reason: 'attempts_exhausted', attempts: dueJobMaxAttempts, lastError: expect.any(String) });
  });
});

describe('scanDueJobs', () => {
  // Each test sees only its own due jobs and queued jobs.
  beforeEach(async () => {
    await dueJobs().updateMany({ status: { $in: ['pending', 'claimed'] } }, { $set: { status: 'canceled', reason: 'test_cleanup' } });
    await queue().drain(true);
  });

  test('claims what is due, oldest first, and enqueues one due-job job per claim', async () => {
    const now = new Date();
    const made = [];
    for (const offset of [-3, -30, -10, 30]) made.push((await taskWithDueJob({ urgencyThresholdAt: minutes(offset) })).job);
    const result = await scanDueJobs(ctx, now);
    expect(result).toMatchObject({ claimed: 3, enqueued: 3, reclaimed: 0 });

    const [a, b, c, future] = made;
    for (const job of [a, b, c]) {
      const doc = await reload(job._id);
      // Leased until the scan's horizon + DUE_JOB_LEASE_MS.
      expect(doc).toMatchObject({ status: 'claimed', claimedAt: now, leaseUntil: new Date(now.getTime() + scanLookaheadMs(ctx.config) + 60_000) });
      const queued = await queue().getJob(dueJobJobId(String(job._id), job.triggerAt));
      expect(queued).toBeDefined();
      // The claim travels with the job, so its firing need not read the due job again.
      const claim = { claimedAt: now.toISOString(), kind: 'task_urgency', taskId: job.taskId, thresholdAt: job.thresholdAt!.toISOString(), attempts: 0 };
      expect([queued!.name, queued!.data]).toEqual(['due-job', { v: 1, dueJobId: String(job._id), triggerAt: job.triggerAt.toISOString(), claim }]);
      expect(queued!.id).not.toContain(':');
    }
    expect((await reload(future._id)).status).toBe('pending');
    // Oldest first: the claim order is the enqueue order.
    const waiting = (await queue().getJobs(['waiting'], 0, -1, true)).filter((j) => [a, b, c].some((x) => j.data.dueJobId === String(x._id)));
    expect(waiting.map((j) => j.data.dueJobId)).toEqual([b, c, a].map((x) => String(x._id)));

    expect(await scanDueJobs(ctx, now)).toMatchObject({ claimed: 0, enqueued: 0 });
  });

  test('a claim whose lease ran out is taken back (and claimed again); one whose job still waits keeps its claim', async () => {
    const now = new Date();
    const lost = (await taskWithDueJob()).job;
    await claimed(lost, new Date(now.getTime() - 1000)); // its job never reached Redis
    const waiting = (await taskWithDueJob()).job;
    await claimed(waiting, new Date(now.getTime() - 1000));
    await queue().add(
      'due-job',
      { v: 1, dueJobId: String(waiting._id), triggerAt: waiting.triggerAt.toISOString() },
      { jobId: dueJobJobId(String(waiting._id), waiting.triggerAt) },
    );

    const result = await scanDueJobs(ctx, now);
    expect(result).toMatchObject({ reclaimed: 1, leaseExtended: 1, claimed: 1, enqueued: 1 });
    expect(await reload(lost._id)).toMatchObject({
      status: 'claimed',
      attempts: 1,
      lastError: 'claim lease expired; its job was missing',
      leaseUntil: new Date(now.getTime() + scanLookaheadMs(ctx.config) + 60_000),
    });
    expect(await queue().getJob(dueJobJobId(String(lost._id), lost.triggerAt))).toBeDefined();
    expect(await reload(waiting._id)).toMatchObject({ status: 'claimed', attempts: 0, leaseUntil: new Date(now.getTime() + 60_000) });
  });

  test('a claim whose job finished without moving it is retried under the same job id; one that keeps dying fails for good', async () => {
    const { job } = await taskWithDueJob();
    const jobId = dueJobJobId(String(job._id), job.triggerAt);
    await dueJobs().updateOne({ _id: job._id }, { $set: { attempts: dueJobMaxAttempts - 2 } });
    await claimed(job, minutes(-1));
    const stale = await queue().add('due-job', { v: 1, dueJobId: String(job._id), triggerAt: job.triggerAt.toISOString() }, { jobId });
    await stale.remove(); // as if it had run and been removed; a finished one is removed by the scan itself
    await queue().add('due-job', { v: 1, dueJobId: String(job._id), triggerAt: job.triggerAt.toISOString() }, { jobId });
    // A worker takes it and fails it (by hand: no processor runs here).
    const hand = new Worker(queue().name, null, { connection: createRedis(df.config, 'worker'), prefix: df.config.QUEUE_PREFIX });
    try {
      const taken = await hand.getNextJob('hand-token');
      expect(taken?.id).toBe(jobId);
      await taken!.moveToFailed(new Error('worker died'), 'hand-token', false);
      expect(await (await queue().getJob(jobId))!.getState()).toBe('failed');
    } finally {
      await hand.close();
    }

    const now = new Date();
    await scanDueJobs(ctx, now);
    expect(await reload(job._id)).toMatchObject({ status: 'claimed', attempts: dueJobMaxAttempts - 1 });
    expect(await (await queue().getJob(jobId))!.getState()).toBe('waiting'); // the same id, enqueued again

    await (await queue().getJob(jobId))!.remove();
    await dueJobs().updateOne({ _id: job._id }, { $set: { leaseUntil: minutes(-1) } });
    expect(await scanDueJobs(ctx)).toMatchObject({ reclaimed: 1, claimed: 0 });
    expect(await reload(job._id)).toMatchObject({ status: 'failed', reason: 'attempts_exhausted', attempts: dueJobMaxAttempts });
  });

  test('a batch claim takes only the jobs still pending and due by its horizon, and answers only its own claims', async () => {
    const now = new Date();
    const until = new Date(now.getTime() + 5000);
    const claim = (ids: unknown[]) => claimDueJobs(dueJobs(), { ids: ids as any[], now, until, leaseMs: 60_000, fields: ['kind', 'attempts'] });
    const [a, b, c, d] = await Promise.all([taskWithDueJob(), taskWithDueJob(), taskWithDueJob(), taskWithDueJob()]).then((all) => all.map((x) => x.job));
    // a: claimed by another batch at the same instant; b: moved past the horizon since the read; d: moved, but still within it.
    expect(await claim([a._id])).toHaveLength(1);
    await dueJobs().updateOne({ _id: b._id }, { $set: { triggerAt: minutes(1) } });
    const movedTo = new Date(now.getTime() + 2000);
    await dueJobs().updateOne({ _id: d._id }, { $set: { triggerAt: movedTo } });
    const mine = await claim([a._id, b._id, c._id, d._id]);
    expect(mine).toEqual([
      { _id: c._id, triggerAt: c.triggerAt, claimedAt: now, kind: 'task_urgency', attempts: 0 },
      { _id: d._id, triggerAt: movedTo, claimedAt: now, kind: 'task_urgency', attempts: 0 },
    ]);
    expect(await reload(c._id)).toMatchObject({ status: 'claimed', leaseUntil: new Date(until.getTime() + 60_000) });
    expect(await reload(b._id)).toMatchObject({ status: 'pending' });
    const [ra, rc] = [await reload(a._id), await reload(c._id)];
    expect(ra.status).toBe('claimed');
    expect(ra.claimToken).not.toEqual(rc.claimToken);
  });

  test('two scanners racing over the same 200 due jobs claim and enqueue each exactly once', async () => {
    const userId = `race-${randomUUID()}`;
    const base = Date.now() - 3_600_000;
    const tasks = await ctx.models.tasks.insertMany(
      Array.from({ length: 200 }, (_, i) => ({ userId, title: `t${i}`, priority: 1, urgencyThresholdAt: new Date(base + i * 1000) })),
    );
    await dueJobs().insertMany(
      tasks.map((t) => ({
        userId,
        key: `task:${t._id}`,
        taskId: String(t._id),
        triggerAt: t.urgencyThresholdAt,
        thresholdAt: t.urgencyThresholdAt,
        status: 'pending',
      })),
    );
    const other = await createContext(df.config, createLogger('silent'));
    try {
      const now = new Date();
      // Batches of 50 (SCAN_BATCH_SIZE): both loop over the same candidates at the same time.
      const results = await Promise.all([scanDueJobs(ctx, now), scanDueJobs(other, now), scanDueJobs(ctx, now), scanDueJobs(other, now)]);
      expect(results.reduce((n, r) => n + r.claimed, 0)).toBe(200);
      expect(results.reduce((n, r) => n + r.enqueued, 0)).toBe(200);
      const jobs = await dueJobs().find({ userId }).lean<DueJobDoc[]>();
      expect(jobs.filter((j) => j.status === 'claimed')).toHaveLength(200);
      const queued = (await queue().getJobs(['waiting'], 0, -1)).filter((j) => jobs.some((d) => String(d._id) === j.data.dueJobId));
      expect(queued).toHaveLength(200);
      expect(new Set(queued.map((j) => j.data.dueJobId)).size).toBe(200);
    } finally {
      await closeContext(other);
    }
  });

  test('the claim query is backed by the {status, triggerAt} index', async () => {
    const indexes = await dueJobs().collection.indexes();
    expect(indexes.map((i) => i.key)).toContainEqual({ status: 1, triggerAt: 1 });
    const plan: any = await dueJobs().find(dueFilter(new Date())).sort({ triggerAt: 1 }).limit(50).explain();
    const explained = Array.isArray(plan) ? plan[0] : plan;
    if (explained.serverInfo?.ferretdbVersion !== undefined) {
      // FerretDB v1 (SQLite backend) pushes down only an `_id` equality; every other query is a
      // table scan filtered in FerretDB, whatever the indexes (they serve uniqueness only). Its
      // explain says so; on MongoDB the same query is an IXSCAN of status_1_triggerAt_1 (below).
      expect(explained.queryPlanner.Plan.join(' ')).toMatch(/SCAN/);
      expect(explained.filterPushdown).toBe(false);
    } else {
      const text = JSON.stringify(explained.queryPlanner.winningPlan);
      expect(text).toContain('IXSCAN');
      expect(text).toContain('status_1_triggerAt_1');
    }
  });
});

describe('worker mode', () => {
  let worker: TestDueflow;
  beforeAll(async () => {
    worker = await startTestDueflow('worker', { SCAN_INTERVAL_MS: '200' });
  });
  afterAll(async () => {
    await worker?.stop();
  });

  test('registers the scanner Job Scheduler, which claims and enqueues a due job within the interval', async () => {
    const schedulers = await worker.ctx.queues.scanner.getJobSchedulers();
    expect(schedulers).toContainEqual(expect.objectContaining({ key: dueJobScannerId, every: 200, name: 'scan' }));

    const userId = `w-${randomUUID()}`;
    const task = await worker.ctx.models.tasks.create({ userId, title: 'Due now', priority: 1, urgencyThresholdAt: new Date(Date.now() - 1000) });
    const started = Date.now();
    const job = (await syncDueJobForTask(worker.ctx, task.toObject()))!;
    const jobId = dueJobJobId(String(job._id), job.triggerAt);
    await waitFor(() => worker.ctx.queues['active-schedule-triggered'].getJob(jobId), 5000, `job ${jobId}`);
    expect(Date.now() - started).toBeLessThan(200 + 1500);
    // The active-schedule-triggered worker fires it: triggered, with its trigger.
    const fired = await waitFor(
      async () => {
        const d = await worker.ctx.models.dueJobs.findById(job._id).lean();
        return d?.status === 'triggered' ? d : undefined;
      },
      10_000,
      'the due job to be triggered',
    );
    expect(await worker.ctx.models.triggers.findById(fired.triggerId).lean()).toMatchObject({
      userId,
      type: 'important_urgent_task',
      source: 'worker_due_job',
      dueJobId: String(job._id),
    });
  });
});

describe('on-time firing: a scan claims what falls due before the next one, BullMQ runs it at triggerAt', () => {
  // Lateness is measured at the trigger's creation (the worker's clock), from the due job's triggerAt.
  const onTimeMs = 250;
  let w: TestDueflow;
  beforeAll(async () => {
    w = await startTestDueflow('worker', { SCAN_INTERVAL_MS: '2000', DUE_JOB_LEASE_MS: '1000' });
  });
  afterAll(async () => {
    await w?.stop();
  });

  const wJobs = () => w.ctx.models.dueJobs;
  const wQueue = () => w.ctx.queues['active-schedule-triggered'];
  const wReload = async (id: unknown) => (await wJobs().findById(id).lean<DueJobDoc>())!;
  const at = (ms: number) => new Date(Date.now() + ms);
  const sleepUntil = (t: Date) => new Promise((r) => setTimeout(r, Math.max(0, t.getTime() - Date.now())));
  /** One scan, as the scanner's Job Scheduler runs it (which runs too, every 2 s: claims are guarded). */
  const scan = () => scanDueJobs(w.ctx);
  const triggersOf = (targetId: string) => w.ctx.models.triggers.find({ 'target.id': targetId }).lean();
  const firstTrigger = (targetId: string, timeoutMs = 5000) => waitFor(async () => (await triggersOf(targetId))[0], timeoutMs, `a trigger of ${targetId}`);
  /** The BullMQ job of one claim, once it has run: its outcome. */
  const outcomeOfJob = (job: Pick<DueJobDoc, '_id' | 'triggerAt'>) =>
    waitFor(
      async () => {
        const j = await wQueue().getJob(dueJobJobId(String(job._id), job.triggerAt));
        return j && (await j.isCompleted()) ? j.returnvalue : undefined;
      },
      5000,
      'the due-job job to run',
    );

  async function urgentTask(inMs: number) {
    const task = await w.ctx.models.tasks.create({ userId: `ot-${randomUUID()}`, title: 'Hand in the thesis', priority: 1, urgencyThresholdAt: at(inMs) });
    const job = (await syncDueJobForTask(w.ctx, task.toObject()))!;
    return { task, job, taskId: String(task._id) };
  }
  /** The task moved as the API moves it: the task, then its due job (a new occurrence, pending). */
  async function moveTask(task: { _id: unknown }, to: Date) {
    const moved = await w.ctx.models.tasks.findOneAndUpdate({ _id: task._id }, { $set: { urgencyThresholdAt: to } }, { returnDocument: 'after' }).lean();
    return (await syncDueJobForTask(w.ctx, moved as any))!;
  }
  /**
   * Claimed ahead by a scan: leased until triggerAt + DUE_JOB_LEASE_MS, its BullMQ job delayed. (The
   * scheduler's scan may hold the job's lock when the test's runs: then it is that scan's claim, a moment later.)
   */
  async function expectClaimedAhead(job: Pick<DueJobDoc, '_id' | 'triggerAt'>) {
    const jobId = dueJobJobId(String(job._id), job.triggerAt);
    await waitFor(async () => (await (await wQueue().getJob(jobId))?.getState()) === 'delayed', 300, `${jobId} delayed`);
    const doc = await wReload(job._id);
    expect(doc).toMatchObject({ status: 'claimed', triggerAt: job.triggerAt });
    // Leased until the scan's horizon (at or after triggerAt, at most one lookahead after) + DUE_JOB_LEASE_MS.
    expect(doc.leaseUntil!.getTime()).toBeGreaterThanOrEqual(job.triggerAt.getTime() + 1000);
    expect(doc.leaseUntil!.getTime()).toBeLessThanOrEqual(job.triggerAt.getTime() + scanLookaheadMs(w.config) + 1000);
  }
  const lateness = (trigger: { createdAt?: Date }, due: Date) => trigger.createdAt!.getTime() - due.getTime();

  test('a job due in 700 ms, claimed by a scan (SCAN_INTERVAL_MS 2000), fires within 250 ms of its triggerAt', async () => {
    const { job, taskId } = await urgentTask(700);
    await scan();
    await expectClaimedAhead(job);
    const trigger = await firstTrigger(taskId);
    process.stdout.write(`on-time firing: trigger ${lateness(trigger, job.triggerAt)} ms after triggerAt\n`);
    expect(lateness(trigger, job.triggerAt)).toBeGreaterThanOrEqual(0);
    expect(lateness(trigger, job.triggerAt)).toBeLessThan(onTimeMs);
    expect(await outcomeOfJob(job)).toEqual({ status: 'triggered', triggerId: String(trigger._id) });
  });

  test('claimed ahead, then the task moved later (as the API does): fires at the new time, not the old', async () => {
    const { task, job, taskId } = await urgentTask(700);
    await scan();
    await expectClaimedAhead(job);
    const moved = await moveTask(task, at(2200));
    expect(moved).toMatchObject({ status: 'pending', triggerAt: moved.thresholdAt });
    await scan(); // the new time is claimed ahead too, while the old time's job still waits
    await expectClaimedAhead(moved);

    // The old time's job runs, finds its occurrence superseded and does nothing.
    expect(await outcomeOfJob(job)).toEqual({ status: 'superseded' });
    expect(await triggersOf(taskId)).toHaveLength(0);
    const trigger = await firstTrigger(taskId);
    expect(lateness(trigger, moved.triggerAt)).toBeGreaterThanOrEqual(0);
    expect(lateness(trigger, moved.triggerAt)).toBeLessThan(onTimeMs);
    await sleepUntil(at(300));
    expect(await triggersOf(taskId)).toHaveLength(1);
  });

  test('claimed ahead, then the task moved later behind the API (its due job still claimed): postponed at the old time, fired at the new', async () => {
    const { task, job, taskId } = await urgentTask(700);
    await scan();
    await expectClaimedAhead(job);
    const later = at(1800);
    await w.ctx.models.tasks.updateOne({ _id: task._id }, { $set: { urgencyThresholdAt: later } });
    expect(await outcomeOfJob(job)).toEqual({ status: 'pending', reason: 'threshold_moved' });
    expect(await wReload(job._id)).toMatchObject({ status: 'pending', triggerAt: later, thresholdAt: later });
    expect(await triggersOf(taskId)).toHaveLength(0);
    await scan();
    const trigger = await firstTrigger(taskId);
    expect(lateness(trigger, later)).toBeGreaterThanOrEqual(0);
    expect(lateness(trigger, later)).toBeLessThan(onTimeMs);
  });

  test('claimed ahead, then the task moved earlier: fires at the new time; the old time fires nothing', async () => {
    const { task, job, taskId } = await urgentTask(2200);
    await scan();
    await expectClaimedAhead(job);
    const moved = await moveTask(task, at(700));
    await scan();
    await expectClaimedAhead(moved);
    const trigger = await firstTrigger(taskId);
    expect(lateness(trigger, moved.triggerAt)).toBeGreaterThanOrEqual(0);
    expect(lateness(trigger, moved.triggerAt)).toBeLessThan(onTimeMs);
    expect(await outcomeOfJob(job)).toEqual({ status: 'superseded' });
    expect(await triggersOf(taskId)).toHaveLength(1);
    expect(await wReload(job._id)).toMatchObject({ status: 'triggered', triggerAt: moved.triggerAt });
  });

  test('claimed ahead, then the task deleted: skipped task_not_found at its triggerAt, as today', async () => {
    const { task, job, taskId } = await urgentTask(700);
    await scan();
    await expectClaimedAhead(job);
    await w.ctx.models.tasks.deleteOne({ _id: task._id }); // behind the API's back, as a race would
    expect(await outcomeOfJob(job)).toEqual({ status: 'skipped', reason: 'task_not_found' });
    const doc = await wReload(job._id);
    expect(doc).toMatchObject({ status: 'skipped', reason: 'task_not_found' });
    expect((doc as any).updatedAt.getTime()).toBeGreaterThanOrEqual(job.triggerAt.getTime());
    expect(await triggersOf(taskId)).toHaveLength(0);
  });

  test('claimed ahead, then the reminder edited to a later time: its message comes at the new time, once', async () => {
    const userId = `ot-${randomUUID()}`;
    const first = new Date(Date.now() + 700);
    const reminder = await createReminder(w.ctx, userId, { message: { title: 'Stretch', summary: 'Stand up.' }, at: first } as ReminderCreateBody);
    const reminderId = String(reminder._id);
    const job = (await wJobs()
      .findOne({ key: `reminder:${reminderId}` })
      .lean<DueJobDoc>())!;
    await scan();
    await expectClaimedAhead(job);
    const later = new Date(Date.now() + 2200);
    await updateReminder(w.ctx, userId, reminderId, { at: later } as any);
    await scan();
    const moved = await wReload(job._id);
    expect(moved).toMatchObject({ status: 'claimed', triggerAt: later });

    expect(await outcomeOfJob(job)).toEqual({ status: 'superseded' });
    expect(await triggersOf(reminderId)).toHaveLength(0);
    const trigger = await firstTrigger(reminderId);
    expect(lateness(trigger, later)).toBeGreaterThanOrEqual(0);
    expect(lateness(trigger, later)).toBeLessThan(onTimeMs);
    expect(await triggersOf(reminderId)).toHaveLength(1);
  });

  test('two scanners (two contexts) claiming ahead over the same jobs: each job fires once', async () => {
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => urgentTask(1200 + i * 100)));
    const other = await createContext(w.config, createLogger('silent'));
    try {
      const results = await Promise.all([scanDueJobs(w.ctx), scanDueJobs(other), scanDueJobs(w.ctx), scanDueJobs(other)]);
      expect(results.reduce((n, r) => n + r.claimed, 0)).toBeLessThanOrEqual(made.length);
    } finally {
      await closeContext(other);
    }
    for (const { job } of made) expect(await wReload(job._id)).toMatchObject({ status: 'claimed' }); // by these scans or the scheduler's
    for (const { job } of made) expect(await outcomeOfJob(job)).toEqual({ status: 'triggered', triggerId: expect.any(String) });
    await sleepUntil(at(500));
    for (const { taskId, job } of made) {
      const triggers = await triggersOf(taskId);
      expect(triggers).toHaveLength(1);
      expect(lateness(triggers[0], job.triggerAt)).toBeGreaterThanOrEqual(0);
    }
  });

  test('claimed ahead, then the Redis keys of the queue prefix deleted: the lease runs out and a later scan fires it', async () => {
    const { job, taskId } = await urgentTask(700);
    await scan();
    await expectClaimedAhead(job);
    const leaseUntil = (await wReload(job._id)).leaseUntil!;
    // Nothing else of this dueflow is running; then everything under its prefix goes (Job Schedulers too).
    await waitFor(async () => (await wQueue().getActiveCount()) === 0, 5000, 'the queue to be idle');
    const keys = await w.ctx.redis.keys(`${w.config.QUEUE_PREFIX}*`);
    expect(keys.length).toBeGreaterThan(0);
    await w.ctx.redis.del(...keys);
    expect(await wQueue().getJob(dueJobJobId(String(job._id), job.triggerAt))).toBeUndefined();
    try {
      // The scanner's ticks (its Job Scheduler went with the keys), until the job fires.
      const trigger = await waitFor(
        async () => {
          await scan();
          await new Promise((r) => setTimeout(r, 200));
          return (await triggersOf(taskId))[0];
        },
        10_000,
        'the job to fire after its lease',
      );
      expect(trigger.createdAt!.getTime()).toBeGreaterThanOrEqual(leaseUntil.getTime());
      const fired = await waitFor(
        async () => {
          const d = await wReload(job._id);
          return d.status === 'triggered' ? d : undefined;
        },
        5000,
        'the due job to be triggered',
      );
      expect(fired).toMatchObject({ attempts: 1, lastError: 'claim lease expired; its job was missing' });
    } finally {
      await upsertJobSchedulers(w.ctx);
    }
  });
});
