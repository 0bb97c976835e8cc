/**
 * A Feishu-compatible webhook server for tests and the demo (Feishu itself is unreachable from here).
 * It checks what Feishu checks (token, size, JSON, signature, msg_type, keyword, rate limits) and
 * answers with Feishu's codes. HTTP statuses are our choice, documented at ANSWERS below.
 * With `app`, it also serves the Feishu app (open platform) API and sends card callbacks: see feishuApp.ts.
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { feishuSign } from '../../src/providers/feishuBot';
import { maskSecret } from '../../src/providers/mask';
import { createFeishuApp } from './feishuApp';
import type { FeishuApp, FeishuAppOptions, FeishuAppRuntime } from './feishuApp';

export type { AppFault, AppMessage, AppRateLimit, AppUser, CallbackOptions, FeishuApp, FeishuAppOptions, PressOptions, PressResult } from './feishuApp';
export { APP_CONTENT_MAX_BYTES, larkDecrypt, larkEncrypt, larkSignature } from './feishuApp';

export interface BotRegistration {
  secret?: string;
  keyword?: string;
}
export interface FlowRegistration {
  bearerToken?: string;
}

/** An accepted message; `body` is the JSON exactly as received (typed loosely for test assertions). */
export interface AcceptedMessage {
  kind: 'bot' | 'flow';
  token: string;
  body: any;
  receivedAt: number;
}

/**
 * Every request, with the answer it got. `code` is the Feishu code in the answer, when there was one.
 * For kind 'app', bearer tokens and the app secret are masked.
 */
export interface RecordedRequest {
  kind: 'bot' | 'flow' | 'app' | 'other';
  token?: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body?: any;
  httpStatus: number;
  code?: number;
  receivedAt: number;
}

/** What failNext answers with: a Feishu code, an HTTP status, or both; `location` for a 3xx. */
export interface Fault {
  code?: number;
  httpStatus?: number;
  msg?: string;
  location?: string;
}

export interface RateLimit {
  perSecond: number;
  perMinute: number;
}

export interface FeishuServerOptions {
  port?: number;
  host?: string;
  log?: (msg: string) => void;
  /** Accept any bot token / flow id as if registered without secret, keyword or bearer (the demo). */
  autoRegister?: boolean;
  /** Per bot; Feishu's is 5/s and 100/min. `false` turns it off. */
  rateLimit?: RateLimit | false;
  /** Called for every accepted message. */
  onMessage?: (message: AcceptedMessage) => void;
  /** Serve the Feishu app API too; without it, its paths answer as unknown paths. */
  app?: FeishuAppOptions;
}

export interface FeishuServer {
  readonly url: string;
  readonly port: number;
  readonly messages: AcceptedMessage[];
  readonly requests: RecordedRequest[];
  readonly rateLimitedCount: number;
  /** The app API's state and helpers; throws when the server was started without `app`. */
  readonly app: FeishuApp;
  botUrl(token: string): string;
  flowUrl(id: string): string;
  registerBot(token: string, registration?: BotRegistration): void;
  registerFlow(id: string, registration?: FlowRegistration): void;
  failNext(n: number, fault: Fault): void;
  stallNext(n: number, ms: number): void;
  down(): Promise<void>;
  up(): Promise<void>;
  reset(): void;
  waitForMessages(n: number, timeoutMs?: number): Promise<AcceptedMessage[]>;
  close(): Promise<void>;
}

export const FEISHU_MAX_BODY_BYTES = 20 * 1024;
const FEISHU_RATE_LIMIT: RateLimit = { perSecond: 5, perMinute: 100 };
/** Bodies past this are not even buffered (they get 9499 anyway). */
const READ_CAP_BYTES = 1024 * 1024;
const SIGNATURE_WINDOW_SEC = 60 * 60;
const BOT_PATH = /^\/open-apis\/bot\/v2\/hook\/([^/?#]+)$/;
const FLOW_PATH = /^\/flow\/api\/trigger-webhook\/([^/?#]+)$/;

interface Answer {
  httpStatus: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * Feishu's answers. Statuses: errors use HTTP 400 (what Feishu returns for most of them);
 * 11232 uses HTTP 200, so clients must read the JSON code rather than trust the status.
 */
const ANSWERS = {
  ok: (): Answer => ({ httpStatus: 200, body: { code: 0, msg: 'success', data: {} } }),
  badRequest: (): Answer => ({ httpStatus: 400, body: { code: 9499, msg: 'Bad Request', data: {} } }),
  tokenInvalid: (): Answer => ({ httpStatus: 400, body: { code: 19001, msg: 'param invalid: incoming webhook access token invalid', data: {} } }),
  paramInvalid: (what: string): Answer => ({ httpStatus: 400, body: { code: 19002, msg: `params error, ${what}`, data: {} } }),
  signMismatch: (): Answer => ({
    httpStatus: 400,
    body: { code: 19021, msg: 'sign match fail or timestamp is not within one hour from current time', data: {} },
  }),
  keywordMissing: (): Answer => ({ httpStatus: 400, body: { code: 19024, msg: 'Key Words Not Found', data: {} } }),
  rateLimited: (): Answer => ({ httpStatus: 200, body: { code: 11232, msg: 'frequency limited psm[lark.oapi.app_platform_runtime]appID[1]', data: {} } }),
  flowNotFound: (): Answer => ({ httpStatus: 404, body: { msg: 'webhook not found' } }),
  flowUnauthorized: (): Answer => ({ httpStatus: 401, body: { msg: 'unauthorized' } }),
  notFound: (): Answer => ({ httpStatus: 404, body: { msg: 'not found' } }),
  methodNotAllowed: (): Answer => ({ httpStatus: 405, body: { msg: 'method not allowed' } }),
};

const CODE_MESSAGES: Record<number, string> = {
  0: 'success',
  2200: 'Internal Error',
  9499: 'Bad Request',
  11232: 'frequency limited psm[lark.oapi.app_platform_runtime]appID[1]',
  19001: 'param invalid: incoming webhook access token invalid',
  19002: 'params error',
  19021: 'sign match fail or timestamp is not within one hour from current time',
  19022: 'Ip Not Allowed',
  19024: 'Key Words Not Found',
};

function faultAnswer(fault: Fault, baseUrl: string): Answer {
  const httpStatus = fault.httpStatus ?? (fault.code === undefined ? 500 : fault.code === 0 || fault.code === 11232 ? 200 : 400);
  if (httpStatus >= 300 && httpStatus < 400) {
    return { httpStatus, body: '', headers: { location: fault.location ?? `${baseUrl}/redirected` } };
  }
  if (fault.code === undefined) return { httpStatus, body: fault.msg ?? `injected HTTP ${httpStatus}` };
  return { httpStatus, body: { code: fault.code, msg: fault.msg ?? CODE_MESSAGES[fault.code] ?? 'injected fault', data: {} } };
}

/** Text Feishu searches for keywords: text, titles, card text; never URLs. */
function visibleText(body: any): string {
  const parts: string[] = [];
  if (body.msg_type === 'text') parts.push(String(body.content?.text ?? '').replace(/https?:\/\/\S+/g, ''));
  if (body.msg_type === 'post') {
    for (const locale of Object.values<any>(body.content?.post ?? {})) {
      parts.push(String(locale?.title ?? ''));
      for (const paragraph of locale?.content ?? []) for (const el of paragraph ?? []) if (el?.tag === 'text') parts.push(String(el.text ?? ''));
    }
  }
  if (body.msg_type === 'interactive') {
    const walk = (node: any): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node === null || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if (key === 'url' || key === 'href' || key === 'multi_url') continue;
        if ((key === 'content' || key === 'text') && typeof value === 'string') parts.push(value);
        else walk(value);
      }
    };
    walk(card(body));
  }
  return parts.join('\n');
}

/** Feishu also accepts the card as a JSON string. */
function card(body: any): any {
  if (typeof body.card !== 'string') return body.card;
  try {
    return JSON.parse(body.card);
  } catch {
    return undefined;
  }
}

/** undefined when the body is a valid message, otherwise what is wrong with it. */
function messageProblem(body: any): string | undefined {
  switch (body.msg_type) {
    case 'text':
      return typeof body.content?.text === 'string' && body.content.text !== '' ? undefined : 'content.text is required';
    case 'post': {
      const post = body.content?.post;
      const locales = post && typeof post === 'object' ? Object.values<any>(post) : [];
      return locales.length > 0 && locales.every((l) => Array.isArray(l?.content)) ? undefined : 'content.post needs a locale (zh_cn/en_us) with content';
    }
    case 'interactive': {
      const c = card(body);
      return c && typeof c === 'object' ? undefined : 'card is required for msg_type interactive';
    }
    default:
      return 'msg_type need';
  }
}

function parseJsonObject(raw: Buffer): any {
  try {
    const parsed = JSON.parse(raw.toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export async function startFeishuServer(options: FeishuServerOptions = {}): Promise<FeishuServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const rateLimit = options.rateLimit === undefined ? FEISHU_RATE_LIMIT : options.rateLimit;

  const bots = new Map<string, BotRegistration>();
  const flows = new Map<string, FlowRegistration>();
  const messages: AcceptedMessage[] = [];
  const requests: RecordedRequest[] = [];
  let rateLimitedCount = 0;
  let faults: Array<{ remaining: number; fault: Fault }> = [];
  let stalls: Array<{ remaining: number; ms: number }> = [];
  /** Per bot token: times of requests let through by the limiter, last minute only. */
  let sentTimes = new Map<string, number[]>();
  let waiters: Array<{ n: number; resolve: (m: AcceptedMessage[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  const stallTimers = new Set<NodeJS.Timeout>();
  const appRuntime: FeishuAppRuntime | undefined = options.app ? createFeishuApp(options.app, log) : undefined;
  let port = options.port ?? 0;
  let listening = false;

  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const baseUrl = () => `http://${urlHost}:${port}`;

  const takeFrom = <T extends { remaining: number }>(queue: T[]): T | undefined => {
    const head = queue[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) queue.shift();
    return head;
  };

  const accept = (kind: 'bot' | 'flow', token: string, body: any, receivedAt: number): Answer => {
    const message: AcceptedMessage = { kind, token, body, receivedAt };
    messages.push(message);
    options.onMessage?.(message);
    const ready = waiters.filter((w) => messages.length >= w.n);
    waiters = waiters.filter((w) => messages.length < w.n);
    for (const w of ready) {
      clearTimeout(w.timer);
      w.resolve([...messages]);
    }
    return ANSWERS.ok();
  };

  /** More than perSecond in any rolling second, or perMinute in any rolling minute, is refused. */
  const overRateLimit = (token: string, now: number): boolean => {
    if (!rateLimit) return false;
    const recent = (sentTimes.get(token) ?? []).filter((t) => t > now - 60_000);
    const lastSecond = recent.filter((t) => t > now - 1_000).length;
    const limited = lastSecond >= rateLimit.perSecond || recent.length >= rateLimit.perMinute;
    if (!limited) recent.push(now);
    sentTimes.set(token, recent);
    return limited;
  };

  const handleBot = (token: string, raw: Buffer, tooLarge: boolean, receivedAt: number): Answer => {
    let registration = bots.get(token);
    if (!registration && options.autoRegister) bots.set(token, (registration = {}));
    if (!registration) return ANSWERS.tokenInvalid();
    if (overRateLimit(token, receivedAt)) return ANSWERS.rateLimited();
    if (tooLarge || raw.length > FEISHU_MAX_BODY_BYTES) return ANSWERS.badRequest();
    const body = parseJsonObject(raw);
    if (!body) return ANSWERS.badRequest();
    if (registration.secret) {
      const timestamp = String(body.timestamp ?? '');
      const ts = Number(timestamp);
      const fresh = timestamp !== '' && Number.isFinite(ts) && Math.abs(receivedAt / 1000 - ts) <= SIGNATURE_WINDOW_SEC;
      if (!fresh || body.sign !== feishuSign(timestamp, registration.secret)) return ANSWERS.signMismatch();
    }
    const problem = messageProblem(body);
    if (problem) return ANSWERS.paramInvalid(problem);
    if (registration.keyword && !visibleText(body).includes(registration.keyword)) return ANSWERS.keywordMissing();
    return accept('bot', token, body, receivedAt);
  };

  const handleFlow = (id: string, headers: IncomingHttpHeaders, raw: Buffer, tooLarge: boolean, receivedAt: number): Answer => {
    let registration = flows.get(id);
    if (!registration && options.autoRegister) flows.set(id, (registration = {}));
    if (!registration) return ANSWERS.flowNotFound();
    if (registration.bearerToken && headers.authorization !== `Bearer ${registration.bearerToken}`) return ANSWERS.flowUnauthorized();
    if (tooLarge || raw.length > FEISHU_MAX_BODY_BYTES) return ANSWERS.badRequest();
    const body = parseJsonObject(raw);
    if (!body) return ANSWERS.badRequest();
    return accept('flow', id, body, receivedAt);
  };

  const readBody = (req: IncomingMessage): Promise<{ raw: Buffer; tooLarge: boolean }> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= READ_CAP_BYTES) chunks.push(chunk);
      });
      req.on('end', () => resolve({ raw: Buffer.concat(chunks), tooLarge: size > READ_CAP_BYTES }));
      req.on('error', reject);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const receivedAt = Date.now();
    const path = (req.url ?? '/').split('?')[0];
    const botMatch = BOT_PATH.exec(path);
    const flowMatch = FLOW_PATH.exec(path);
    const isApp = appRuntime !== undefined && appRuntime.isAppPath(path);
    const kind = botMatch ? 'bot' : flowMatch ? 'flow' : isApp ? 'app' : 'other';
    const token = botMatch ? decodeURIComponent(botMatch[1]) : flowMatch ? decodeURIComponent(flowMatch[1]) : undefined;
    const { raw, tooLarge } = await readBody(req);

    const stall = takeFrom(stalls);
    const fault = takeFrom(faults);
    let answer: Answer;
    let appOp = '';
    if (fault) answer = faultAnswer(fault.fault, baseUrl());
    else if (isApp) ({ answer, op: appOp } = appRuntime!.handle(req.method ?? '', new URL(req.url ?? '/', baseUrl()), req.headers, raw, tooLarge, receivedAt));
    else if (req.method !== 'POST') answer = ANSWERS.methodNotAllowed();
    else if (kind === 'bot') answer = handleBot(token!, raw, tooLarge, receivedAt);
    else if (kind === 'flow') answer = handleFlow(token!, req.headers, raw, tooLarge, receivedAt);
    else answer = ANSWERS.notFound();

    const code = answer.body !== null && typeof answer.body === 'object' ? (answer.body as { code?: number }).code : undefined;
    // The app counts its own limiter's answers (app.rateLimitedCount).
    if (!isApp && (code === 11232 || answer.httpStatus === 429)) rateLimitedCount += 1;
    const recorded = isApp ? appRuntime!.redact(path, req.headers, parseJsonObject(raw)) : { headers: req.headers, body: parseJsonObject(raw) };
    requests.push({
      kind,
      token,
      method: req.method ?? '',
      path,
      headers: recorded.headers,
      body: recorded.body,
      httpStatus: answer.httpStatus,
      code,
      receivedAt,
    });
    log(
      `${req.method} ${kind}${token ? ` ${maskSecret(token)}` : ''}${appOp ? ` ${appOp}` : ''} → HTTP ${answer.httpStatus}${code !== undefined ? ` code ${code}` : ''}${stall ? ` (stalled ${stall.ms} ms)` : ''}`,
    );

    // The message is already accepted (or refused) when the answer is held: a slow Feishu still delivers.
    if (stall)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stallTimers.delete(timer);
          resolve();
        }, stall.ms);
        stallTimers.add(timer);
      });
    if (res.destroyed || res.writableEnded) return;
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    const contentType = typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8';
    res.writeHead(answer.httpStatus, { 'content-type': contentType, ...answer.headers });
    res.end(text);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`handler error: ${String(err)}`);
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    });
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        listening = true;
        resolve();
      });
    });

  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      // Keep-alive sockets would otherwise keep answering while "down".
      server.closeAllConnections();
    });

  await listen();
  log(`feishu-compatible server listening on ${baseUrl()}`);

  return {
    get url() {
      return baseUrl();
    },
    get port() {
      return port;
    },
    messages,
    requests,
    get rateLimitedCount() {
      return rateLimitedCount;
    },
    get app() {
      if (!appRuntime) throw new Error('this Feishu server was started without the app API: pass startFeishuServer({ app: { appId, appSecret, ... } })');
      return appRuntime.app;
    },
    botUrl: (token) => `${baseUrl()}/open-apis/bot/v2/hook/${encodeURIComponent(token)}`,
    flowUrl: (id) => `${baseUrl()}/flow/api/trigger-webhook/${encodeURIComponent(id)}`,
    registerBot: (token, registration = {}) => void bots.set(token, { ...registration }),
    registerFlow: (id, registration = {}) => void flows.set(id, { ...registration }),
    failNext: (n, fault) => {
      if (n > 0) faults.push({ remaining: n, fault });
    },
    stallNext: (n, ms) => {
      if (n > 0) stalls.push({ remaining: n, ms });
    },
    down: stopListening,
    up: async () => {
      if (!listening) await listen();
    },
    /** Clears records, faults, stalls and rate windows (the app's too); registrations, app users and tokens stay. */
    reset: () => {
      appRuntime?.app.reset();
      messages.length = 0;
      requests.length = 0;
      rateLimitedCount = 0;
      faults = [];
      stalls = [];
      sentTimes = new Map();
    },
    waitForMessages: (n, timeoutMs = 5_000) => {
      if (messages.length >= n) return Promise.resolve([...messages]);
      return new Promise((resolve, reject) => {
        const waiter = {
          n,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters = waiters.filter((w) => w !== waiter);
            reject(new Error(`expected ${n} accepted messages within ${timeoutMs} ms, got ${messages.length}`));
          }, timeoutMs),
        };
        waiters.push(waiter);
      });
    },
    close: async () => {
      for (const timer of stallTimers) clearTimeout(timer);
      stallTimers.clear();
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error('feishu server closed'));
      }
      waiters = [];
      appRuntime?.close();
      await stopListening();
    },
  };
}
