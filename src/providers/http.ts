/** The one HTTP call every provider makes: POST a JSON string, never follow redirects, bounded in time. */
import { request, type Agent } from 'undici';
import { blockedAddressCode, literalHostProblem } from './addressGuard';
import type { Classification, NotificationMessage } from './types';

export const DEFAULT_TIMEOUT_MS = 5_000;
/** Feishu refuses request bodies over 20 KB (UTF-8 bytes). */
export const MAX_BODY_BYTES = 20 * 1024;
/** Enough of a non-JSON answer (an HTML error page) for the audit record. */
const MAX_TEXT_ANSWER_CHARS = 2_000;

export interface HttpAnswer {
  ok: true;
  status: number;
  /** Parsed JSON when the answer is JSON, otherwise the (truncated) text. */
  body: unknown;
  durationMs: number;
}

export interface HttpFailure {
  ok: false;
  reason: 'timeout' | 'network' | 'invalid_url';
  detail: string;
  durationMs: number;
}

export interface PostOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** SSRF guard (addressGuard.ts): connect only to public addresses. dueflow's providers always set it. */
  guard?: NetworkGuard;
}

export interface NetworkGuard {
  agent: Agent;
  allowLoopback: boolean;
}

export async function postJson(url: string, json: string, options: PostOptions = {}): Promise<HttpAnswer | HttpFailure> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (!isHttpUrl(url)) return { ok: false, reason: 'invalid_url', detail: 'webhook URL must be an http(s) URL', durationMs: 0 };
  const literal = options.guard && literalHostProblem(url, options.guard.allowLoopback);
  if (literal) return { ok: false, reason: 'invalid_url', detail: literal, durationMs: 0 };
  try {
    // undici's request, not fetch: a fraction of fetch's CPU per call (no WHATWG streams), and it
    // follows no redirect: a redirect means the URL is wrong, and following it could hand the payload to someone else.
    const response = await request(url, {
      ...(options.guard ? { dispatcher: options.guard.agent } : {}),
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', ...options.headers },
      body: json,
      // Covers connecting, waiting and reading the body.
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    const text = await response.body.text();
    return { ok: true, status: response.statusCode, body: parseAnswer(text), durationMs: elapsed() };
  } catch (err) {
    const durationMs = elapsed();
    if (isTimeout(err)) return { ok: false, reason: 'timeout', detail: `no answer within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`, durationMs };
    if (asErrorLike(err)?.code === blockedAddressCode || asErrorLike(asErrorLike(err)?.cause)?.code === blockedAddressCode)
      return { ok: false, reason: 'invalid_url', detail: networkDetail(err), durationMs };
    return { ok: false, reason: 'network', detail: networkDetail(err), durationMs };
  }
}

/** The classification for a request that got no HTTP answer. */
export function classifyTransportFailure(failure: HttpFailure): Classification {
  switch (failure.reason) {
    case 'timeout':
      return { kind: 'temporary', code: 'provider_timeout', rateLimited: false, detail: failure.detail };
    case 'network':
      return { kind: 'temporary', code: 'network_error', rateLimited: false, detail: failure.detail };
    case 'invalid_url':
      return { kind: 'permanent', code: 'invalid_url', rateLimited: false, detail: failure.detail };
  }
}

export function jsonByteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

const ELLIPSIS = '…';

/**
 * Builds the body with the longest summary (then, if that is not enough, the longest title)
 * that keeps the JSON under `maxBytes`. Trimmed text ends with an ellipsis. Cuts on code points,
 * so no character is split. Returns the best effort even if it still does not fit; callers check.
 */
export function fitMessage<B>(message: NotificationMessage, build: (m: NotificationMessage) => B, maxBytes = MAX_BODY_BYTES): B {
  const full = build(message);
  if (jsonByteLength(full) <= maxBytes) return full;
  const summaryChars = Array.from(message.summary);
  const withSummary = (n: number) => build({ ...message, summary: trimmed(summaryChars, n) });
  const bestSummary = longestFitting(summaryChars.length - 1, (n) => jsonByteLength(withSummary(n)) <= maxBytes);
  if (bestSummary >= 0) return withSummary(bestSummary);
  // Even an empty summary is too big: the title has to give way as well.
  const titleChars = Array.from(message.title);
  const withTitle = (n: number) => build({ ...message, summary: '', title: trimmed(titleChars, n) });
  const bestTitle = longestFitting(titleChars.length - 1, (n) => jsonByteLength(withTitle(n)) <= maxBytes);
  return bestTitle >= 0 ? withTitle(bestTitle) : withTitle(0);
}

function trimmed(chars: string[], n: number): string {
  return n === 0 ? '' : chars.slice(0, n).join('') + ELLIPSIS;
}

/** Largest n in [0, max] with fits(n), or -1; fits is monotone (shorter always fits if longer does). */
function longestFitting(max: number, fits: (n: number) => boolean): number {
  let lo = 0;
  let hi = max;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

function isHttpUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function parseAnswer(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text.length > MAX_TEXT_ANSWER_CHARS ? `${text.slice(0, MAX_TEXT_ANSWER_CHARS)}…` : text;
  }
}

/** Duck-typed: errors from undici may come from another realm (jest's sandbox), so instanceof Error is unreliable. */
interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
}

function asErrorLike(err: unknown): ErrorLike | undefined {
  return err !== null && typeof err === 'object' ? (err as ErrorLike) : undefined;
}

function isTimeout(err: unknown): boolean {
  const name = asErrorLike(err)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** The useful part (ECONNREFUSED …) is the error itself, or its `cause` when it is wrapped. */
function networkDetail(err: unknown): string {
  const e = asErrorLike(err);
  const cause = asErrorLike(e?.cause);
  const source = cause && typeof cause.message === 'string' ? cause : e;
  if (!source || typeof source.message !== 'string') return String(err);
  return typeof source.code === 'string' ? `${source.code}: ${source.message}` : source.message;
}
