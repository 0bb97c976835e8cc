/**
 * The app channel end to end, as a person lives it: messages arrive as direct cards from the host
 * product's app bot, the person answers in the chat (Confirm, Reject, Done, Snooze, Acknowledge),
 * the card is redrawn, changes made elsewhere redraw it too, and a critical anomaly nobody
 * acknowledges is buzzed, then sent to the fallback channel. Real dueflow (all mode), real Redis
 * and database, the Feishu-compatible server over real HTTP, callbacks signed and encrypted by it.
 */
import { randomUUID } from 'node:crypto';
import type { FeishuServer } from './support/feishuServer';
import { startFeishuServer } from './support/feishuServer';
import type { TestDueflow } from './support/harness';
import { startTestDueflow } from './support/harness';
import { waitFor } from './support/env';
import { asService, asUser, call, notificationBody } from './support/api';
import { closeContext, createContext } from '../src/context';
import { createLogger } from '../src/logger';
import { escalateAnomalies } from '../src/anomalies/escalation';

const app = {
  appId: 'cli_e2e_app',
  appSecret: 'e2e-app-secret-never-shown',
  encryptKey: 'e2e-encrypt-key-never-shown',
  verificationToken: 'e2e-verification-token-never-shown',
};

let feishu: FeishuServer;
let df: TestDueflow;

beforeAll(async () => {
  feishu = await startFeishuServer({ app });
  df = await startTestDueflow('all', {
    FEISHU_APP_ID: app.appId,
    FEISHU_APP_SECRET: app.appSecret,
    FEISHU_ENCRYPT_KEY: app.encryptKey,
    FEISHU_VERIFICATION_TOKEN: app.verificationToken,
    FEISHU_API_BASE: feishu.url,
    SCAN_INTERVAL_MS: '300',
    RECONCILE_INTERVAL_MS: '1000',
  });
  feishu.app.setCallbackUrl(`${df.baseUrl}/api/v1/feishu/callback`);
});
afterAll(async () => {
  await df.stop();
  await feishu.close();
});

/** A person linked by the host product (service token) to their open_id in its app. */
async function person(settings: Record<string, unknown> = {}) {
  const userId = `u-${randomUUID()}`;
  const openId = `ou_${randomUUID().replace(/-/g, '')}`;
  feishu.app.registerUser({ openId, unionId: `on_${randomUUID().replace(/-/g, '')}` });
  const linked = await call(df.baseUrl, 'PUT', `/api/v1/users/${userId}/notification/channels/feishu_app`, {
    auth: asService(),
    body: { enabled: true, receiveIdType: 'open_id', receiveId: openId },
  });
  expect(linked.status).toBe(200);
  const auth = await asUser(userId);
  const put = await call(df.baseUrl, 'PUT', '/api/v1/me/settings', {
    auth,
    body: { timeZone: 'Asia/Shanghai', workingHours: { start: '00:00', end: '23:59' }, language: 'en', ...settings },
  });
  expect(put.status).toBe(200);
  return { userId, openId, auth };
}

const cardsTo = (openId: string) => feishu.app.messagesTo(openId);
const waitForCards = (openId: string, n: number, timeoutMs = 15_000) =>
  waitFor(() => (cardsTo(openId).length >= n ? cardsTo(openId) : undefined), timeoutMs, `${n} card(s) to ${openId}`);
const texts = (card: any): string => JSON.stringify(card.body.elements);
const record = async (id: string) => (await df.ctx.models.notificationRecords.findById(id).lean())!;
/** The record of a card; the card is at the server a moment before the record says so. */
const recordOfMessage = (messageId: string) =>
  waitFor(() => df.ctx.models.notificationRecords.findOne({ providerMessageId: messageId }).lean(), 10_000, `the record of ${messageId}`);

test('a notification without a channel goes to the person as a card 2.0 with update_multi, and the record keeps its message_id', async () => {
  const { userId, openId } = await person();
  const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  expect(res.status).toBe(202);
  const [msg] = await waitForCards(openId, 1);
  expect(msg.receiveIdType).toBe('open_id');
  expect(msg.msgType).toBe('interactive');
  expect(msg.card.schema).toBe('2.0');
  expect(msg.card.config.update_multi).toBe(true);
  expect(msg.card.header.title.content).toBe('Finish the report');
  expect(msg.uuid).toMatch(/^df-/);
  const r = await waitFor(async () => {
    const x = await record(res.body.id);
    return x.status === 'sent' ? x : undefined;
  });
  expect(r.channel).toBe('feishu_app');
  expect(r.providerMessageId).toBe(msg.messageId);
  // A link button, no answer buttons: a plain message asks nothing.
  expect(feishu.app.buttons(msg.messageId)).toEqual([]);
  expect(texts(msg.card)).toContain('http://dueflow.test/app');
});

test('a suggestion: Confirm in the chat makes the block, the answer redraws the card; a stranger changes nothing', async () => {
  const { openId, auth } = await person();
  const task = await call(df.baseUrl, 'POST', '/api/v1/tasks', {
    auth,
    body: {
      title: 'Write the launch plan',
      priority: 1,
      estimatedMinutes: 30,
      deadline: new Date(Date.now() + 20 * 3600_000).toISOString(),
      urgencyThresholdAt: new Date(Date.now() + 300).toISOString(),
    },
  });
  expect(task.status).toBe(201);
  const [msg] = await waitForCards(openId, 1);
  expect(feishu.app.buttons(msg.messageId).map((b) => b.value.action)).toEqual(['confirm', 'reject']);
  const rec = await recordOfMessage(msg.messageId);
  expect(rec.previewId).toBeTruthy();

  const stranger = `ou_${randomUUID().replace(/-/g, '')}`;
  feishu.app.registerUser({ openId: stranger });
  const refused = await feishu.app.press({ messageId: msg.messageId, action: 'confirm', operatorOpenId: stranger });
  expect(refused.status).toBe(200);
  expect(refused.body.toast.type).toBe('error');
  expect(refused.body.card).toBeUndefined();
  expect((await df.ctx.models.previews.findById(rec.previewId).lean())!.status).toBe('ready');

  const pressed = await feishu.app.press({ messageId: msg.messageId, action: 'confirm' });
  expect(pressed.status).toBe(200);
  expect(pressed.ms).toBeLessThan(3000);
  expect(pressed.body.toast.type).toBe('success');
  expect(pressed.body.toast.content).toMatch(/^Added to your schedule: (Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d\d:\d\d–\d\d:\d\d$/);
  const preview = (await df.ctx.models.previews.findById(rec.previewId).lean())!;
  expect(preview.status).toBe('confirmed');
  const block = await df.ctx.models.scheduleBlocks.findById(preview.blockId).lean();
  expect(block?.previewId).toBe(rec.previewId);
  // The card in the chat is the answer's: no buttons left, the slot named.
  const now = feishu.app.message(msg.messageId)!;
  expect(feishu.app.buttons(msg.messageId)).toEqual([]);
  expect(texts(now.card)).toContain(pressed.body.toast.content);

  // Feishu retries the same event: the same answer, still one block.
  const replay = await feishu.app.press({ messageId: msg.messageId, action: 'confirm', eventId: pressed.eventId });
  expect(replay.body).toEqual(pressed.body);
  expect(await df.ctx.models.scheduleBlocks.countDocuments({ previewId: rec.previewId })).toBe(1);
});

test('a suggestion rejected on /app: the card in the chat is redrawn in place (PATCH), without buttons', async () => {
  const { openId, auth } = await person();
  await call(df.baseUrl, 'POST', '/api/v1/tasks', {
    auth,
    body: {
      title: 'Book the venue',
      priority: 1,
      estimatedMinutes: 30,
      deadline: new Date(Date.now() + 20 * 3600_000).toISOString(),
      urgencyThresholdAt: new Date(Date.now() + 300).toISOString(),
    },
  });
  const [msg] = await waitForCards(openId, 1);
  const rec = await waitFor(async () => {
    const r = await recordOfMessage(msg.messageId);
    return r?.previewId ? r : undefined;
  });
  const updatesBefore = feishu.app.updates.length;
  const rejected = await call(df.baseUrl, 'POST', `/api/v1/active-schedule/previews/${rec.previewId}/reject`, { auth });
  expect(rejected.status).toBe(200);
  await waitFor(() => feishu.app.updates.slice(updatesBefore).find((u) => u.messageId === msg.messageId), 10_000, 'the card redrawn');
  expect(feishu.app.buttons(msg.messageId)).toEqual([]);
  expect(texts(feishu.app.message(msg.messageId)!.card)).toContain('Rejected');
});

test('a reminder: Snooze 10 min sends it once more at that time; Done answers a card once', async () => {
  const { openId, auth } = await person();
  const created = await call(df.baseUrl, 'POST', '/api/v1/reminders', {
    auth,
    body: { message: { title: 'Stretch', summary: 'Stand up and stretch.' }, cron: '*/1 * * * *' },
  });
  expect(created.status).toBe(201);
  // Fire the occurrence now rather than wait for the minute.
  await df.ctx.models.dueJobs.updateOne({ key: `reminder:${created.body.id}` }, { $set: { triggerAt: new Date() } });
  const [msg] = await waitForCards(openId, 1);
  expect(feishu.app.buttons(msg.messageId).map((b) => b.value.action)).toEqual(['done', 'snooze_10m', 'snooze_1h']);

  const pressedAt = Date.now();
  const snoozed = await feishu.app.press({ messageId: msg.messageId, action: 'snooze_10m' });
  expect(snoozed.body.toast.type).toBe('success');
  expect(snoozed.body.toast.content).toMatch(/^Snoozed until \d\d:\d\d$/);
  expect(feishu.app.buttons(msg.messageId)).toEqual([]);
  const rec = await recordOfMessage(msg.messageId);
  expect(rec.reply?.kind).toBe('snoozed');
  const copy = (await df.ctx.models.notificationRecords.findOne({ dedupeKey: `snooze|${String(rec._id)}` }).lean())!;
  expect(copy.status).toBe('pending');
  expect(copy.deferredUntil!.getTime()).toBeGreaterThanOrEqual(pressedAt + 10 * 60_000 - 50);
  expect(copy.deferredUntil!.getTime()).toBeLessThan(pressedAt + 10 * 60_000 + 5000);
  const job = await df.ctx.queues.notifications.getJob(`notification-${String(copy._id)}`);
  expect(await job!.getState()).toBe('delayed');

  // The next occurrence's card: Done, answered once (a second copy of the press changes nothing).
  await waitFor(
    async () => (await df.ctx.models.dueJobs.findOne({ key: `reminder:${created.body.id}` }).lean())?.status === 'pending',
    10_000,
    'the reminder rolled on',
  );
  await df.ctx.models.dueJobs.updateOne({ key: `reminder:${created.body.id}` }, { $set: { triggerAt: new Date() } });
  const [, next] = await waitForCards(openId, 2);
  const done = await feishu.app.press({ messageId: next.messageId, action: 'done' });
  expect(done.body.toast).toEqual({ type: 'success', content: 'Marked as done.' });
  expect(texts(feishu.app.message(next.messageId)!.card)).toMatch(/Done at \d\d:\d\d/);
  const nextRecord = await recordOfMessage(next.messageId);
  expect(nextRecord.reply?.kind).toBe('done');
  expect(await df.ctx.models.notificationRecords.countDocuments({ dedupeKey: `snooze|${String(nextRecord._id)}` })).toBe(0);
});

test('a critical anomaly nobody acknowledges is buzzed, then sent to the fallback channel, each once; Acknowledge stops it', async () => {
  const bot = `bot${randomUUID().replace(/-/g, '')}`;
  feishu.registerBot(bot);
  const { userId, openId, auth } = await person({ escalation: { afterMinutes: 0.1 }, fallbackChannel: 'feishu_bot' });
  expect(
    (await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', { auth, body: { enabled: true, webhookUrl: feishu.botUrl(bot) } })).status,
  ).toBe(200);
  // Two channels enabled: without a primary the person's app bot comes first.
  const anomaly = (title: string) =>
    call(df.baseUrl, 'POST', '/api/v1/anomalies', {
      auth: asService(),
      body: {
        userId,
        type: 'disk_almost_full',
        severity: 'critical',
        targetType: 'server',
        targetId: `srv-${randomUUID()}`,
        title,
        detail: 'Disk 97% full.',
        occurredAt: new Date().toISOString(),
        idempotencyKey: randomUUID(),
      },
    });
  const ignored = await anomaly('db-1 disk almost full');
  expect(ignored.status).toBe(202);
  const [msg] = await waitForCards(openId, 1);
  expect(msg.card.header.template).toBe('red');
  expect(feishu.app.buttons(msg.messageId).map((b) => b.value.action)).toEqual(['acknowledge']);

  await waitFor(() => feishu.app.urgents.find((u) => u.messageId === msg.messageId), 20_000, 'the buzz');
  expect(feishu.app.urgents.find((u) => u.messageId === msg.messageId)!.userIds).toEqual([openId]);
  const fallback = await waitFor(() => feishu.messages.find((m) => m.token === bot), 20_000, 'the fallback message');
  expect(JSON.stringify(fallback.body)).toContain('Escalated: ');
  // The step is written to the trigger, then to the record's history, after the send: wait for the last write.
  const escalated = async () => (await recordOfMessage(msg.messageId)).history.filter((h: any) => h.event === 'escalated').map((h: any) => h.code);
  await waitFor(async () => (await escalated()).length >= 2 || undefined, 10_000, 'both steps in the record history');
  const trigger = (await df.ctx.models.triggers.findById(ignored.body.id).lean())!;
  expect(trigger.escalation).toMatchObject({ step: 2, buzz: { outcome: 'done' }, fallback: { outcome: 'done' } });
  expect(await escalated()).toEqual(['buzz', 'fallback']);
  // Each step once, however many maintenance runs pass.
  await new Promise((r) => setTimeout(r, 2500));
  expect(feishu.app.urgents.filter((u) => u.messageId === msg.messageId)).toHaveLength(1);
  expect(feishu.messages.filter((m) => m.token === bot)).toHaveLength(1);

  const answered = await anomaly('db-2 disk almost full');
  const [, second] = await waitForCards(openId, 2);
  const ack = await feishu.app.press({ messageId: second.messageId, action: 'acknowledge' });
  expect(ack.body.toast.content).toMatch(/^Acknowledged by you at \d\d:\d\d$/);
  expect(feishu.app.buttons(second.messageId)).toEqual([]);
  const view = await call(df.baseUrl, 'POST', `/api/v1/anomalies/${answered.body.id}/acknowledge`, { auth });
  expect(view.status).toBe(409);
  expect(view.body.error.code).toBe('already_acknowledged');
  await new Promise((r) => setTimeout(r, 8000));
  expect(feishu.app.urgents.filter((u) => u.messageId === second.messageId)).toHaveLength(0);
  expect((await df.ctx.models.triggers.findById(answered.body.id).lean())!.escalation).toBeUndefined();
});

test('an anomaly acknowledged on /app redraws its card in the chat', async () => {
  const { userId, openId, auth } = await person();
  const res = await call(df.baseUrl, 'POST', '/api/v1/anomalies', {
    auth: asService(),
    body: {
      userId,
      type: 'backup_failed',
      severity: 'warning',
      targetType: 'server',
      targetId: 'nas-1',
      title: 'Backup failed',
      detail: 'The nightly backup did not finish.',
      occurredAt: new Date().toISOString(),
      idempotencyKey: randomUUID(),
    },
  });
  const [msg] = await waitForCards(openId, 1);
  const before = feishu.app.updates.length;
  const ack = await call(df.baseUrl, 'POST', `/api/v1/anomalies/${res.body.id}/acknowledge`, { auth, headers: { 'x-dueflow-client': 'app' } });
  expect(ack.status).toBe(200);
  expect(ack.body.acknowledgedVia).toBe('app');
  await waitFor(() => feishu.app.updates.slice(before).find((u) => u.messageId === msg.messageId), 10_000, 'the card redrawn');
  expect(texts(feishu.app.message(msg.messageId)!.card)).toMatch(/Acknowledged by you at \d\d:\d\d/);
  const list = await call(df.baseUrl, 'GET', '/api/v1/notification/records', { auth });
  expect(list.body.items[0]).toMatchObject({ replyKind: 'anomaly', severity: 'warning', acknowledgedAt: ack.body.acknowledgedAt });
});

test('escalation steps race from two processes: each step is taken once', async () => {
  const bot = `bot${randomUUID().replace(/-/g, '')}`;
  feishu.registerBot(bot);
  const { userId, openId, auth } = await person({ escalation: { afterMinutes: 60 }, fallbackChannel: 'feishu_bot', primaryChannel: 'feishu_app' });
  expect(
    (await call(df.baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', { auth, body: { enabled: true, webhookUrl: feishu.botUrl(bot) } })).status,
  ).toBe(200);
  const res = await call(df.baseUrl, 'POST', '/api/v1/anomalies', {
    auth: asService(),
    body: {
      userId,
      type: 'queue_stuck',
      severity: 'critical',
      targetType: 'queue',
      targetId: 'billing',
      title: 'Billing queue stuck',
      detail: 'No progress for 10 minutes.',
      occurredAt: new Date().toISOString(),
      idempotencyKey: randomUUID(),
    },
  });
  const [msg] = await waitForCards(openId, 1);
  const rec = await waitFor(async () => {
    const r = await recordOfMessage(msg.messageId);
    return r?.status === 'sent' ? r : undefined;
  });
  const other = await createContext(df.config, createLogger('silent'));
  try {
    // Sent 61 minutes ago as far as escalation can tell: step 1 is due, for both and the running worker.
    await df.ctx.models.notificationRecords.updateOne({ _id: rec._id }, { $set: { sentAt: new Date(Date.now() - 61 * 60_000) } });
    await Promise.all([escalateAnomalies(df.ctx), escalateAnomalies(other), escalateAnomalies(other)]);
    await waitFor(() => feishu.app.urgents.some((u) => u.messageId === msg.messageId), 10_000, 'the buzz');
    await df.ctx.models.notificationRecords.updateOne({ _id: rec._id }, { $set: { sentAt: new Date(Date.now() - 121 * 60_000) } });
    await Promise.all([escalateAnomalies(df.ctx), escalateAnomalies(other), escalateAnomalies(other)]);
    await waitFor(() => feishu.messages.some((m) => m.token === bot), 10_000, 'the fallback');
    await Promise.all([escalateAnomalies(df.ctx), escalateAnomalies(other)]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(feishu.app.urgents.filter((u) => u.messageId === msg.messageId)).toHaveLength(1);
    expect(feishu.messages.filter((m) => m.token === bot)).toHaveLength(1);
    expect((await df.ctx.models.triggers.findById(res.body.id).lean())!.escalation?.step).toBe(2);
  } finally {
    await closeContext(other);
  }
});
