/**
 * The user page (/app) in headless Chromium against a real dueflow: set a channel (the API's
 * error shown next to the field, the URL masked once saved), send a test that reaches the
 * Feishu-compatible server, add the app channel next to a bot (and the plain 409 where the
 * deployment has no app), set quiet hours, opt-outs, primary and fallback channels and the
 * escalation delay, read recent notifications and their history (an anomaly's escalation in
 * words), acknowledge an anomaly, and answer suggestions (Confirm makes a block). Desktop and
 * phone widths.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import express from 'express';
import type { Browser, Page } from 'playwright-core';
import { createWebAppRouter } from '../../src/http/routes/app';
import { asService, asUser, call, notificationBody, userWithBot } from '../support/api';
import { buildUserPage, horizontalOverflow, launchBrowser, openPage, screenshot, viewports } from '../support/browser';
import { userToken, waitFor } from '../support/env';
import type { FeishuServer } from '../support/feishuServer';
import { startFeishuServer } from '../support/feishuServer';
import type { TestDueflow } from '../support/harness';
import { startTestDueflow } from '../support/harness';

const app = { appId: 'cli_userpage_app', appSecret: 'userpage-app-secret-never-shown' };

let feishu: FeishuServer;
/** Without a Feishu app (no FEISHU_APP_ID): the app channel answers 409 there. */
let df: TestDueflow;
/** With the host product's app, on the Feishu-compatible server; maintenance every second, so escalation steps come within seconds. */
let appDf: TestDueflow;
let browser: Browser;

beforeAll(async () => {
  await buildUserPage();
  // A failed delivery waits long for its retry: the page shows it failed, whatever the machine's speed.
  [feishu, df, browser] = await Promise.all([
    startFeishuServer({ app }),
    startTestDueflow('all', { NOTIFY_BACKOFF_MS: '600000', NOTIFY_BACKOFF_MAX_MS: '600000' }),
    launchBrowser(),
  ]);
  appDf = await startTestDueflow('all', {
    FEISHU_APP_ID: app.appId,
    FEISHU_APP_SECRET: app.appSecret,
    FEISHU_API_BASE: feishu.url,
    RECONCILE_INTERVAL_MS: '1000',
    SCAN_INTERVAL_MS: '300',
  });
});
afterAll(async () => {
  await browser?.close();
  await Promise.all([df?.stop(), appDf?.stop()]);
  await feishu?.close();
});

/** Opens the page the way the host product does: the token in the fragment. */
async function openApp(page: Page, token: string, pathname = '/app', baseUrl = df.baseUrl): Promise<void> {
  await page.goto(`${baseUrl}${pathname}#token=${token}`);
  await page.locator('#app[data-ready="true"]').waitFor();
}

const hex = () => randomUUID().replace(/-/g, '');
const channelsShown = (page: Page) => page.locator('.channel').evaluateAll((els) => els.map((e) => e.getAttribute('data-channel')));

const fieldError = (page: Page, fieldPath: string) => page.locator(`.field[data-field="${fieldPath}"] .field-error`);

test('/app and /app/previews/:id are served under a strict CSP, the assets cached for good; unbuilt, it is a clear 503', async () => {
  const res = await fetch(`${df.baseUrl}/app`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/html');
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("default-src 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(res.headers.get('cache-control')).toBe('no-cache');
  const html = await res.text();
  expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // no inline script
  expect(html).not.toMatch(/\son\w+=/); // no inline handler

  const preview = await fetch(`${df.baseUrl}/app/previews/${'a'.repeat(24)}`);
  expect([preview.status, await preview.text()]).toEqual([200, html]);
  expect((await fetch(`${df.baseUrl}/app/previews/not-an-id`)).status).toBe(404);

  const js = /src="(\/app\/assets\/app-[^"]+\.js)"/.exec(html)![1];
  const asset = await fetch(`${df.baseUrl}${js}`);
  expect(asset.status).toBe(200);
  expect(asset.headers.get('content-type')).toContain('javascript');
  expect(asset.headers.get('cache-control')).toContain('immutable');
  expect((await fetch(`${df.baseUrl}/app/assets/missing.js`)).status).toBe(404);

  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'dueflow-web-'));
  const bare = express().use(createWebAppRouter(empty)).listen(0, '127.0.0.1');
  try {
    await new Promise((r) => bare.once('listening', r));
    const unbuilt = await fetch(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/app`);
    expect(unbuilt.status).toBe(503);
    expect(((await unbuilt.json()) as any).error).toMatchObject({ code: 'web_app_not_built', message: expect.stringContaining('npm run build') });
  } finally {
    bare.close();
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('a user sets their Feishu bot: the API error shows next to the URL, the URL is masked once saved, Send test reaches Feishu; sign out forgets the token', async () => {
  const userId = `u-${randomUUID()}`;
  const token = await userToken(userId);
  const botToken = `bot${randomUUID().replace(/-/g, '')}`;
  const signingSecret = `sig-${randomUUID()}`;
  feishu.registerBot(botToken, { secret: signingSecret });

  const { context, page, problems } = await openPage(browser);
  try {
    await openApp(page, token);
    // The token left the address bar, and is kept for this tab only.
    expect(page.url()).not.toContain('token=');
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('dueflow.token'))).toBe(token);
    expect(await page.locator('.who code').innerText()).toBe(userId);

    const form = page.locator('form.channel-form');
    await form.locator('input[name="webhookUrl"]').fill('https://example.com/open-apis/bot/v2/hook/abc123');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await fieldError(page, 'webhookUrl').waitFor();
    expect(await fieldError(page, 'webhookUrl').innerText()).toContain('host must be one of');
    expect(await form.locator('input[name="webhookUrl"]').getAttribute('aria-invalid')).toBe('true');
    expect((await call(df.baseUrl, 'GET', '/api/v1/notification/channels', { auth: await asUser(userId) })).body.items).toEqual([]);

    await form.locator('input[name="webhookUrl"]').fill(feishu.botUrl(botToken));
    await form.locator('input[name="signingSecret"]').fill(signingSecret);
    await form.locator('select[name="format"]').selectOption('post');
    await form.getByRole('button', { name: 'Save channel' }).click();
    const card = page.locator('.channel[data-channel="feishu_bot"]');
    await card.waitFor();
    const masked = await card.locator('.masked-url').innerText();
    expect(masked).toContain('/open-apis/bot/v2/hook/bot');
    expect(masked).toContain('…');
    expect(await page.locator('.channel-form .saved').innerText()).toContain(masked);
    // Neither the URL's token nor the secret stays in the page once saved.
    expect(await page.locator('input[name="webhookUrl"]').inputValue()).toBe('');
    const shown = await page.locator('body').innerText();
    expect(shown).not.toContain(botToken);
    expect(shown).not.toContain(signingSecret);
    const stored = await call(df.baseUrl, 'GET', '/api/v1/notification/channels/feishu_bot', { auth: await asUser(userId) });
    expect(stored.body).toMatchObject({ enabled: true, format: 'post', hasSigningSecret: true, webhookUrl: masked });

    await card.getByRole('button', { name: 'Send test' }).click();
    await card.locator('.test-result.ok').waitFor();
    expect(await card.locator('.test-result').innerText()).toContain('delivered');
    // It really went out, signed with the secret the user typed (the server checks it).
    const received = feishu.messages.filter((m) => m.token === botToken);
    expect(received).toHaveLength(1);
    expect(received[0].body.msg_type).toBe('post');
    await screenshot(page, 'user-page-channel-desktop');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('textarea[name="token"]').waitFor();
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('dueflow.token'))).toBeNull();
    // Pasted (as people do: with "Bearer ") it opens the page again.
    await page.locator('textarea[name="token"]').fill(`Bearer ${token}\n`);
    await page.getByRole('button', { name: 'Open my page' }).click();
    await page.locator('#app[data-ready="true"]').waitFor();
    expect(await page.locator('.channel[data-channel="feishu_bot"] .masked-url').innerText()).toBe(masked);
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
});

test('a user sets quiet hours, time zone, language and opt-outs; bad values are named next to their fields', async () => {
  const userId = `u-${randomUUID()}`;
  const { context, page, problems } = await openPage(browser);
  try {
    await openApp(page, await userToken(userId));
    const form = page.locator('form.settings-form');
    await form.locator('input[name="timeZone"]').fill('Mars/Olympus_Mons');
    await form.getByLabel('Hold messages during quiet hours').check();
    await form.locator('input[name="quietHours.start"]').fill('22:00');
    await form.locator('input[name="quietHours.end"]').fill('22:00');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await fieldError(page, 'timeZone').waitFor();
    expect(await fieldError(page, 'timeZone').innerText()).toContain('must be an IANA time zone name');
    expect(await fieldError(page, 'quietHours.end').innerText()).toContain('must differ from start');
    expect(await fieldError(page, 'quietHours.start').isVisible()).toBe(false);

    await form.locator('input[name="timeZone"]').fill('Asia/Shanghai');
    await form.locator('input[name="quietHours.end"]').fill('07:30');
    await form.locator('select[name="language"]').selectOption('en');
    await form.getByLabel('Schedule blocks I missed').check();
    await form.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    expect(await page.locator('.settings-form .field-error:visible').count()).toBe(0);

    const stored = await call(df.baseUrl, 'GET', '/api/v1/me/settings', { auth: await asUser(userId) });
    expect(stored.body).toMatchObject({
      timeZone: 'Asia/Shanghai',
      quietHours: { start: '22:00', end: '07:30' },
      language: 'en',
      optOutTriggerTypes: ['missed_block'],
      workingHours: { start: '08:00', end: '22:00' },
    });
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
});

test('recent notifications with badges and history, suggestions confirmed (a block) and rejected, at desktop and phone widths', async () => {
  const hhmm = (d: Date) => d.toISOString().slice(11, 16);
  // Quiet hours around now: a message that is not urgent waits (pending); urgent ones go out.
  const { userId, auth } = await userWithBot(df.baseUrl, feishu, {
    settings: {
      timeZone: 'UTC',
      language: 'en',
      workingHours: { start: '00:00', end: '23:59' },
      quietHours: { start: hhmm(new Date(Date.now() - 3600_000)), end: hhmm(new Date(Date.now() + 3600_000)) },
      optOutTriggerTypes: ['unfinished_feedback'],
    },
  });
  const token = await userToken(userId);
  const statusOf = async (id: string) => (await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth })).body.status;
  const request = async (title: string, overrides: Record<string, unknown>, until: string) => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', {
      auth: asService(),
      body: notificationBody(userId, { message: { title, summary: `About: ${title}` }, ...overrides }),
    });
    expect(res.status).toBe(202);
    await waitFor(async () => (await statusOf(res.body.id)) === until, 15_000, `"${title}" to be ${until}`);
    return res.body.id as string;
  };
  /** A task that needs a slot, and the suggestion (preview) its trigger ends with. */
  const suggestion = async (title: string) => {
    const task = await call(df.baseUrl, 'POST', '/api/v1/tasks', {
      auth,
      body: { title, priority: 1, estimatedMinutes: 60, deadline: new Date(Date.now() + 30 * 3600_000).toISOString() },
    });
    expect(task.status).toBe(201);
    const trigger = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
      auth,
      body: { type: 'important_urgent_task', target: { type: 'task', id: task.body.id } },
    });
    expect(trigger.status).toBe(201);
    const done = await waitFor(
      async () => {
        const t = (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${trigger.body.id}`, { auth })).body;
        return t.previewId && t.notificationId ? t : undefined;
      },
      20_000,
      `the suggestion for ${title}`,
    );
    return done.previewId as string;
  };

  const previews = Promise.all([suggestion('Draft the proposal'), suggestion('Review the budget')]);
  const ids = {
    sent: await request('Quarterly report due at 18:00', { urgent: true }, 'sent'),
    dead: await (async () => {
      feishu.failNext(1, { code: 19001 });
      return request('Refused by Feishu', { urgent: true }, 'dead');
    })(),
    failed: await (async () => {
      feishu.failNext(1, { httpStatus: 500 });
      return request('Feishu had a hiccup', { urgent: true }, 'failed');
    })(),
    skipped: await request('You opted out of this', { triggerType: 'unfinished_feedback' }, 'skipped'),
    pending: await request('<img src=x onerror=alert(1)> Waits for <b>quiet hours</b>', {}, 'pending'),
  };
  const [confirmId, rejectId] = await previews;

  const { context, page, problems } = await openPage(browser);
  try {
    // The link in a message: the page opens on that suggestion.
    await openApp(page, token, `/app/previews/${confirmId}`);
    const focused = page.locator('.preview.focused');
    expect(await focused.getAttribute('data-preview-id')).toBe(confirmId);
    expect(await focused.locator('.badge').innerText()).toBe('waiting for you');
    const other = page.locator(`.preview[data-preview-id="${rejectId}"]`);
    await other.waitFor();

    for (const [status, id] of Object.entries(ids)) {
      const item = page.locator(`.record[data-record-id="${id}"]`);
      expect(await item.locator('.badge').innerText()).toBe(status);
      expect(await item.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    // User text is text: the markup in the title is shown, never run or rendered.
    expect(await page.locator(`.record[data-record-id="${ids.pending}"] .record-title`).innerText()).toBe(
      '<img src=x onerror=alert(1)> Waits for <b>quiet hours</b>',
    );
    expect(await page.locator('.records img, .records b').count()).toBe(0);
    expect(await page.locator(`.record[data-record-id="${ids.skipped}"] .record-problem`).innerText()).toContain('user_opted_out');
    expect(await page.locator(`.record[data-record-id="${ids.failed}"] .record-problem`).innerText()).toMatch(/HTTP 500; next try /);

    const dead = page.locator(`.record[data-record-id="${ids.dead}"]`);
    await dead.locator('summary').click();
    await dead.locator('.history-list li[data-event="dead"]').waitFor();
    expect(await dead.locator('.history-list li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event')))).toEqual([
      'requested',
      'attempt',
      'dead',
    ]);
    expect(await dead.locator('.history-list').innerText()).toContain('feishu_19001');
    await screenshot(page, 'user-page-desktop');

    await focused.getByRole('button', { name: 'Confirm' }).click();
    await focused.locator('.preview-result').getByText('Added to your schedule').waitFor();
    expect(await focused.locator('.badge').innerText()).toBe('confirmed');
    const preview = (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/previews/${confirmId}`, { auth })).body;
    expect(preview.status).toBe('confirmed');
    const blocks = await call(
      df.baseUrl,
      'GET',
      `/api/v1/schedule/blocks?from=${encodeURIComponent(preview.candidate.start)}&to=${encodeURIComponent(preview.candidate.end)}`,
      { auth },
    );
    expect(blocks.body.items).toEqual([
      expect.objectContaining({ previewId: confirmId, title: 'Draft the proposal', start: preview.candidate.start, end: preview.candidate.end }),
    ]);
    expect(await focused.locator('.preview-result').getAttribute('data-block-id')).toBe(blocks.body.items[0].id);

    await screenshot(page, 'user-page-desktop-confirmed');
    await screenshot(page, 'user-page-desktop-top', { fullPage: false });
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }

  // On a phone, from the link in the other message: the page opens on that suggestion, which is rejected.
  const phone = await openPage(browser, { viewport: viewports.phone, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  try {
    await openApp(phone.page, token, `/app/previews/${rejectId}`);
    expect(await horizontalOverflow(phone.page)).toBeLessThanOrEqual(0);
    const focused = phone.page.locator('.preview.focused');
    expect(await focused.getAttribute('data-preview-id')).toBe(rejectId);
    expect(await focused.isVisible()).toBe(true);
    await screenshot(phone.page, 'user-page-phone-preview', { fullPage: false });
    await focused.getByRole('button', { name: 'Reject' }).tap();
    await focused.getByText('Rejected: nothing changes in your schedule.').waitFor();
    expect((await call(df.baseUrl, 'GET', `/api/v1/active-schedule/previews/${rejectId}`, { auth })).body.status).toBe('rejected');

    const dead = phone.page.locator(`.record[data-record-id="${ids.dead}"]`);
    await dead.locator('summary').tap();
    await dead.locator('.history-list li[data-event="dead"]').waitFor();
    // Long lines (URLs, error details, history) wrap instead of widening the page.
    expect(await horizontalOverflow(phone.page)).toBeLessThanOrEqual(0);
    await dead.scrollIntoViewIfNeeded();
    await screenshot(phone.page, 'user-page-phone-history', { fullPage: false });
    await screenshot(phone.page, 'user-page-phone');
    expect(phone.problems).toEqual([]);
  } finally {
    await phone.context.close();
  }
});

test('a user adds the app channel next to their group bot: both are shown and kept, Send test reaches the app bot, an email is shown masked', async () => {
  const { userId, auth } = await userWithBot(appDf.baseUrl, feishu);
  const openId = `ou_${hex()}`;
  const email = `pat.${hex().slice(0, 8)}@example.com`;
  feishu.app.registerUser({ openId, email });

  const { context, page, problems } = await openPage(browser);
  try {
    await openApp(page, await userToken(userId), '/app', appDf.baseUrl);
    expect(await channelsShown(page)).toEqual(['feishu_bot']);
    // With a bot set up, the form offers the kind not set up yet, and says the bot stays.
    const form = page.locator('form.channel-form');
    expect(await form.locator('select[name="channel"]').inputValue()).toBe('feishu_app');
    expect(await form.locator('h3').innerText()).toBe('Add another channel');

    await form.locator('select[name="receiveIdType"]').selectOption('open_id');
    await form.locator('input[name="receiveId"]').fill('pat@example.com');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await fieldError(page, 'receiveId').waitFor();
    expect(await fieldError(page, 'receiveId').innerText()).toContain('must be an open_id');

    await form.locator('input[name="receiveId"]').fill(openId);
    await form.getByRole('button', { name: 'Save channel' }).click();
    const appCard = page.locator('.channel[data-channel="feishu_app"]');
    await appCard.waitFor();
    expect(await channelsShown(page)).toEqual(['feishu_app', 'feishu_bot']);
    expect(await appCard.locator('.receive-id').innerText()).toBe(openId);
    expect(await page.locator('.channel-form .saved').innerText()).toContain(openId);
    // Both enabled and no primary chosen: the app comes first, as the server decides.
    expect(await appCard.locator('[data-route="primary"]').innerText()).toBe('messages go here');
    expect(await page.locator('.channel[data-channel="feishu_bot"] [data-route]').count()).toBe(0);
    const listed = await call(appDf.baseUrl, 'GET', '/api/v1/notification/channels', { auth });
    expect(listed.body.items.map((c: any) => c.channel)).toEqual(['feishu_app', 'feishu_bot']);

    await appCard.getByRole('button', { name: 'Send test' }).click();
    await appCard.locator('.test-result.ok').waitFor();
    expect(await appCard.locator('.test-result').innerText()).toContain('direct message');
    expect(feishu.app.messagesTo(openId)).toHaveLength(1);
    await screenshot(page, 'user-page-channels-app-desktop');

    // Changed to an email: it comes back masked, and the bot is still there.
    await appCard.getByRole('button', { name: 'Change' }).click();
    expect(await form.locator('h3').innerText()).toBe('Change the Feishu / Lark app (direct messages)');
    await form.locator('select[name="receiveIdType"]').selectOption('email');
    await form.locator('input[name="receiveId"]').fill(email);
    await form.getByRole('button', { name: 'Save channel' }).click();
    await appCard.locator('.receive-id', { hasText: '@example.com' }).waitFor();
    const masked = await appCard.locator('.receive-id').innerText();
    expect(masked).toContain('…');
    expect(await page.locator('body').innerText()).not.toContain(email);
    expect(await page.locator('input[name="receiveId"]').inputValue()).toBe('');
    expect((await call(appDf.baseUrl, 'GET', '/api/v1/notification/channels/feishu_app', { auth })).body).toMatchObject({
      receiveIdType: 'email',
      receiveId: masked,
      enabled: true,
    });
    expect(await channelsShown(page)).toEqual(['feishu_app', 'feishu_bot']);
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }

  const phone = await openPage(browser, { viewport: viewports.phone, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  try {
    await openApp(phone.page, await userToken(userId), '/app', appDf.baseUrl);
    expect(await channelsShown(phone.page)).toEqual(['feishu_app', 'feishu_bot']);
    expect(await horizontalOverflow(phone.page)).toBeLessThanOrEqual(0);
    await phone.page.locator('#channel').scrollIntoViewIfNeeded();
    await screenshot(phone.page, 'user-page-phone-channels', { fullPage: false });
    expect(phone.problems).toEqual([]);
  } finally {
    await phone.context.close();
  }
});

test('where the deployment has no Feishu app, adding the app channel says so plainly, and the bot stays', async () => {
  const { userId, auth } = await userWithBot(df.baseUrl, feishu);
  const { context, page, problems } = await openPage(browser);
  try {
    await openApp(page, await userToken(userId));
    const form = page.locator('form.channel-form');
    await form.locator('select[name="channel"]').selectOption('feishu_app');
    await form.locator('input[name="receiveId"]').fill(`ou_${hex()}`);
    await form.getByRole('button', { name: 'Save channel' }).click();
    const error = page.locator('.channel-form .form-error');
    await error.waitFor();
    expect(await error.innerText()).toContain('This dueflow has no Feishu app configured');
    expect(await error.innerText()).not.toContain('FEISHU_APP_ID'); // the operator's words stay out of the user's way
    expect(await channelsShown(page)).toEqual(['feishu_bot']);
    const listed = await call(df.baseUrl, 'GET', '/api/v1/notification/channels', { auth });
    expect(listed.body.items.map((c: any) => c.channel)).toEqual(['feishu_bot']);
    await screenshot(page, 'user-page-channel-app-off');
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
});

test('a user chooses the primary and fallback channels and the escalation delay; a fallback equal to the primary is named next to it', async () => {
  const { userId, auth } = await userWithBot(df.baseUrl, feishu);
  const { context, page, problems } = await openPage(browser);
  try {
    await openApp(page, await userToken(userId));
    const form = page.locator('form.settings-form');
    expect(await form.locator('select[name="primaryChannel"]').inputValue()).toBe('');
    expect(await form.locator('select[name="fallbackChannel"]').inputValue()).toBe('');
    expect(await form.locator('input[name="escalation.afterMinutes"]').inputValue()).toBe('15');

    await form.locator('select[name="primaryChannel"]').selectOption('feishu_bot');
    await form.locator('select[name="fallbackChannel"]').selectOption('feishu_bot');
    await form.locator('input[name="escalation.afterMinutes"]').fill('5');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await fieldError(page, 'fallbackChannel').waitFor();
    expect(await fieldError(page, 'fallbackChannel').innerText()).toContain('must differ from primaryChannel');
    expect(await form.locator('select[name="fallbackChannel"]').getAttribute('aria-invalid')).toBe('true');
    expect(await fieldError(page, 'primaryChannel').isVisible()).toBe(false);
    expect((await call(df.baseUrl, 'GET', '/api/v1/me/settings', { auth })).body).toMatchObject({ primaryChannel: null, fallbackChannel: null });

    // A channel not set up yet may be chosen: the form says so, the API accepts it.
    await form.locator('select[name="fallbackChannel"]').selectOption('feishu');
    expect(await form.locator('.field[data-field="fallbackChannel"] .channel-note').innerText()).toContain('You have no Feishu Flow webhook yet');
    expect(await form.locator('.field[data-field="primaryChannel"] .channel-note').isVisible()).toBe(false);
    await form.locator('input[name="escalation.afterMinutes"]').fill('0');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await fieldError(page, 'escalation.afterMinutes').waitFor();
    expect(await fieldError(page, 'escalation.afterMinutes').innerText()).toContain('must be at least 0.1');
    expect(await fieldError(page, 'fallbackChannel').isVisible()).toBe(false);
    await screenshot(page, 'user-page-settings-channels-error');

    await form.locator('input[name="escalation.afterMinutes"]').fill('2.5');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    expect((await call(df.baseUrl, 'GET', '/api/v1/me/settings', { auth })).body).toMatchObject({
      primaryChannel: 'feishu_bot',
      fallbackChannel: 'feishu',
      escalation: { afterMinutes: 2.5 },
    });
    expect(await form.locator('select[name="primaryChannel"]').inputValue()).toBe('feishu_bot');
    expect(await form.locator('input[name="escalation.afterMinutes"]').inputValue()).toBe('2.5');
    // The channel cards say where messages go now.
    expect(await page.locator('.channel[data-channel="feishu_bot"] [data-route="primary"]').innerText()).toBe('messages go here (primary)');
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
});

test('a critical anomaly on the page: its marker, its escalation in words, Acknowledge (the API agrees); one acknowledged elsewhere meanwhile ends the same', async () => {
  const userId = `u-${randomUUID()}`;
  const auth = await asUser(userId);
  const openId = `ou_${hex()}`;
  const bot = `bot${hex()}`;
  feishu.app.registerUser({ openId });
  feishu.registerBot(bot);
  const put = async (path: string, body: unknown) => expect((await call(appDf.baseUrl, 'PUT', path, { auth, body })).status).toBe(200);
  await put('/api/v1/notification/channels/feishu_app', { enabled: true, receiveIdType: 'open_id', receiveId: openId });
  await put('/api/v1/notification/channels/feishu_bot', { enabled: true, webhookUrl: feishu.botUrl(bot) });
  const timeZone = 'Asia/Shanghai';
  await put('/api/v1/me/settings', {
    timeZone,
    language: 'en',
    workingHours: { start: '00:00', end: '23:59' },
    primaryChannel: 'feishu_app',
    fallbackChannel: 'feishu_bot',
    escalation: { afterMinutes: 0.1 },
  });

  const report = async (title: string, severity: string, type: string, detail: string) => {
    const res = await call(appDf.baseUrl, 'POST', '/api/v1/anomalies', {
      auth: asService(),
      body: {
        userId,
        type,
        severity,
        targetType: 'server',
        targetId: `srv-${randomUUID()}`,
        title,
        detail,
        occurredAt: new Date().toISOString(),
        idempotencyKey: randomUUID(),
      },
    });
    expect(res.status).toBe(202);
    const recordId: string = await waitFor(
      async () => {
        const view = (await call(appDf.baseUrl, 'GET', `/api/v1/anomalies/${res.body.id}`, { auth: asService() })).body;
        return view.notification?.status === 'sent' ? view.notification.id : undefined;
      },
      15_000,
      `"${title}" to be sent`,
    );
    return { triggerId: res.body.id as string, recordId };
  };
  const record = async (id: string) => (await call(appDf.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth })).body;

  const critical = await report('db-1 disk almost full', 'critical', 'disk_almost_full', 'Disk 97% full.');
  // Nobody acknowledges it: buzzed after 6 s, sent to the fallback bot after 12 s.
  await waitFor(
    async () => (await record(critical.recordId)).history.some((e: any) => e.event === 'escalated' && e.code === 'fallback'),
    30_000,
    'the fallback step',
  );
  const copyId: string = await waitFor(
    async () => {
      const items = (await call(appDf.baseUrl, 'GET', '/api/v1/notification/records', { auth })).body.items;
      return items.find((r: any) => r.triggerId === critical.triggerId && r.id !== critical.recordId && r.status === 'sent')?.id;
    },
    15_000,
    'the fallback copy to be sent',
  );
  const warning = await report('Backup failed', 'warning', 'backup_failed', 'The nightly backup did not finish.');

  // en-GB: 24-hour clock, so the expected time is written the same way here.
  const hhmm = (iso: string) => new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
  const { context, page, problems } = await openPage(browser, { locale: 'en-GB' });
  try {
    await openApp(page, await userToken(userId), '/app', appDf.baseUrl);
    const item = page.locator(`.record[data-record-id="${critical.recordId}"]`);
    const copy = page.locator(`.record[data-record-id="${copyId}"]`);
    const warned = page.locator(`.record[data-record-id="${warning.recordId}"]`);
    expect(await item.locator('.badge-critical').innerText()).toContain('critical');
    expect(await copy.locator('.badge-critical').count()).toBe(1);
    expect(await warned.locator('.badge-critical').count()).toBe(0);
    for (const r of [item, copy, warned]) expect(await r.getByRole('button', { name: 'Acknowledge' }).isVisible()).toBe(true);

    await item.locator('summary').click();
    await item.locator('.history-list li[data-event="escalated"][data-code="fallback"]').waitFor();
    expect(await item.locator('li[data-event="escalated"][data-code="buzz"]').innerText()).toContain('Not acknowledged in time: dueflow buzzed you in Feishu');
    expect(await item.locator('li[data-event="escalated"][data-code="fallback"]').innerText()).toContain(
      'sent to your fallback channel (Feishu / Lark group bot)',
    );
    await item.scrollIntoViewIfNeeded();
    await screenshot(page, 'user-page-anomaly-escalated', { fullPage: false });

    // Acknowledged elsewhere meanwhile (another app, through the API): pressing it here ends the same, at that time.
    const elsewhere = await call(appDf.baseUrl, 'POST', `/api/v1/anomalies/${warning.triggerId}/acknowledge`, { auth });
    expect(elsewhere.status).toBe(200);
    await warned.getByRole('button', { name: 'Acknowledge' }).click();
    await warned.locator('.acknowledged').waitFor();
    expect(await warned.locator('.acknowledged').innerText()).toBe(`✓ Acknowledged at ${hhmm(elsewhere.body.acknowledgedAt)}`);

    await item.getByRole('button', { name: 'Acknowledge' }).click();
    await item.locator('.acknowledged').waitFor();
    const acknowledged = await record(critical.recordId);
    expect(acknowledged.acknowledgedAt).toEqual(expect.any(String));
    expect(acknowledged.history.at(-1)).toMatchObject({ event: 'acknowledged', code: 'app' });
    expect(await item.locator('.acknowledged').innerText()).toBe(`✓ Acknowledged at ${hhmm(acknowledged.acknowledgedAt)}`);
    expect(await item.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    // The fallback copy is the same anomaly: acknowledged with it.
    expect(await copy.locator('.acknowledged').innerText()).toBe(`✓ Acknowledged at ${hhmm(acknowledged.acknowledgedAt)}`);
    expect((await record(copyId)).acknowledgedAt).toBe(acknowledged.acknowledgedAt);
    // The open history is read again: it ends with the acknowledgement, in words.
    await item.locator('.history-list li[data-event="acknowledged"]').waitFor();
    expect(await item.locator('.history-list li[data-event="acknowledged"]').innerText()).toContain('Acknowledged on this page');
    // The API agrees: once is all.
    const again = await call(appDf.baseUrl, 'POST', `/api/v1/anomalies/${critical.triggerId}/acknowledge`, { auth });
    expect([again.status, again.body.error?.code]).toEqual([409, 'already_acknowledged']);
    await screenshot(page, 'user-page-anomaly-acknowledged');

    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    expect(await item.locator('.acknowledged').innerText()).toBe(`✓ Acknowledged at ${hhmm(acknowledged.acknowledgedAt)}`);
    expect(await page.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }

  const phone = await openPage(browser, { viewport: viewports.phone, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'en-GB' });
  try {
    await openApp(phone.page, await userToken(userId), '/app', appDf.baseUrl);
    const item = phone.page.locator(`.record[data-record-id="${critical.recordId}"]`);
    await item.locator('summary').tap();
    await item.locator('.history-list li[data-event="acknowledged"]').waitFor();
    expect(await horizontalOverflow(phone.page)).toBeLessThanOrEqual(0);
    await item.scrollIntoViewIfNeeded();
    await screenshot(phone.page, 'user-page-phone-anomaly', { fullPage: false });
    expect(phone.problems).toEqual([]);
  } finally {
    await phone.context.close();
  }
}, 90_000);
