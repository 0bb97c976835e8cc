/**
 * What the detector tests share: a real dueflow (all mode, fast retries) with the
 * Feishu-compatible server, whose scanner runs an hour apart so that the tests' own calls (with a
 * chosen `now`) are the only detector runs; and that fixed `now`.
 */
import type { FeishuServer } from './feishuServer';
import { startFeishuServer } from './feishuServer';
import type { TestDueflow } from './harness';
import { startTestDueflow } from './harness';
import { userWithBot } from './api';
import { waitFor } from './env';

export interface DetectorTestEnv {
  df: TestDueflow;
  feishu: FeishuServer;
  /** A user with an enabled feishu_bot channel, and these settings when given. */
  userWithBot(settings?: Record<string, unknown>): ReturnType<typeof userWithBot>;
  /** Waits for the notification record of a trigger to be `sent`, and answers it. */
  sentRecordOf(triggerId: unknown): Promise<any>;
}

/** Starts the servers before the file's tests and stops them after; its fields are set in beforeAll. */
export function detectorTestEnv(): DetectorTestEnv {
  const env = {
    userWithBot: (settings?: Record<string, unknown>) => userWithBot(env.df.baseUrl, env.feishu, settings ? { settings } : {}),
    sentRecordOf: (triggerId: unknown) =>
      waitFor(
        async () => {
          const r = await env.df.ctx.models.notificationRecords.findOne({ triggerId: String(triggerId) }).lean();
          return r && r.status === 'sent' ? r : undefined;
        },
        20_000,
        `the notification of trigger ${triggerId} to be sent`,
      ),
  } as DetectorTestEnv;
  beforeAll(async () => {
    env.feishu = await startFeishuServer();
    env.df = await startTestDueflow('all', { NOTIFY_BACKOFF_MS: '20', NOTIFY_BACKOFF_MAX_MS: '100', SCAN_INTERVAL_MS: '3600000' });
  });
  afterAll(async () => {
    await env.df.stop();
    await env.feishu.close();
  });
  return env;
}

export const MIN = 60_000;
export const TZ = 'Asia/Shanghai';
/** Mon 7 Jan 2030, h:m in Shanghai (UTC+8, no DST); `day` days later. */
export const sh = (h: number, m = 0, day = 0) => new Date(Date.UTC(2030, 0, 7 + day, h - 8, m));

/** Every string in a Feishu body (title, paragraphs, card elements), joined. */
export const textOf = (body: unknown): string =>
  typeof body === 'string'
    ? body
    : Array.isArray(body)
      ? body.map(textOf).join('\n')
      : body && typeof body === 'object'
        ? Object.values(body).map(textOf).join('\n')
        : '';
