/**
 * Headless Chromium for the browser tests: Debian's chromium (apt; `scripts/setup.sh --browser`, which
 * scripts/test.sh runs, installs it and the CJK font fonts-noto-cjk), driven by playwright-core. No
 * browser is ever downloaded. Screenshots go to test-output/browser/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const outputDir = path.resolve(__dirname, '../../test-output/browser');

export const viewports = {
  desktop: { width: 1280, height: 900 },
  /** An iPhone SE-sized screen: the narrowest the page is meant for. */
  phone: { width: 375, height: 667 },
};

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: run scripts/setup.sh --browser as root (apt-get install chromium), or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The page is served from dist/web: build it (esbuild, well under a second) before dueflow serves it. */
export const buildUserPage = () => buildWeb();

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors, uncaught exceptions and CSP violations: a page that works has none. */
  problems: string[];
}

export async function openPage(browser: Browser, options: BrowserContextOptions = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: viewports.desktop, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (msg) => {
    // The API's 4xx answers are part of the tests (they are shown next to fields); anything else is a problem.
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text()))
      problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.setDefaultTimeout(10_000);
  return { context, page, problems };
}

/** The whole page from its top (fullPage), or what the window shows now. */
export async function screenshot(page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<string> {
  fs.mkdirSync(outputDir, { recursive: true });
  const file = path.join(outputDir, `${name}.png`);
  const fullPage = opts.fullPage ?? true;
  // From the top, so that a sticky header sits where it belongs.
  if (fullPage) await page.evaluate(() => (globalThis as any).scrollTo(0, 0)); // runs in the page
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** How far the page is wider than the window (0 when nothing sticks out sideways). */
export function horizontalOverflow(page: Page): Promise<number> {
  // Runs in the page (the test code has no DOM types): document.documentElement.scrollWidth - innerWidth.
  return page.evaluate(() => {
    const w = globalThis as any;
    return w.document.documentElement.scrollWidth - w.innerWidth;
  });
}
