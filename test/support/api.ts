/** Small HTTP helpers for tests: real requests against a running dueflow. */
import { testSecrets, userToken } from './env';
import { capture } from './leakScan';

export interface ApiResponse<T = any> { status: number; body: T; headers: Headers }

export async function call<T = any>(baseUrl: string, method: string, path: string, opts: { auth?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers.authorization = opts.auth;
  let body: string | undefined;
  if (opts.raw !== undefined) { body = opts.raw; headers['content-type'] = 'application/json'; }
  else if (opts.body !== undefined) { body = JSON.stringify(opts.body); headers['content-type'] = 'application/json'; }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  capture('answers', `${method} ${path} ${res.status} ${text}`);
  let parsed: any = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
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
