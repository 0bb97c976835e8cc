/**
 * Bull Board in a real browser (headless Chromium): an operator replays a dead notification by
 * clicking Retry, and the record ends sent with the replay in its history. Without credentials
 * the board shows no queue data.
 */
import type { Browser, Page } from 'playwright-core';
import { allQueueNames } from '../../queues/names';
import { deliveryJobId } from '../../src/notifications/schemas';
import { asService, asUser, call, notificationBody, userWithBot } from '../support/api';
import { launchBrowser, openPage, screenshot } from '../support/browser';
import { testSecrets, waitFor } from '../support/env';
import type { FeishuServer } from '../support/feishuServer';
import { startFeishuServer } from '../support/feishuServer';
import type { TestDueflow } from '../support/harness';
import { startTestDueflow } from '../support/harness';

let feishu: FeishuServer;
let df: TestDueflow;
let browser: Browser;

beforeAll(async () => {
  [feishu, df, browser] = await Promise.all([startFeishuServer(), startTestDueflow('all'), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await df?.stop();
  await feishu?.close();
});

const admin = { username: testSecrets.ADMIN_USER, password: testSecrets.ADMIN_PASSWORD };

async function recordOf(auth: string, id: string) {
  const res = await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth });
  expect(res.status).toBe(200);
  return res.body;
}

/** Bull Board's card for one job (its class names are generated: match their stable prefixes). */
const jobCard = (page: Page, jobId: string) => page.locator('div[class^="card-"]', { has: page.locator('[class*="jobId"]', { hasText: jobId }) });

test('an operator clicks Retry on the dead job in Bull Board: the record is sent, its history shows the replay', async () => {
  const { userId, token, auth } = await userWithBot(df.baseUrl, feishu);
  // The Feishu-compatible server refuses the first message for good: the record goes dead.
  feishu.failNext(1, { code: 19001 });
  const requested = await call(df.baseUrl, 'POST', '/api/v1/notifications', {
    auth: asService(),
    body: notificationBody(userId, { message: { title: 'Replay me from Bull Board', summary: 'Refused once by Feishu.' } }),
  });
  expect(requested.status).toBe(202);
  const id: string = requested.body.id;
  const jobId = deliveryJobId(id);
  await waitFor(async () => (await recordOf(auth, id)).status === 'dead', 15_000, 'the record to go dead');
  await waitFor(async () => (await df.ctx.queues.notifications.getJob(jobId))?.finishedOn, 5000, 'the job to fail');
  expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(0);

  const { context, page } = await openPage(browser, { httpCredentials: admin });
  try {
    // The board lists the queues; the notifications queue has one failed job: open that list.
    await page.goto(`${df.baseUrl}/admin/queues`);
    await page.locator('a[href="/admin/queues/queue/notifications?status=failed"]').first().click();
    await page.waitForURL(/\/queue\/notifications\?status=failed/);
    const card = jobCard(page, jobId);
    await card.waitFor();
    await screenshot(page, 'bull-board-failed');

    // Retry is the icon button whose tooltip says so; Bull Board asks for confirmation in its own dialog.
    const retry = card.locator('[class*="jobActions"] button').filter({ has: page.locator('svg.lucide-refresh-cw') });
    await retry.hover();
    await page.getByText('Retry', { exact: true }).waitFor();
    await retry.click();
    const dialog = page.getByRole('alertdialog');
    await dialog.getByText('Are you sure that you want to retry this job?').waitFor();
    await dialog.getByRole('button', { name: 'Confirm', exact: true }).click();

    const sent = await waitFor(
      async () => {
        const r = await recordOf(auth, id);
        return r.status === 'sent' ? r : undefined;
      },
      15_000,
      'the record to be sent after the replay',
    );
    expect(sent.history.map((h: { event: string }) => h.event)).toEqual(['requested', 'attempt', 'dead', 'replay', 'attempt']);
    expect(sent.history.find((h: { event: string }) => h.event === 'replay')).toMatchObject({ detail: 'replayed by an operator' });
    expect(feishu.messages.filter((m) => m.token === token)).toHaveLength(1);

    // The board agrees: the job left the failed list and is among the completed ones.
    await page.goto(`${df.baseUrl}/admin/queues/queue/notifications?status=failed`);
    await page.getByText('No failed jobs in this queue.').waitFor();
    await page.goto(`${df.baseUrl}/admin/queues/queue/notifications?status=completed`);
    await jobCard(page, jobId).waitFor();
    await screenshot(page, 'bull-board-replayed');
  } finally {
    await context.close();
  }
});

test('without credentials Bull Board shows no queue data', async () => {
  const { userId } = await userWithBot(df.baseUrl, feishu);
  await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId) });
  const { context, page } = await openPage(browser);
  try {
    // Chromium gets the 401 and its login prompt, which nobody answers: the navigation fails.
    const navigation = await page.goto(`${df.baseUrl}/admin/queues/queue/notifications?status=completed`).then(
      (r) => r,
      (err: Error) => err,
    );
    if (navigation instanceof Error) expect(navigation.message).toContain('ERR_INVALID_AUTH_CREDENTIALS');
    else expect(navigation?.status()).toBe(401);
    const shown = await page
      .locator('body')
      .innerText()
      .catch(() => '');
    for (const name of allQueueNames) expect(shown).not.toContain(name);
    expect(await page.locator('[class*="jobId"]').count()).toBe(0);
    await screenshot(page, 'bull-board-no-credentials');

    // Its API is closed too: no credentials, or a user's token instead of an operator's.
    const anonymous = await context.request.get(`${df.baseUrl}/admin/queues/api/queues`);
    expect(anonymous.status()).toBe(401);
    expect(await anonymous.text()).not.toContain('notifications');
    const withUser = await context.request.get(`${df.baseUrl}/admin/queues/api/queues`, { headers: { authorization: await asUser(userId) } });
    expect(withUser.status()).toBe(401);
  } finally {
    await context.close();
  }
});
