/** Pure: a Feishu open-platform answer (IM and token endpoints) → what the caller should do. */
import type { Classification } from '../providers/types';

export type AppClassification = Classification & { retryAfterMs?: number };

/** The token the call carried is invalid or expired: drop it, fetch a new one, retry once. */
export const TOKEN_INVALID_CODES: ReadonlySet<number> = new Set([99991663, 99991664]);
/** 99991400: the gateway's rate limit; 230020: the IM frequency limit. */
export const RATE_LIMIT_CODES: ReadonlySet<number> = new Set([99991400, 230020]);
export const RATE_LIMIT_RESET_HEADER = 'x-ogw-ratelimit-reset';

/** Codes that will fail the same way however often they are retried. */
export const PERMANENT_CODES: Readonly<Record<number, string>> = {
  230001: 'bad parameter or receive_id',
  230002: 'the bot is not in the chat',
  230006: "the app's bot ability is off",
  230013: "the user is outside the app's availability",
  230025: 'message content too long',
  230027: 'the app lacks the permission for this',
  230028: 'content blocked by DLP review',
  230031: 'the message is older than 14 days and can no longer be updated',
  230035: 'sending denied',
  230038: 'cross-tenant message not allowed',
};

type Headers = Record<string, string | undefined>;

/** `random` only picks the 1-2 s wait when Feishu gave no reset header. */
export function classifyFeishuAppResponse(httpStatus: number, body: unknown, headers: Headers, random: () => number = Math.random): AppClassification {
  const providerCode = feishuCode(body);
  const msg = feishuMessage(body);
  const base = { httpStatus, ...(providerCode !== undefined ? { providerCode } : {}) };
  const detail = (text: string) => (msg ? `${text}: ${msg}` : text);

  if (httpStatus === 429 || (providerCode !== undefined && RATE_LIMIT_CODES.has(providerCode))) {
    const retryAfterMs = resetHeaderMs(headers) ?? 1000 + Math.floor(random() * 1000);
    return { ...base, kind: 'temporary', code: 'provider_rate_limited', rateLimited: true, retryAfterMs, detail: detail('Feishu rate limit') };
  }
  if (providerCode !== undefined && TOKEN_INVALID_CODES.has(providerCode)) {
    return { ...base, kind: 'temporary', code: `feishu_${providerCode}`, rateLimited: false, detail: detail('tenant access token invalid or expired') };
  }
  if (httpStatus >= 500) return { ...base, kind: 'temporary', code: 'provider_5xx', rateLimited: false, detail: detail(`HTTP ${httpStatus}`) };
  if (httpStatus >= 300 && httpStatus < 400) {
    return {
      ...base,
      kind: 'permanent',
      code: 'invalid_url',
      rateLimited: false,
      detail: `FEISHU_API_BASE answered a redirect (HTTP ${httpStatus}); redirects are not followed`,
    };
  }
  if (providerCode !== undefined && PERMANENT_CODES[providerCode]) {
    return { ...base, kind: 'permanent', code: `feishu_${providerCode}`, rateLimited: false, detail: detail(PERMANENT_CODES[providerCode]) };
  }
  if (providerCode === 0 && httpStatus >= 200 && httpStatus < 300) return { ...base, kind: 'sent', code: 'ok', rateLimited: false };
  const what = providerCode === undefined ? `HTTP ${httpStatus} without a Feishu code` : `Feishu code ${providerCode} (HTTP ${httpStatus})`;
  return { ...base, kind: 'permanent', code: 'payload_invalid', rateLimited: false, detail: detail(what) };
}

/**
 * The token endpoint's answer when it gave no token: rate limits and 5xx stay temporary;
 * anything else is Feishu refusing the app id / secret (10003, 10014, ...).
 */
export function classifyTokenResponse(httpStatus: number, body: unknown, headers: Headers, random: () => number = Math.random): AppClassification {
  const c = classifyFeishuAppResponse(httpStatus, body, headers, random);
  if (c.kind === 'temporary') return { ...c, detail: `token endpoint: ${c.detail}` };
  if (c.kind === 'sent') return { ...c, kind: 'temporary', code: 'provider_5xx', detail: 'token endpoint answered code 0 without a token' };
  const msg = feishuMessage(body);
  const what = c.providerCode === undefined ? `HTTP ${httpStatus}` : `code ${c.providerCode}`;
  return {
    httpStatus,
    ...(c.providerCode !== undefined ? { providerCode: c.providerCode } : {}),
    kind: 'permanent',
    code: 'feishu_app_credentials_invalid',
    rateLimited: false,
    detail: `Feishu refused FEISHU_APP_ID / FEISHU_APP_SECRET (${what}${msg ? `: ${msg}` : ''})`,
  };
}

function resetHeaderMs(headers: Headers): number | undefined {
  const raw = Object.entries(headers).find(([k]) => k.toLowerCase() === RATE_LIMIT_RESET_HEADER)?.[1];
  if (raw === undefined || raw.trim() === '') return undefined;
  const sec = Number(raw);
  return Number.isFinite(sec) && sec > 0 ? Math.ceil(sec * 1000) : undefined;
}

export function feishuCode(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const raw = (body as { code?: unknown }).code;
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return undefined;
}

export function feishuMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const m = (body as { msg?: unknown }).msg;
  return typeof m === 'string' && m !== '' ? m.slice(0, 300) : undefined;
}
