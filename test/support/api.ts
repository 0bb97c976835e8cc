/** Small HTTP helpers for tests: real requests against a running dueflow. */
import { randomUUID } from 'node:crypto';
import type { FeishuServer } from './feishuServer';
import { testSecrets, userToken } from './env';
import { capture } from './leakScan';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { auth?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers.authorization = opts.auth;
  let body: string | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] = 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  capture('answers', `${method} ${path} ${res.status} ${text}`);
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const asService = () => `Bearer ${testSecrets.SERVICE_TOKEN}`;
export const asUser = async (userId: string) => `Bearer ${await userToken(userId)}`;
export const asAdmin = () => `Basic ${Buffer.from(`${testSecrets.ADMIN_USER}:${testSecrets.ADMIN_PASSWORD}`).toString('base64')}`;

/** A valid notification request body; override what the test is about. */
export function notificationBody(userId: string, overrides: Record<string, unknown> = {}) {
  return {
    userId,
    dedupeKey: `dk-${Math.random().toString(36).slice(2)}`,
    triggerType: 'important_urgent_task',
    target: { type: 'task', id: 'task-1' },
    message: { title: 'Finish the report', summary: 'Due at 18:00 today, not in your schedule yet.', actionText: 'Open', actionUrl: 'http://dueflow.test/app' },
    ...overrides,
  };
}

export interface BotUserOptions {
  /** The signing secret dueflow is given (and the bot has, unless serverSecret says otherwise). */
  signingSecret?: string;
  /** The secret the Feishu-compatible server checks, when it should differ from dueflow's. */
  serverSecret?: string;
  keyword?: string;
  format?: string;
  enabled?: boolean;
  /** PUT /api/v1/me/settings body, when the test needs settings. */
  settings?: Record<string, unknown>;
}

/** A new user with a feishu_bot channel pointing at a bot registered on the Feishu-compatible server. */
export async function userWithBot(baseUrl: string, feishu: FeishuServer, opts: BotUserOptions = {}) {
  const userId = `u-${randomUUID()}`;
  const token = `bot${randomUUID().replace(/-/g, '')}`;
  feishu.registerBot(token, { secret: opts.serverSecret ?? opts.signingSecret, keyword: opts.keyword });
  const auth = await asUser(userId);
  const res = await call(baseUrl, 'PUT', '/api/v1/notification/channels/feishu_bot', {
    auth,
    body: { enabled: opts.enabled ?? true, webhookUrl: feishu.botUrl(token), signingSecret: opts.signingSecret, format: opts.format, keyword: opts.keyword },
  });
  if (res.status !== 200) throw new Error(`setting the channel answered ${res.status}: ${JSON.stringify(res.body)}`);
  if (opts.settings) {
    const put = await call(baseUrl, 'PUT', '/api/v1/me/settings', { auth, body: opts.settings });
    if (put.status !== 200) throw new Error(`setting the settings answered ${put.status}: ${JSON.stringify(put.body)}`);
  }
  return { userId, token, auth };
}
