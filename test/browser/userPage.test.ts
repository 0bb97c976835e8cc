/**
 * The user page (/app) in headless Chromium against a real dueflow: set a channel (the API's
 * error shown next to the field, the URL masked once saved), send a test that reaches the
 * Feishu-compatible server, set quiet hours and opt-outs, read recent notifications and their
 * history, and answer suggestions (Confirm makes a block). Desktop and phone widths.
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
import { FeishuServer, startFeishuServer } from '../support/feishuServer';
import { startTestDueflow, TestDueflow } from '../support/harness';

let feishu: FeishuServer;
let df: TestDueflow;
let browser: Browser;

beforeAll(async () => {
  await buildUserPage();
  // A failed delivery waits long for its retry: the page shows it failed, whatever the machine's speed.
  [feishu, df, browser] = await Promise.all([startFeishuServer(), startTestDueflow('all', { NOTIFY_BACKOFF_MS: '600000', NOTIFY_BACKOFF_MAX_MS: '600000' }), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await df?.stop();
  await feishu?.close();
});

/** Opens the page the way the host product does: the token in the fragment. */
async function openApp(page: Page, token: string, pathname = '/app'): Promise<void> {
  await page.goto(`${df.baseUrl}${pathname}#token=${token}`);
  await page.locator('#app[data-ready="true"]').waitFor();
}

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
      timeZone: 'Asia/Shanghai', quietHours: { start: '22:00', end: '07:30' }, language: 'en',
      optOutTriggerTypes: ['missed_block'], workingHours: { start: '08:00', end: '22:00' },
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
      timeZone: 'UTC', language: 'en', workingHours: { start: '00:00', end: '23:59' },
      quietHours: { start: hhmm(new Date(Date.now() - 3600_000)), end: hhmm(new Date(Date.now() + 3600_000)) },
      optOutTriggerTypes: ['unfinished_feedback'],
    },
  });
  const token = await userToken(userId);
  const statusOf = async (id: string) => (await call(df.baseUrl, 'GET', `/api/v1/notification/records/${id}`, { auth })).body.status;
  const request = async (title: string, overrides: Record<string, unknown>, until: string) => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId, { message: { title, summary: `About: ${title}` }, ...overrides }) });
    expect(res.status).toBe(202);
    await waitFor(async () => (await statusOf(res.body.id)) === until, 15_000, `"${title}" to be ${until}`);
    return res.body.id as string;
  };
  /** A task that needs a slot, and the suggestion (preview) its trigger ends with. */
  const suggestion = async (title: string) => {
    const task = await call(df.baseUrl, 'POST', '/api/v1/tasks', { auth, body: { title, priority: 1, estimatedMinutes: 60, deadline: new Date(Date.now() + 30 * 3600_000).toISOString() } });
    expect(task.status).toBe(201);
    const trigger = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', { auth, body: { type: 'important_urgent_task', target: { type: 'task', id: task.body.id } } });
    expect(trigger.status).toBe(201);
    const done = await waitFor(async () => {
      const t = (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${trigger.body.id}`, { auth })).body;
      return t.previewId && t.notificationId ? t : undefined;
    }, 20_000, `the suggestion for ${title}`);
    return done.previewId as string;
  };

  const previews = Promise.all([suggestion('Draft the proposal'), suggestion('Review the budget')]);
  const ids = {
    sent: await request('Quarterly report due at 18:00', { urgent: true }, 'sent'),
    dead: await (async () => { feishu.failNext(1, { code: 19001 }); return request('Refused by Feishu', { urgent: true }, 'dead'); })(),
    failed: await (async () => { feishu.failNext(1, { httpStatus: 500 }); return request('Feishu had a hiccup', { urgent: true }, 'failed'); })(),
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
    expect(await page.locator(`.record[data-record-id="${ids.pending}"] .record-title`).innerText()).toBe('<img src=x onerror=alert(1)> Waits for <b>quiet hours</b>');
    expect(await page.locator('.records img, .records b').count()).toBe(0);
    expect(await page.locator(`.record[data-record-id="${ids.skipped}"] .record-problem`).innerText()).toContain('user_opted_out');
    expect(await page.locator(`.record[data-record-id="${ids.failed}"] .record-problem`).innerText()).toMatch(/HTTP 500; next try /);

    const dead = page.locator(`.record[data-record-id="${ids.dead}"]`);
    await dead.locator('summary').click();
    await dead.locator('.history-list li[data-event="dead"]').waitFor();
    expect(await dead.locator('.history-list li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-event')))).toEqual(['requested', 'attempt', 'dead']);
    expect(await dead.locator('.history-list').innerText()).toContain('feishu_19001');
    await screenshot(page, 'user-page-desktop');

    await focused.getByRole('button', { name: 'Confirm' }).click();
    await focused.locator('.preview-result').getByText('Added to your schedule').waitFor();
    expect(await focused.locator('.badge').innerText()).toBe('confirmed');
    const preview = (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/previews/${confirmId}`, { auth })).body;
    expect(preview.status).toBe('confirmed');
    const blocks = await call(df.baseUrl, 'GET', `/api/v1/schedule/blocks?from=${encodeURIComponent(preview.candidate.start)}&to=${encodeURIComponent(preview.candidate.end)}`, { auth });
    expect(blocks.body.items).toEqual([expect.objectContaining({ previewId: confirmId, title: 'Draft the proposal', start: preview.candidate.start, end: preview.candidate.end })]);
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
