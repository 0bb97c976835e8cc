/** Feishu custom group bot: POST open-apis/bot/v2/hook/<token>, optional signature, text / post / card. */
import { createHmac } from 'node:crypto';
import { classifyTransportFailure, DEFAULT_TIMEOUT_MS, type NetworkGuard, fitMessage, MAX_BODY_BYTES, postJson } from './http';
import { maskWebhookUrl, redactSecrets, webhookUrlSecrets } from './mask';
import type { Classification, Delivery, FeishuBotChannel, NotificationMessage, Provider, ProviderOutcome } from './types';

const DEFAULT_ACTION_TEXT = '查看详情';

/** Feishu codes that will fail the same way however often they are retried. */
const PERMANENT_CODES: Record<number, string> = {
  9499: 'bad request: malformed body or over the size limit',
  19001: 'webhook access token invalid',
  19002: 'param invalid',
  19021: 'signature mismatch or timestamp not within 1 hour',
  19022: 'IP not allowed',
  19024: 'keyword not found',
};
const RATE_LIMITED_CODE = 11232;
const INTERNAL_ERROR_CODE = 2200;

/** sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = empty)). The key/message order is Feishu's, the reverse of DingTalk's. */
export function feishuSign(timestampSec: string, secret: string): string {
  return createHmac('sha256', `${timestampSec}\n${secret}`).update('').digest('base64');
}

/** The full body (signed when the channel has a secret), trimmed to fit Feishu's 20 KB limit. */
export function buildFeishuBotBody(channel: FeishuBotChannel, delivery: Delivery, now: Date = new Date()): Record<string, unknown> {
  const signed = signature(channel, now);
  return fitMessage(delivery.message, (m) => ({ ...signed, ...messageBody(channel, m) }));
}

function signature(channel: FeishuBotChannel, now: Date): { timestamp?: string; sign?: string } {
  if (!channel.signingSecret) return {};
  const timestamp = String(Math.floor(now.getTime() / 1000));
  return { timestamp, sign: feishuSign(timestamp, channel.signingSecret) };
}

function messageBody(channel: FeishuBotChannel, message: NotificationMessage): Record<string, unknown> {
  // Feishu looks for the keyword in text and titles (not links); the title is never trimmed first, so it goes there.
  const title = channel.keyword && !message.title.includes(channel.keyword) ? `${channel.keyword} ${message.title}` : message.title;
  const actionText = message.actionText || DEFAULT_ACTION_TEXT;
  switch (channel.format) {
    case 'text': {
      const lines = [title, message.summary, message.actionUrl ? `${actionText}: ${message.actionUrl}` : ''];
      return { msg_type: 'text', content: { text: lines.filter((l) => l !== '').join('\n') } };
    }
    case 'post': {
      const paragraphs: unknown[][] = [[{ tag: 'text', text: message.summary }]];
      if (message.actionUrl) paragraphs.push([{ tag: 'a', text: actionText, href: message.actionUrl }]);
      return { msg_type: 'post', content: { post: { zh_cn: { title, content: paragraphs } } } };
    }
    case 'card': {
      const elements: unknown[] = [{ tag: 'div', text: { tag: 'lark_md', content: message.summary } }];
      if (message.actionUrl) {
        elements.push({
          tag: 'action',
          actions: [{ tag: 'button', text: { tag: 'plain_text', content: actionText }, type: 'primary', url: message.actionUrl }],
        });
      }
      // Custom-bot cards go in a top-level `card`, not inside `content`.
      return {
        msg_type: 'interactive',
        card: { config: { wide_screen_mode: true }, header: { title: { tag: 'plain_text', content: title }, template: 'blue' }, elements },
      };
    }
  }
}

/** Pure: an HTTP answer from the bot webhook → what the caller should do. */
export function classifyFeishuResponse(httpStatus: number, body: unknown): Classification {
  const providerCode = feishuCode(body);
  const msg = feishuMessage(body);
  const base = { httpStatus, providerCode };
  const detail = (text: string) => (msg ? `${text}: ${msg}` : text);

  if (httpStatus >= 300 && httpStatus < 400) {
    return {
      ...base,
      kind: 'permanent',
      code: 'invalid_url',
      rateLimited: false,
      detail: `webhook answered a redirect (HTTP ${httpStatus}); redirects are not followed`,
    };
  }
  if (providerCode === RATE_LIMITED_CODE || httpStatus === 429) {
    return { ...base, kind: 'temporary', code: 'provider_rate_limited', rateLimited: true, detail: detail('Feishu rate limit (5/s, 100/min per bot)') };
  }
  if (providerCode === INTERNAL_ERROR_CODE) {
    return { ...base, kind: 'temporary', code: `feishu_${INTERNAL_ERROR_CODE}`, rateLimited: false, detail: detail('Feishu internal error') };
  }
  if (httpStatus >= 500) return { ...base, kind: 'temporary', code: 'provider_5xx', rateLimited: false, detail: detail(`HTTP ${httpStatus}`) };
  if (providerCode !== undefined && PERMANENT_CODES[providerCode]) {
    return { ...base, kind: 'permanent', code: `feishu_${providerCode}`, rateLimited: false, detail: detail(PERMANENT_CODES[providerCode]) };
  }
  if (httpStatus === 401 || httpStatus === 403) {
    return { ...base, kind: 'permanent', code: 'provider_auth_failed', rateLimited: false, detail: detail(`HTTP ${httpStatus}`) };
  }
  if (httpStatus === 404 || httpStatus === 410) {
    return { ...base, kind: 'permanent', code: 'invalid_url', rateLimited: false, detail: detail(`HTTP ${httpStatus}: no webhook at this URL`) };
  }
  if (httpStatus >= 400) return { ...base, kind: 'permanent', code: 'payload_invalid', rateLimited: false, detail: detail(`HTTP ${httpStatus}`) };
  if (httpStatus >= 200 && httpStatus < 300 && providerCode === 0) return { ...base, kind: 'sent', code: 'ok', rateLimited: false };
  // 2xx without code 0 (unknown code, or no code at all): only code 0 counts as sent.
  return {
    ...base,
    kind: 'permanent',
    code: 'payload_invalid',
    rateLimited: false,
    detail: detail(providerCode === undefined ? `HTTP ${httpStatus} without a Feishu code` : `unknown Feishu code ${providerCode}`),
  };
}

/** `code`, or `StatusCode` in Feishu's older answer form. */
function feishuCode(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { code, StatusCode } = body as { code?: unknown; StatusCode?: unknown };
  const raw = code ?? StatusCode;
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return undefined;
}

function feishuMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { msg, StatusMessage } = body as { msg?: unknown; StatusMessage?: unknown };
  const m = msg ?? StatusMessage;
  return typeof m === 'string' && m !== '' ? m : undefined;
}

export interface FeishuBotProviderOptions {
  timeoutMs?: number;
  guard?: NetworkGuard;
  now?: () => Date;
}

export function createFeishuBotProvider(options: FeishuBotProviderOptions = {}): Provider<FeishuBotChannel> {
  const now = options.now ?? (() => new Date());
  return {
    kind: 'feishu_bot',
    async send(channel, delivery) {
      const body = buildFeishuBotBody(channel, delivery, now());
      const secrets = [...webhookUrlSecrets(channel.webhookUrl), channel.signingSecret, body.sign as string | undefined];
      const { sign: _sign, ...auditBody } = body;
      const request = redactSecrets({ url: maskWebhookUrl(channel.webhookUrl), body: auditBody }, secrets);
      const outcome = (c: Classification, durationMs: number, response?: ProviderOutcome['response']): ProviderOutcome => ({
        ...redactSecrets({ ...c, durationMs, ...(response ? { response } : {}) }, secrets),
        request,
      });

      const json = JSON.stringify(body);
      const bytes = Buffer.byteLength(json, 'utf8');
      if (bytes > MAX_BODY_BYTES) {
        return outcome(
          {
            kind: 'permanent',
            code: 'payload_invalid',
            rateLimited: false,
            detail: `body is ${bytes} bytes even after trimming; Feishu accepts ${MAX_BODY_BYTES}`,
          },
          0,
        );
      }
      const answer = await postJson(channel.webhookUrl, json, { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, guard: options.guard });
      if (!answer.ok) return outcome(classifyTransportFailure(answer), answer.durationMs);
      return outcome(classifyFeishuResponse(answer.status, answer.body), answer.durationMs, { status: answer.status, body: answer.body });
    },
  };
}

export const feishuBotProvider = createFeishuBotProvider();
