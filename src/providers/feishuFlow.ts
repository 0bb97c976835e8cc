/** Feishu Flow trigger webhook: POST flow/api/trigger-webhook/<id> with our own JSON event; the flow posts to the user. */
import { classifyTransportFailure, DEFAULT_TIMEOUT_MS, type NetworkGuard, fitMessage, jsonByteLength, MAX_BODY_BYTES, postJson } from './http';
import { maskWebhookUrl, redactSecrets, webhookUrlSecrets } from './mask';
import type { Classification, Delivery, FeishuFlowChannel, NotificationMessage, Provider, ProviderOutcome } from './types';

export const FLOW_EVENT = 'notification.feishu.requested';
export const FLOW_EVENT_VERSION = 1;

/**
 * The event the original product sent. Missing ids are empty strings, not null/absent: a Flow
 * infers its parameter types from a sample body, so every field keeps one type.
 */
export function buildFeishuFlowBody(delivery: Delivery, now: Date = new Date()): Record<string, unknown> {
  return fitMessage(delivery.message, (m: NotificationMessage) => ({
    event: FLOW_EVENT,
    version: FLOW_EVENT_VERSION,
    notification_id: delivery.notificationId,
    user_id: delivery.userId,
    preview_id: delivery.previewId ?? '',
    trigger_id: delivery.triggerId ?? '',
    trigger_type: delivery.triggerType,
    target_type: delivery.target.type,
    target_id: delivery.target.id,
    message: { title: m.title, summary: m.summary, action_text: m.actionText ?? '', action_url: m.actionUrl ?? '' },
    trace_id: delivery.traceId ?? '',
    sent_at: now.toISOString(),
  }));
}

/** Pure: an HTTP answer from the Flow webhook → what the caller should do (feishu.md section 2). */
export function classifyFeishuFlowResponse(httpStatus: number, body: unknown): Classification {
  const providerCode = jsonCode(body);
  const base = { httpStatus, providerCode };
  if (httpStatus >= 200 && httpStatus < 300) {
    if (providerCode !== undefined && providerCode !== 0) {
      return { ...base, kind: 'permanent', code: 'payload_invalid', rateLimited: false, detail: `Flow answered code ${providerCode}${answerMessage(body)}` };
    }
    return { ...base, kind: 'sent', code: 'ok', rateLimited: false };
  }
  if (httpStatus >= 300 && httpStatus < 400) {
    return {
      ...base,
      kind: 'permanent',
      code: 'invalid_url',
      rateLimited: false,
      detail: `webhook answered a redirect (HTTP ${httpStatus}); redirects are not followed`,
    };
  }
  if (httpStatus === 429) return { ...base, kind: 'temporary', code: 'provider_rate_limited', rateLimited: true, detail: 'HTTP 429' };
  if (httpStatus >= 500) return { ...base, kind: 'temporary', code: 'provider_5xx', rateLimited: false, detail: `HTTP ${httpStatus}` };
  if (httpStatus === 401 || httpStatus === 403) {
    return { ...base, kind: 'permanent', code: 'provider_auth_failed', rateLimited: false, detail: `HTTP ${httpStatus}: check the bearer token` };
  }
  if (httpStatus === 404 || httpStatus === 410) {
    return { ...base, kind: 'permanent', code: 'invalid_url', rateLimited: false, detail: `HTTP ${httpStatus}: no flow webhook at this URL` };
  }
  return { ...base, kind: 'permanent', code: 'payload_invalid', rateLimited: false, detail: `HTTP ${httpStatus}${answerMessage(body)}` };
}

function jsonCode(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const code = (body as { code?: unknown }).code;
  if (typeof code === 'number') return code;
  if (typeof code === 'string' && code.trim() !== '' && Number.isFinite(Number(code))) return Number(code);
  return undefined;
}

function answerMessage(body: unknown): string {
  const msg = body !== null && typeof body === 'object' ? (body as { msg?: unknown }).msg : undefined;
  return typeof msg === 'string' && msg !== '' ? `: ${msg}` : '';
}

function messageId(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const data = (body as { data?: unknown }).data;
  const id = data !== null && typeof data === 'object' ? (data as { message_id?: unknown }).message_id : undefined;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

export interface FeishuFlowProviderOptions {
  timeoutMs?: number;
  guard?: NetworkGuard;
  now?: () => Date;
}

export function createFeishuFlowProvider(options: FeishuFlowProviderOptions = {}): Provider<FeishuFlowChannel> {
  const now = options.now ?? (() => new Date());
  return {
    kind: 'feishu',
    async send(channel, delivery) {
      const body = buildFeishuFlowBody(delivery, now());
      const bearer = channel.authType === 'bearer' ? channel.bearerToken : undefined;
      const secrets = [...webhookUrlSecrets(channel.webhookUrl), channel.bearerToken];
      const request = redactSecrets({ url: maskWebhookUrl(channel.webhookUrl), body }, secrets);
      const outcome = (c: Classification & { providerMessageId?: string }, durationMs: number, response?: ProviderOutcome['response']): ProviderOutcome => ({
        ...redactSecrets({ ...c, durationMs, ...(response ? { response } : {}) }, secrets),
        request,
      });

      if (channel.authType === 'bearer' && !bearer) {
        return outcome({ kind: 'permanent', code: 'provider_auth_failed', rateLimited: false, detail: 'auth type is bearer but no token is set' }, 0);
      }
      const bytes = jsonByteLength(body);
      if (bytes > MAX_BODY_BYTES) {
        return outcome(
          {
            kind: 'permanent',
            code: 'payload_invalid',
            rateLimited: false,
            detail: `body is ${bytes} bytes even after trimming; the limit is ${MAX_BODY_BYTES}`,
          },
          0,
        );
      }
      const answer = await postJson(channel.webhookUrl, JSON.stringify(body), {
        headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
        timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        guard: options.guard,
      });
      if (!answer.ok) return outcome(classifyTransportFailure(answer), answer.durationMs);
      const classification = classifyFeishuFlowResponse(answer.status, answer.body);
      const providerMessageId = classification.kind === 'sent' ? messageId(answer.body) : undefined;
      return outcome({ ...classification, ...(providerMessageId ? { providerMessageId } : {}) }, answer.durationMs, {
        status: answer.status,
        body: answer.body,
      });
    },
  };
}

export const feishuFlowProvider = createFeishuFlowProvider();
