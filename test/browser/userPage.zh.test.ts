/**
 * The user page (/app) as a new Chinese-speaking user sees it: no settings of their own (so
 * zh-CN, the default), a Chinese browser, and Chinese data — a group bot with a Chinese keyword,
 * notifications, a warning anomaly and a suggestion whose messages dueflow wrote in zh-CN. The
 * page's own words are English; the user's data must still read as Chinese, not as empty boxes
 * (the CJK font scripts/setup.sh --browser installs), and nothing may run out of its box at
 * desktop or phone width. Screenshots: test-output/browser/user-page-zh-CN-{desktop,phone}.png.
 */
import { randomUUID } from 'node:crypto';
import type { Browser, Locator, Page } from 'playwright-core';
import { asService, call, notificationBody, userWithBot } from '../support/api';
import { buildUserPage, horizontalOverflow, launchBrowser, openPage, screenshot, viewports } from '../support/browser';
import { userToken, waitFor } from '../support/env';
import { startFeishuServer, type FeishuServer } from '../support/feishuServer';
import { startTestDueflow, type TestDueflow } from '../support/harness';

let feishu: FeishuServer;
let df: TestDueflow;
let browser: Browser;

beforeAll(async () => {
  await buildUserPage();
  [feishu, df, browser] = await Promise.all([startFeishuServer(), startTestDueflow('all'), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await df?.stop();
  await feishu?.close();
});

async function openApp(page: Page, token: string): Promise<void> {
  await page.goto(`${df.baseUrl}/app#token=${token}`);
  await page.locator('#app[data-ready="true"]').waitFor();
}

/**
 * Whether these Chinese characters are drawn as glyphs in the element's font: each is drawn on a
 * canvas with the element's computed font. Without a CJK font Chromium draws every one as the same
 * empty box (or nothing), the same as an unassigned code point; real glyphs all differ.
 */
async function cjkGlyphProblem(el: Locator, chars: string[]): Promise<string | null> {
  return el.evaluate((node, list) => {
    const w = globalThis as any;
    const font = w.getComputedStyle(node).fontFamily as string;
    const draw = (ch: string) => {
      const canvas = w.document.createElement('canvas');
      canvas.width = 48;
      canvas.height = 48;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#000';
      ctx.font = `40px ${font}`;
      ctx.textBaseline = 'top';
      ctx.fillText(ch, 4, 4);
      const data: Uint8ClampedArray = ctx.getImageData(0, 0, 48, 48).data;
      let ink = 0;
      let sig = '';
      for (let i = 3; i < data.length; i += 4) {
        if (data[i] > 127) ink++;
        sig += data[i] > 127 ? '1' : '0';
      }
      return { ink, sig };
    };
    const tofu = draw('\u0378'); // unassigned: whatever a missing glyph looks like here
    const drawn = list.map((ch) => ({ ch, ...draw(ch) }));
    const blank = drawn.filter((d) => d.ink === 0).map((d) => d.ch);
    if (blank.length) return `nothing is drawn for ${blank.join('')} in font ${font}`;
    const boxes = drawn.filter((d) => d.sig === tofu.sig).map((d) => d.ch);
    if (boxes.length) return `${boxes.join('')} are drawn as the missing-glyph box in font ${font}`;
    if (new Set(drawn.map((d) => d.sig)).size < drawn.length) return `${list.join('')} are not told apart (the same box each) in font ${font}`;
    return null;
  }, chars);
}

/**
 * Elements whose content is wider than their box: text running out of its card, a row wider than
 * its column. Form fields (which scroll their own text), boxes meant to scroll (overflow-x auto or
 * scroll) and ones meant to cut their text with an ellipsis are left out; of nested offenders only
 * the innermost is named, so the message points at the element to fix.
 */
function overflowingElements(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const w = globalThis as any;
    const doc = w.document;
    const name = (el: any) => {
      const parts: string[] = [];
      for (let e = el; e && e !== doc.body && parts.length < 4; e = e.parentElement) {
        const id = e.id ? `#${e.id}` : '';
        const cls = typeof e.className === 'string' && e.className ? `.${e.className.trim().split(/\s+/).join('.')}` : '';
        const data = ['data-record-id', 'data-preview-id', 'data-channel', 'data-field']
          .map((a) => (e.getAttribute(a) ? `[${a}="${e.getAttribute(a)}"]` : ''))
          .join('');
        parts.unshift(`${e.tagName.toLowerCase()}${id}${cls}${data}`);
        if (id) break;
      }
      return parts.join(' > ');
    };
    const offenders: any[] = [];
    for (const el of doc.body.querySelectorAll('*')) {
      if (['INPUT', 'SELECT', 'TEXTAREA', 'OPTION', 'DATALIST', 'SCRIPT', 'STYLE', 'NOSCRIPT'].includes(el.tagName)) continue;
      const style = w.getComputedStyle(el);
      if (style.display === 'none' || style.display === 'inline' || style.display === 'contents' || el.getClientRects().length === 0) continue;
      if (['auto', 'scroll'].includes(style.overflowX) || style.textOverflow === 'ellipsis') continue;
      if (!el.textContent?.trim()) continue;
      if (el.scrollWidth > el.clientWidth + 1) offenders.push(el);
    }
    return offenders
      .filter((el) => !offenders.some((other) => other !== el && el.contains(other)))
      .map(
        (el) =>
          `${name(el)}: content ${el.scrollWidth}px wide in a ${el.clientWidth}px box (“${(el.innerText || el.textContent).replace(/\s+/g, ' ').trim().slice(0, 40)}”)`,
      );
  });
}

test('a new Chinese-speaking user (zh-CN by default): the Chinese data is drawn in a CJK font and nothing runs out of its box, at desktop and phone widths', async () => {
  // A group bot with a Chinese keyword, and no settings: what the page shows is zh-CN, the default.
  const { userId, auth } = await userWithBot(df.baseUrl, feishu, { keyword: '提醒' });
  const settings = (await call(df.baseUrl, 'GET', '/api/v1/me/settings', { auth })).body;
  expect(settings.language).toBe('zh-CN');

  const notify = async (message: Record<string, unknown>) => {
    const res = await call(df.baseUrl, 'POST', '/api/v1/notifications', { auth: asService(), body: notificationBody(userId, { urgent: true, message }) });
    expect(res.status).toBe(202);
    await waitFor(
      async () => (await call(df.baseUrl, 'GET', `/api/v1/notification/records/${res.body.id}`, { auth })).body.status === 'sent',
      15_000,
      `"${message.title}" to be sent`,
    );
    return res.body.id as string;
  };
  const reportId = await notify({
    title: '提醒：第三季度财务报告今天 18:00 截止',
    summary: '报告还没有排进你的日程。财务部需要在下班前收到终稿，请预留一小时完成数据核对和管理层摘要。',
    actionText: '打开任务',
    actionUrl: 'http://dueflow.test/app',
  });
  const meetingId = await notify({
    title: '提醒：产品评审会议改到明天上午十点（三号会议室）',
    summary: '会议议程：一、新版本功能演示；二、用户反馈汇总；三、下季度路线图讨论。',
  });

  // A warning anomaly from another service: dueflow writes its message in the user's language.
  const anomaly = await call(df.baseUrl, 'POST', '/api/v1/anomalies', {
    auth: asService(),
    body: {
      userId,
      type: 'backup_failed',
      severity: 'warning',
      targetType: 'server',
      targetId: `srv-${randomUUID()}`,
      title: '数据库夜间备份失败',
      detail: '备份任务在 03:15 超时退出，最近一次成功备份是两天前。',
      occurredAt: new Date().toISOString(),
      idempotencyKey: randomUUID(),
    },
  });
  expect(anomaly.status).toBe(202);
  const anomalyRecordId: string = await waitFor(
    async () => {
      const view = (await call(df.baseUrl, 'GET', `/api/v1/anomalies/${anomaly.body.id}`, { auth: asService() })).body;
      return view.notification?.status === 'sent' ? view.notification.id : undefined;
    },
    15_000,
    'the anomaly to be sent',
  );

  // A task that needs a slot: its suggestion's message is dueflow's own, in zh-CN.
  const task = await call(df.baseUrl, 'POST', '/api/v1/tasks', {
    auth,
    body: { title: '撰写年度预算提案', priority: 1, estimatedMinutes: 60, deadline: new Date(Date.now() + 30 * 3600_000).toISOString() },
  });
  expect(task.status).toBe(201);
  const trigger = await call(df.baseUrl, 'POST', '/api/v1/active-schedule/triggers', {
    auth,
    body: { type: 'important_urgent_task', target: { type: 'task', id: task.body.id } },
  });
  expect(trigger.status).toBe(201);
  const previewId: string = await waitFor(
    async () => {
      const t = (await call(df.baseUrl, 'GET', `/api/v1/active-schedule/triggers/${trigger.body.id}`, { auth })).body;
      return t.previewId && t.notificationId ? t.previewId : undefined;
    },
    20_000,
    'the suggestion',
  );

  const token = await userToken(userId);
  const chinese = { locale: 'zh-CN', timezoneId: 'Asia/Shanghai' };
  const { context, page, problems } = await openPage(browser, chinese);
  try {
    await openApp(page, token);
    const report = page.locator(`.record[data-record-id="${reportId}"]`);
    expect(await report.locator('.record-title').innerText()).toBe('提醒：第三季度财务报告今天 18:00 截止');
    expect(await report.getByRole('link').innerText()).toBe('打开任务');
    expect(await page.locator(`.record[data-record-id="${meetingId}"] .record-summary`).innerText()).toContain('下季度路线图讨论');
    expect(await page.locator(`.record[data-record-id="${anomalyRecordId}"] .record-title`).innerText()).toContain('数据库夜间备份失败');
    const preview = page.locator(`.preview[data-preview-id="${previewId}"]`);
    expect(await preview.innerText()).toMatch(/[\u4e00-\u9fff]/); // dueflow's zh-CN suggestion
    expect(await page.locator('.channel[data-channel="feishu_bot"]').innerText()).toContain('提醒');
    expect(await page.locator('select[name="language"]').inputValue()).toBe('zh-CN');

    // Chinese is drawn as Chinese, in the fonts the page asks for: a title, a summary, the dates (zh-CN locale).
    expect(await cjkGlyphProblem(report.locator('.record-title'), ['财', '务', '报', '告', '截', '止'])).toBeNull();
    expect(await cjkGlyphProblem(page.locator(`.record[data-record-id="${meetingId}"] .record-summary`), ['会', '议', '程'])).toBeNull();
    expect(await report.locator('time').innerText()).toMatch(/[年月日]/);

    expect(await overflowingElements(page)).toEqual([]);
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await screenshot(page, 'user-page-zh-CN-desktop');
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }

  const phone = await openPage(browser, { viewport: viewports.phone, isMobile: true, hasTouch: true, deviceScaleFactor: 2, ...chinese });
  try {
    await openApp(phone.page, token);
    // The anomaly's history open too: its lines wrap like the rest.
    const warned = phone.page.locator(`.record[data-record-id="${anomalyRecordId}"]`);
    await warned.locator('summary').tap();
    await warned.locator('.history-list li').first().waitFor();
    expect(await cjkGlyphProblem(phone.page.locator(`.record[data-record-id="${reportId}"] .record-summary`), ['财', '部', '终', '稿'])).toBeNull();
    expect(await horizontalOverflow(phone.page)).toBeLessThanOrEqual(0);
    expect(await overflowingElements(phone.page)).toEqual([]);
    await screenshot(phone.page, 'user-page-zh-CN-phone');
    expect(phone.problems).toEqual([]);
  } finally {
    await phone.context.close();
  }
});
