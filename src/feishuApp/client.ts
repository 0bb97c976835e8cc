/**
 * The host product's Feishu/Lark app, through the official SDK: send a card to a person, redraw
 * it, buzz it. The SDK handles the tenant token (cached in Redis, tokenCache.ts); this module turns
 * every answer into an outcome and keeps the token and the app secret out of logs and outcomes.
 */
import * as lark from '@larksuiteoapi/node-sdk';
import axios, { type AxiosInstance, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { redactSecrets } from '../providers/mask';
import type { ProviderOutcome } from '../providers/types';
import { type AppClassification, classifyFeishuAppResponse, classifyTokenResponse, feishuCode, feishuMessage, TOKEN_INVALID_CODES } from './classify';
import { createTokenCache, type FeishuTokenCache, TokenCacheError } from './tokenCache';
import type { AppCallOutcome, FeishuAppApi, SendCardInput } from './types';

export interface FeishuAppDeps {
  config: Pick<Config, 'FEISHU_APP_ID' | 'FEISHU_APP_SECRET' | 'FEISHU_API_BASE' | 'FEISHU_TIMEOUT_MS' | 'QUEUE_PREFIX'>;
  redis: Redis;
  logger: Logger;
}

const TOKEN_PATH = '/open-apis/auth/v3/tenant_access_token/internal';
const MAX_AUDIT_CONTENT_CHARS = 2_000;
const MAX_AUDIT_RESPONSE_CHARS = 2_000;

/**
 * The SDK expects its HTTP instance to resolve with the response body; the status, headers and
 * raw body of each answer ride along on that object under this Symbol, for classification.
 */
const ANSWER = Symbol('feishu-answer');
interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
}

/** The token endpoint gave no token: thrown from the HTTP instance, so the SDK never caches anything. */
class TokenEndpointError extends Error {
  constructor(
    readonly classification: AppClassification,
    readonly answer: { status: number; body: unknown },
  ) {
    super(`Feishu token endpoint: ${classification.code} (HTTP ${answer.status})`);
    this.name = 'TokenEndpointError';
  }
}

export function createFeishuAppApi(deps: FeishuAppDeps): FeishuAppApi {
  const { config, redis } = deps;
  const appId = config.FEISHU_APP_ID;
  const appSecret = config.FEISHU_APP_SECRET;
  if (!appId || !appSecret) throw new Error('createFeishuAppApi needs FEISHU_APP_ID and FEISHU_APP_SECRET (check feishuAppEnabled first)');
  const logger = deps.logger.child({ component: 'feishu-app' });
  const timeoutMs = config.FEISHU_TIMEOUT_MS;
  const secrets = [appSecret];

  // The lock outlives a fetch (bounded by the timeout); waiters give up a little after it.
  const tokenCache = createTokenCache({ redis, prefix: config.QUEUE_PREFIX, appId, lockMs: timeoutMs + 5_000, waitMs: timeoutMs + 1_000 });
  const client = new lark.Client({
    appId,
    appSecret,
    appType: lark.AppType.SelfBuild,
    domain: config.FEISHU_API_BASE,
    // Its interceptor makes it resolve with the body, as the SDK's HttpInstance says; axios' own types cannot show that.
    httpInstance: createHttpInstance(timeoutMs, tokenCache) as unknown as lark.HttpInstance,
    cache: tokenCache,
    logger: sdkLogger(logger, secrets),
    loggerLevel: logger.isLevelEnabled('debug') ? lark.LoggerLevel.debug : lark.LoggerLevel.warn,
  });

  async function call(request: ProviderOutcome['request'], invoke: () => Promise<unknown>): Promise<AppCallOutcome> {
    const started = performance.now();
    let result = await attempt(invoke, timeoutMs);
    // The HTTP instance already dropped the bad token; the retry fetches (or finds) a fresh one.
    if (result.classification.providerCode !== undefined && TOKEN_INVALID_CODES.has(result.classification.providerCode)) {
      result = await attempt(invoke, timeoutMs);
    }
    const { classification, response } = result;
    const messageId = messageIdOf(response?.body);
    const outcome: AppCallOutcome = {
      ...withoutUndefined(classification),
      durationMs: Math.round(performance.now() - started),
      request,
      ...(response ? { response: { status: response.status, body: boundedBody(response.body) } } : {}),
      ...(classification.kind === 'sent' && messageId ? { providerMessageId: messageId } : {}),
    };
    return redactSecrets(outcome, secrets);
  }

  return {
    send(input: SendCardInput) {
      const content = JSON.stringify(input.card);
      const request = {
        url: `/open-apis/im/v1/messages?receive_id_type=${input.receiveIdType}`,
        body: {
          receive_id_type: input.receiveIdType,
          receive_id: input.receiveId,
          msg_type: 'interactive',
          uuid: input.uuid,
          content: cut(content, MAX_AUDIT_CONTENT_CHARS),
        },
      };
      return call(request, () =>
        client.im.message.create({
          params: { receive_id_type: input.receiveIdType },
          data: { receive_id: input.receiveId, msg_type: 'interactive', content, uuid: input.uuid },
        }),
      );
    },

    updateCard(input) {
      const content = JSON.stringify(input.card);
      const path = `/open-apis/im/v1/messages/${encodeURIComponent(input.messageId)}`;
      return call({ url: path, body: { content: cut(content, MAX_AUDIT_CONTENT_CHARS) } }, () =>
        client.im.message.patch({ path: { message_id: input.messageId }, data: { content } }),
      );
    },

    async buzz(input) {
      const path = `/open-apis/im/v1/messages/${encodeURIComponent(input.messageId)}/urgent_app?user_id_type=open_id`;
      const outcome = await call({ url: path, body: { user_id_list: input.openIds } }, () =>
        client.im.message.urgentApp({ path: { message_id: input.messageId }, params: { user_id_type: 'open_id' }, data: { user_id_list: input.openIds } }),
      );
      const invalid = invalidUserIds(outcome.response?.body);
      return invalid.length && outcome.kind === 'sent' ? { ...outcome, detail: `not buzzed (invalid open_id): ${invalid.slice(0, 20).join(', ')}` } : outcome;
    },
  };
}

interface Attempt {
  classification: AppClassification;
  response?: { status: number; body: unknown };
}

async function attempt(invoke: () => Promise<unknown>, timeoutMs: number): Promise<Attempt> {
  try {
    const resolved = await invoke();
    const answer = (resolved as { [ANSWER]?: Answer } | undefined)?.[ANSWER];
    if (!answer) throw new Error("Feishu SDK resolved without an answer from dueflow's HTTP instance");
    return { classification: classifyFeishuAppResponse(answer.status, answer.body, answer.headers), response: { status: answer.status, body: answer.body } };
  } catch (err) {
    if (err instanceof TokenEndpointError) return { classification: err.classification, response: err.answer };
    if (err instanceof TokenCacheError)
      return {
        classification: {
          kind: 'temporary',
          code: err.reason === 'wait_timeout' ? 'provider_timeout' : 'network_error',
          rateLimited: false,
          detail: err.message,
        },
      };
    if (axios.isAxiosError(err)) return { classification: transportFailure(err, timeoutMs) };
    throw err;
  }
}

function transportFailure(err: { code?: string; message: string }, timeoutMs: number): AppClassification {
  if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') {
    return { kind: 'temporary', code: 'provider_timeout', rateLimited: false, detail: `no answer within ${timeoutMs} ms` };
  }
  return { kind: 'temporary', code: 'network_error', rateLimited: false, detail: err.code ? `${err.code}: ${err.message}` : err.message };
}

/**
 * Never throws for an HTTP answer (validateStatus) and follows no redirect (the token request
 * carries the app secret). On 99991663/99991664 it drops the token the request carried.
 */
function createHttpInstance(timeoutMs: number, tokenCache: FeishuTokenCache): AxiosInstance {
  const http = axios.create({ timeout: timeoutMs, validateStatus: () => true, maxRedirects: 0 });
  http.interceptors.response.use(
    async (resp: AxiosResponse) => {
      const answer: Answer = { status: resp.status, headers: plainHeaders(resp.headers), body: resp.data };
      if (isTokenRequest(resp.config)) {
        const data = resp.data as { tenant_access_token?: unknown } | undefined;
        if (resp.status >= 200 && resp.status < 300 && feishuCode(data) === 0 && typeof data?.tenant_access_token === 'string' && data.tenant_access_token)
          return data;
        await tokenCache.abandonFetch();
        const body = { code: feishuCode(data), msg: feishuMessage(data) };
        throw new TokenEndpointError(classifyTokenResponse(answer.status, answer.body, answer.headers), { status: answer.status, body });
      }
      const code = feishuCode(resp.data);
      if (code !== undefined && TOKEN_INVALID_CODES.has(code)) {
        const bearer = bearerOf(resp.config);
        if (bearer) await tokenCache.invalidate(bearer);
      }
      const carrier = resp.data !== null && typeof resp.data === 'object' ? resp.data : {};
      Object.defineProperty(carrier, ANSWER, { value: answer, enumerable: false });
      return carrier;
    },
    async (err: unknown) => {
      if (axios.isAxiosError(err) && err.config && isTokenRequest(err.config)) await tokenCache.abandonFetch();
      throw err;
    },
  );
  return http;
}

function isTokenRequest(config: InternalAxiosRequestConfig): boolean {
  return pathOf(config.url) === TOKEN_PATH;
}

function bearerOf(config: InternalAxiosRequestConfig): string | undefined {
  const raw = config.headers?.get?.('Authorization') ?? config.headers?.Authorization;
  return typeof raw === 'string' && raw.startsWith('Bearer ') ? raw.slice('Bearer '.length) : undefined;
}

function plainHeaders(headers: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (headers === null || typeof headers !== 'object') return out;
  const entries =
    typeof (headers as { toJSON?: unknown }).toJSON === 'function'
      ? Object.entries((headers as { toJSON(): Record<string, unknown> }).toJSON())
      : Object.entries(headers as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v === 'string') out[k.toLowerCase()] = v;
    else if (Array.isArray(v)) out[k.toLowerCase()] = v.join(', ');
    else if (typeof v === 'number') out[k.toLowerCase()] = String(v);
  }
  return out;
}

function pathOf(url: string | undefined): string {
  if (!url) return '';
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0];
  }
}

/** The SDK logs whole axios errors (request config: Authorization, app_secret); only a one-line summary gets through. */
function sdkLogger(logger: Logger, secrets: string[]): lark.Logger {
  const line = (args: unknown[]) => redactSecrets(summarize(args, 0), secrets);
  return {
    error: (...args: unknown[]) => logger.warn(`feishu sdk: ${line(args)}`),
    warn: (...args: unknown[]) => logger.warn(`feishu sdk: ${line(args)}`),
    info: (...args: unknown[]) => logger.debug(`feishu sdk: ${line(args)}`),
    debug: (...args: unknown[]) => logger.debug(`feishu sdk: ${line(args)}`),
    trace: (...args: unknown[]) => logger.trace(`feishu sdk: ${line(args)}`),
  };
}

function summarize(value: unknown, depth: number): string {
  // URLs in the SDK's own lines keep their path only.
  if (typeof value === 'string') return value.replace(/\?[^\s]*/g, '').slice(0, 200);
  if (Array.isArray(value))
    return depth > 3
      ? '[…]'
      : value
          .map((v) => summarize(v, depth + 1))
          .filter(Boolean)
          .join(' | ');
  if (value instanceof TokenEndpointError)
    return `token endpoint: ${value.classification.code}, HTTP ${value.answer.status}${value.classification.providerCode !== undefined ? `, code ${value.classification.providerCode}` : ''}`;
  if (value instanceof TokenCacheError) return value.message;
  if (axios.isAxiosError(value)) {
    const status = value.response?.status;
    return `${(value.config?.method ?? '?').toUpperCase()} ${pathOf(value.config?.url)} ${status !== undefined ? `HTTP ${status}` : (value.code ?? '')}: ${value.message}`;
  }
  if (value instanceof Error) return `${value.name}: ${value.message}`.slice(0, 200);
  if (value !== null && typeof value === 'object') {
    // formatErrors' shapes: {message, config: {method, url}, response: {status}} and the answer body {code, msg}.
    const v = value as { message?: unknown; config?: { method?: unknown; url?: unknown }; response?: { status?: unknown }; code?: unknown; msg?: unknown };
    const parts: string[] = [];
    if (v.config) parts.push(`${String(v.config.method ?? '?').toUpperCase()} ${pathOf(typeof v.config.url === 'string' ? v.config.url : undefined)}`);
    if (v.response && typeof v.response.status === 'number') parts.push(`HTTP ${v.response.status}`);
    if (typeof v.message === 'string') parts.push(v.message.slice(0, 200));
    if (typeof v.code === 'number' || typeof v.code === 'string') parts.push(`code ${String(v.code).slice(0, 20)}`);
    if (typeof v.msg === 'string') parts.push(v.msg.slice(0, 200));
    return parts.join(' ');
  }
  return value === undefined || value === null ? '' : String(value).slice(0, 50);
}

function messageIdOf(body: unknown): string | undefined {
  const id = (body as { data?: { message_id?: unknown } } | undefined)?.data?.message_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function invalidUserIds(body: unknown): string[] {
  const list = (body as { data?: { invalid_user_id_list?: unknown } } | undefined)?.data?.invalid_user_id_list;
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

/** Feishu echoes the whole message on a send; the audit record keeps code, msg, the ids and the start. */
function boundedBody(body: unknown): unknown {
  if (typeof body === 'string') return cut(body, MAX_AUDIT_RESPONSE_CHARS);
  const json = JSON.stringify(body) ?? '';
  if (json.length <= MAX_AUDIT_RESPONSE_CHARS) return body;
  const data = (body as { data?: { message_id?: unknown; chat_id?: unknown } } | undefined)?.data;
  return {
    code: feishuCode(body),
    msg: feishuMessage(body),
    ...(data ? { data: { message_id: data.message_id, chat_id: data.chat_id } } : {}),
    truncated: cut(json, MAX_AUDIT_RESPONSE_CHARS / 2),
  };
}

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
