/**
 * Due jobs' locks, on real Redis and FerretDB: the scanner writes a due job under `due-job:<id>`
 * where the store needs it (db/guarded.ts), so every other writer must hold it too, or on FerretDB
 * v1 its write lands between the scanner's read and write-back and is lost. Here the test holds the
 * lock: a firing's outcome (a task's, a reminder's) and a task's sync wait for it, then land.
 * On an atomic store (MongoDB) nothing waits.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { DueJobDoc } from '../src/db/dueJob';
import { withGuardLock } from '../src/db/guardLock';
import { lockName } from '../src/db/guarded';
import { syncDueJobForTask } from '../src/scheduling/dueJobs';
import { fireDueJob } from '../src/scheduling/fireDueJob';
import { asUser, call } from './support/api';
import { startTestDueflow, type TestDueflow } from './support/harness';

let df: TestDueflow;

beforeAll(async () => {
  df = await startTestDueflow('api');
});
afterAll(async () => {
  await df?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whole seconds, so a date reads back equal. */
const minutes = (m: number) => new Date(Math.floor((Date.now() + m * 60_000) / 1000) * 1000);
const dueJob = (id: unknown) => df.ctx.models.dueJobs.findById(id).lean<DueJobDoc>();
const locked = () => df.ctx.store.guardedUpdates === 'locked';
const claim = (id: unknown) => df.ctx.models.dueJobs.updateOne({ _id: id }, { $set: { status: 'claimed', claimedAt: new Date(), leaseUntil: minutes(60) } });

/** Starts `write` while holding the due job's lock; answers the job as stored half a second later (still held) and what `write` answered once let go. */
async function whileHeld<T>(id: unknown, write: () => Promise<T>): Promise<{ held: DueJobDoc | null; result: T }> {
  let writing: Promise<T> | undefined;
  const held = await withGuardLock(df.ctx, lockName('due-job', String(id)), async () => {
    writing = write();
    writing.catch(() => undefined); // awaited below, once the lock is let go
    await sleep(500);
    return dueJob(id);
  });
  if (!held.acquired) throw new Error('the due job was locked already');
  return { held: held.value, result: await writing! };
}

test("a task due job's firing outcome waits for the due job's lock", async () => {
  const task = await df.ctx.models.tasks.create({ userId: `u-${randomUUID()}`, title: 'Read chapter 3', priority: 3, urgencyThresholdAt: minutes(-5) });
  const job = (await syncDueJobForTask(df.ctx, task.toObject()))!;
  await claim(job._id);

  const { held, result } = await whileHeld(job._id, () => fireDueJob(df.ctx, String(job._id)));
  expect(held?.status).toBe(locked() ? 'claimed' : 'skipped');
  expect(result).toEqual({ status: 'skipped', reason: 'task_not_important' });
  expect(await dueJob(job._id)).toMatchObject({ status: 'skipped', reason: 'task_not_important' });
});

test("a task PATCH moves its due job only once the due job's lock is free", async () => {
  const auth = await asUser(`u-${randomUUID()}`);
  const [t1, t2] = [minutes(120), minutes(180)];
  const created = await call(df.baseUrl, 'POST', '/api/v1/tasks', {
    auth,
    body: { title: 'Write the report', priority: 1, urgencyThresholdAt: t1.toISOString() },
  });
  expect(created.status).toBe(201);
  const job = (await df.ctx.models.dueJobs.findOne({ taskId: created.body.id }).lean<DueJobDoc>())!;
  expect(job).toMatchObject({ status: 'pending', thresholdAt: t1 });

  const patch = () => call(df.baseUrl, 'PATCH', `/api/v1/tasks/${created.body.id}`, { auth, body: { urgencyThresholdAt: t2.toISOString() } });
  const { held, result } = await whileHeld(job._id, patch);
  expect(held?.thresholdAt).toEqual(locked() ? t1 : t2);
  expect(result.status).toBe(200);
  expect(await dueJob(job._id)).toMatchObject({ status: 'pending', triggerAt: t2, thresholdAt: t2 });
});

test("a reminder due job's firing outcome waits for the due job's lock (taken inside the reminder's)", async () => {
  const reminderId = String(new Types.ObjectId()); // no such reminder: the firing skips the job
  const at = minutes(-1);
  const job = await df.ctx.models.dueJobs.create({
    userId: `u-${randomUUID()}`,
    key: `reminder:${reminderId}`,
    kind: 'reminder',
    reminderId,
    triggerAt: at,
    thresholdAt: at,
    status: 'claimed',
    claimedAt: new Date(),
    leaseUntil: minutes(60),
  });

  const { held, result } = await whileHeld(job._id, () => fireDueJob(df.ctx, String(job._id)));
  expect(held?.status).toBe(locked() ? 'claimed' : 'skipped');
  expect(result).toEqual({ status: 'skipped', reason: 'reminder_not_found' });
});
