/**
 * The MongoDB round trips of one fired due job, the whole chain as the workers run it: the scan's
 * claim, the `due-job` job (fireDueJob), the workflow of its trigger, and the delivery of the
 * notification it requested. Commands are counted per collection (the driver's command
 * monitoring, on a second connection), so a read or write added anywhere in the chain fails here.
 * The user's settings and channels are counted apart: their reads are the user cache's business
 * (settings/cache.ts), cached or not depending on what ran before in the process.
 * Real Redis, real database, the Feishu-compatible server; api mode (no worker of its own): each
 * job is taken from its queue and run as its worker runs it.
 *
 * Before issue #14: 16 commands of the chain's own (+ settings and channels), 18 with the delivery's
 * two; now 11: the claim; the due job, the task and the window's blocks read once (the workflow is
 * run by the `due-job` job with them, its trigger inserted claimed); trigger, preview and record
 * inserted first (no lookups, no idempotency key: the dedupe key names the occurrence); the due job
 * and the trigger settled; the delivery's claim and `sent`.
 */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { userWithBot } from './support/api';
import { commandLog, type CommandLog } from './support/commandLog';
import type { AppContext } from '../src/context';
import { syncDueJobForTask } from '../src/scheduling/dueJobs';
import { scanDueJobs } from '../src/scheduling/scanner';
import { dueJobJobId } from '../src/scheduling/schemas';
import { triggerJobId } from '../src/triggers/schemas';
import { deliverNotification } from '../src/notifications/deliver';
import { createWebhookRateLimiter } from '../src/notifications/webhookRateLimiter';
import { processActiveScheduleJob } from '../processors/activeScheduleTriggered';

let feishu: FeishuServer;
let df: TestDueflow;
let log: CommandLog;
let ctx: AppContext;
let deps: Parameters<typeof deliverNotification>[3];

beforeAll(async () => {
  feishu = await startFeishuServer();
  df = await startTestDueflow('api');
  log = await commandLog(df.config);
  ctx = { ...df.ctx, models: log.models };
  deps = { limiter: createWebhookRateLimiter(df.ctx.redis, { prefix: df.config.QUEUE_PREFIX, perSecond: 100, perMinute: 6000 }) };
});
afterAll(async () => {
  await log?.close();
  await df?.stop();
  await feishu?.close();
});

/** Runs `fn` and answers the commands it sent. */
const counted = async (fn: () => Promise<unknown>): Promise<string[]> => (await log.counted(fn)).commands;

/** Commands per collection ("findAndModify active_schedule_jobs": 2, ...). */
const tally = (sent: string[]) => sent.reduce<Record<string, number>>((t, c) => ({ ...t, [c]: (t[c] ?? 0) + 1 }), {});
const cacheOwned = (c: string) => c.endsWith(' user_settings') || c.endsWith(' notification_channels');

test('one due job fired for a task, its workflow and its delivery: these MongoDB commands, no more', async () => {
  const { userId, token } = await userWithBot(df.baseUrl, feishu);
  const task = await df.ctx.models.tasks.create({
    userId,
    title: `Hand in the thesis ${randomUUID()}`,
    priority: 1,
    estimatedMinutes: 30,
    deadline: new Date(Date.now() + 20 * 3600_000),
    urgencyThresholdAt: new Date(Date.now() - 60_000),
  });
  const dueJob = (await syncDueJobForTask(df.ctx, task.toObject()))!;
  const queue = df.ctx.queues['active-schedule-triggered'];

  // The scan: one query (what is due and the expired claims), then per batch (here of this one job) its claim and the read back of it.
  const scan = await counted(() => scanDueJobs(ctx));
  expect(scan).toEqual(['find active_schedule_jobs', 'update active_schedule_jobs', 'find active_schedule_jobs']);
  const perJob: string[] = scan.slice(1);

  // The `due-job` job, run as the worker runs it: it fires the due job and runs the workflow of its trigger.
  const fireJob = (await queue.getJob(dueJobJobId(String(dueJob._id), dueJob.triggerAt))) as Job;
  let outcome: any;
  const fired = await counted(async () => (outcome = await processActiveScheduleJob(ctx, fireJob)));
  expect(outcome).toEqual({ status: 'triggered', triggerId: expect.stringMatching(/^[0-9a-f]{24}$/) });
  // The job brings its claim: the due job is not read again.
  expect(fired.filter((c) => !cacheOwned(c))).toEqual([
    'find tasks',
    'find schedule_blocks',
    'insert active_schedule_triggers',
    'findAndModify active_schedule_jobs',
    'insert active_schedule_previews',
    'insert notification_records',
    'findAndModify active_schedule_triggers',
  ]);
  perJob.push(...fired);
  // Nothing was left for a `trigger` job.
  expect(await queue.getJob(triggerJobId(outcome.triggerId))).toBeUndefined();
  const trigger = (await df.ctx.models.triggers.findById(outcome.triggerId).lean())!;
  expect(trigger).toMatchObject({ status: 'preview_generated', attempts: 1, dueJobId: String(dueJob._id), source: 'worker_due_job' });
  expect(await df.ctx.models.dueJobs.findById(dueJob._id).lean()).toMatchObject({ status: 'triggered', triggerId: outcome.triggerId });

  // The delivery of the notification the workflow requested.
  const delivered = await counted(() => deliverNotification(ctx, trigger.notificationId!, { attemptsMade: 0, attempts: 5 }, deps));
  expect(delivered.filter((c) => !cacheOwned(c))).toEqual(['findAndModify notification_records', 'update notification_records']);
  perJob.push(...delivered);
  expect(await df.ctx.models.notificationRecords.findById(trigger.notificationId).lean()).toMatchObject({ status: 'sent' });
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);

  const mine = perJob.filter((c) => !cacheOwned(c));
  expect(tally(mine)).toEqual({
    'update active_schedule_jobs': 1,
    'find active_schedule_jobs': 1,
    'findAndModify active_schedule_jobs': 1,
    'find tasks': 1,
    'find schedule_blocks': 1,
    'insert active_schedule_triggers': 1,
    'insert active_schedule_previews': 1,
    'insert notification_records': 1,
    'findAndModify active_schedule_triggers': 1,
    'findAndModify notification_records': 1,
    'update notification_records': 1,
  });
  // 9 of the job's own, and the batch's 2 (shared by every job of a larger batch).
  expect(mine).toHaveLength(11);
  // Settings and channels: at most one read of each by the workflow and one by the delivery (fewer when cached).
  const cached = tally(perJob.filter(cacheOwned));
  process.stdout.write(`per fired job: ${mine.length} MongoDB commands, and of settings and channels ${JSON.stringify(cached)}\n`);
  expect(cached['find user_settings'] ?? 0).toBeLessThanOrEqual(2);
  expect(cached['find notification_channels'] ?? 0).toBeLessThanOrEqual(2);
});
