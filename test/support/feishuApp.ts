/**
 * The Feishu app (open platform) API for feishuServer.ts: tenant tokens, messages to users and chats,
 * card updates, buzzing, and the signed (optionally encrypted) card callbacks Feishu POSTs to the app.
 * It checks what Feishu checks and answers with Feishu's codes and HTTP statuses.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { maskSecret } from '../../src/providers/mask';

export interface AppUser {
  openId: string;
  unionId?: string;
  userId?: string;
  email?: string;
}

export interface AppRateLimit {
  appPerSecond: number;
  appPerMinute: number;
  recipientPerSecond: number;
  /** PATCHes of one message; Feishu's is 5/s. */
  messageUpdatesPerSecond?: number;
}

export interface FeishuAppOptions {
  appId: string;
  appSecret: string;
  /** When set, press/verifyUrl encrypt bodies; it also keys the signature. */
  encryptKey?: string;
  /** Put in header.token / the url_verification token. */
  verificationToken?: string;
  /** Default 7200 (Feishu's). */
  tokenTtlSec?: number;
  /** A token with less than this left is replaced by a new one; default 1800 (Feishu's 30 min). */
  tokenRenewWindowSec?: number;
  /** dueflow's POST /api/v1/feishu/callback URL. */
  callbackUrl?: string;
  /** Default {50, 1000, 5}; `false` turns every limit off. */
  rateLimit?: AppRateLimit | false;
  /** Accept any receive id of any type as a user, any chat_id as a chat (the demo). */
  autoRegisterUsers?: boolean;
  /** header.tenant_key of callbacks and sender.tenant_key of messages. */
  tenantKey?: string;
  /** Feishu gives up on a callback after 3 s; press then answers status 0. */
  callbackTimeoutMs?: number;
}

export interface AppMessage {
  messageId: string;
  chatId: string;
  receiveIdType: string;
  receiveId: string;
  /** The resolved user's open_id (when the receive id named a user). */
  openId?: string;
  uuid?: string;
  msgType: string;
  /** The current card (parsed), after updates and callback redraws; for text, the parsed content. */
  card: any;
  /** Every version, first = as sent. */
  cards: any[];
  sentAt: number;
}

export interface AppFault {
  code: number;
  httpStatus?: number;
  msg?: string;
  resetSec?: number;
}

/** How a callback is signed and sent (press, verifyUrl, sendCallback). */
export interface CallbackOptions {
  /** Unix seconds; default now. */
  timestamp?: number;
  nonce?: string;
  /** Default: true when encryptKey is set. */
  encrypt?: boolean;
  /** Sign with this key instead of encryptKey (wrong-signature tests). */
  signWith?: string;
}

export interface PressOptions extends CallbackOptions {
  messageId: string;
  /** The callback button whose value.action equals this. */
  action: string;
  /** Default: the message's recipient open_id. */
  operatorOpenId?: string;
  /** Default: random; an event_id pressed before resends that event as it was (Feishu's retry). */
  eventId?: string;
  /** Merged into the value sent (tamper tests). */
  extraValue?: Record<string, unknown>;
}

/** `status` 0: no answer within callbackTimeoutMs (Feishu shows an error and keeps the card). */
export interface PressResult {
  status: number;
  body: any;
  eventId: string;
  ms: number;
}

export interface FeishuApp {
  registerUser(user: AppUser): void;
  /** A group chat that chat_id sends may name (a user's p2p chat is known from registerUser). */
  registerChat(chatId: string): void;
  /** The p2p chat id of a user's messages (deterministic from the open_id). */
  chatIdOf(openId: string): string;
  setCallbackUrl(url: string): void;
  /** Accepted sends, in order. */
  readonly messages: AppMessage[];
  readonly updates: Array<{ messageId: string; card: any; at: number }>;
  readonly urgents: Array<{ messageId: string; userIds: string[]; at: number }>;
  /** Cards applied from callback answers (press), in order. */
  readonly redraws: Array<{ messageId: string; card: any; eventId: string; at: number }>;
  /** Successful token responses that issued a NEW token. */
  readonly tokensIssued: number;
  /** All token endpoint requests. */
  readonly tokenRequests: number;
  /** 99991400 / 230020 answers given by the limiter. */
  readonly rateLimitedCount: number;
  /** Every issued token is invalid from now (99991663). */
  expireTokens(): void;
  /** The next n im/v1 requests (send, patch, urgent) answer this. */
  failNext(n: number, fault: AppFault): void;
  /** Pretend it was sent ms earlier (230031 tests; also ages its uuid). */
  ageMessage(messageId: string, ms: number): void;
  message(messageId: string): AppMessage | undefined;
  messagesTo(openId: string): AppMessage[];
  waitForMessages(n: number, timeoutMs?: number): Promise<AppMessage[]>;
  waitForUpdates(n: number, timeoutMs?: number): Promise<void>;
  waitForUrgents(n: number, timeoutMs?: number): Promise<void>;
  /** Callback buttons of the current card. */
  buttons(messageId: string): Array<{ text: string; value: any }>;
  /** POSTs the callback to callbackUrl; applies a returned raw card. */
  press(options: PressOptions): Promise<PressResult>;
  verifyUrl(options?: { challenge?: string; encrypt?: boolean }): Promise<PressResult>;
  /** Any payload, signed (and encrypted) like press: for malformed or foreign events. */
  sendCallback(payload: unknown, options?: CallbackOptions): Promise<PressResult>;
  /** Clears messages/updates/urgents/redraws/faults/windows/uuids and the counters; users and tokens stay. */
  reset(): void;
}

export interface AppAnswer {
  httpStatus: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** What feishuServer.ts needs beyond the public FeishuApp. */
export interface FeishuAppRuntime {
  app: FeishuApp;
  isAppPath(path: string): boolean;
  handle(method: string, url: URL, headers: IncomingHttpHeaders, raw: Buffer, tooLarge: boolean, receivedAt: number): { answer: AppAnswer; op: string };
  /** Headers and body as they may be recorded: bearer tokens and the app secret masked. */
  redact(path: string, headers: IncomingHttpHeaders, body: any): { headers: IncomingHttpHeaders; body: any };
  close(): void;
}

export const APP_CONTENT_MAX_BYTES = 30 * 1024;
const FEISHU_APP_RATE_LIMIT: Required<AppRateLimit> = { appPerSecond: 50, appPerMinute: 1000, recipientPerSecond: 5, messageUpdatesPerSecond: 5 };
const RECEIVE_ID_TYPES = ['open_id', 'union_id', 'user_id', 'email', 'chat_id'];
const USER_ID_TYPES = ['open_id', 'union_id', 'user_id'];
const UUID_MAX_LENGTH = 50;
const UUID_WINDOW_MS = 60 * 60 * 1000;
const UPDATE_WINDOW_MS = 14 * 24 * 60 * 60 * 1000;
const TOKEN_PATH = '/open-apis/auth/v3/tenant_access_token/internal';
const MESSAGES_PATH = '/open-apis/im/v1/messages';
const MESSAGE_PATH = /^\/open-apis\/im\/v1\/messages\/([^/?#]+)$/;
const URGENT_PATH = /^\/open-apis\/im\/v1\/messages\/([^/?#]+)\/urgent_app$/;

const APP_CODE_MESSAGES: Record<number, string> = {
  0: 'success',
  9499: 'Bad Request',
  10003: 'invalid param',
  10014: 'app secret invalid',
  99991400: 'request trigger frequency limit',
  99991663: 'Invalid access token for authorization. Please make a request with token attached.',
  99991664: 'Invalid app access token for authorization. Please make a request with token attached.',
  99992402: 'field validation failed',
  230001: 'invalid receive_id',
  230020: 'frequency limit',
  230025: 'message content too long',
  230031: 'the message can no longer be updated: it was sent more than 14 days ago',
};

const err = (httpStatus: number, code: number, msg = APP_CODE_MESSAGES[code] ?? 'error', extra: Record<string, unknown> = {}): AppAnswer => ({
  httpStatus,
  body: { code, msg, ...extra },
});
const fieldInvalid = (field: string, description: string): AppAnswer =>
  err(400, 99992402, 'field validation failed', { error: { field_violations: [{ field, description }] } });
const invalidToken = (): AppAnswer => err(400, 99991663);

/** hex(sha256(timestamp + nonce + key + body)): X-Lark-Signature of a callback. */
export function larkSignature(timestamp: string, nonce: string, key: string, body: string): string {
  return crypto
    .createHash('sha256')
    .update(timestamp + nonce + key + body)
    .digest('hex');
}

/** base64(16-byte IV + AES-256-CBC(plaintext)), key = sha256(encryptKey): the `encrypt` field of a callback. */
export function larkEncrypt(encryptKey: string, plaintext: string): string {
  const key = crypto.createHash('sha256').update(encryptKey).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64');
}

export function larkDecrypt(encryptKey: string, encrypted: string): string {
  const key = crypto.createHash('sha256').update(encryptKey).digest();
  const buf = Buffer.from(encrypted, 'base64');
  const decipher = crypto.createDecipheriv('aes-256-cbc', key, buf.subarray(0, 16));
  return Buffer.concat([decipher.update(buf.subarray(16)), decipher.final()]).toString('utf8');
}

const randomHex = (bytes: number): string => crypto.randomBytes(bytes).toString('hex');
const derivedId = (prefix: string, seed: string): string => `${prefix}${crypto.createHash('sha256').update(seed).digest('hex').slice(0, 32)}`;

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseJsonObject(raw: Buffer): any {
  const parsed = parseJson(raw.toString('utf8'));
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined;
}

/** Card JSON 2.0 as Feishu requires it; template cards are not something dueflow sends. */
function isCard2(card: any): boolean {
  return card !== null && typeof card === 'object' && card.schema === '2.0' && Array.isArray(card.body?.elements);
}

/** Buttons with a callback behaviour, anywhere in the card (column sets, panels, forms...). */
function callbackButtons(card: any): Array<{ text: string; value: any }> {
  const found: Array<{ text: string; value: any }> = [];
  const walk = (node: any): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    if (node.tag === 'button') {
      const text = typeof node.text?.content === 'string' ? node.text.content : '';
      for (const behavior of Array.isArray(node.behaviors) ? node.behaviors : []) {
        if (behavior?.type === 'callback') found.push({ text, value: behavior.value });
      }
    }
    for (const value of Object.values(node)) walk(value);
  };
  walk(card);
  return found;
}

/** A rolling-window limiter: undefined and the time recorded when under every limit, else ms until a slot frees. */
function takeSlot(times: number[], now: number, limits: Array<{ limit: number; windowMs: number }>): number | undefined {
  const longest = Math.max(...limits.map((l) => l.windowMs));
  while (times.length > 0 && times[0] <= now - longest) times.shift();
  let waitMs: number | undefined;
  for (const { limit, windowMs } of limits) {
    const inWindow = times.filter((t) => t > now - windowMs);
    if (inWindow.length >= limit) waitMs = Math.max(waitMs ?? 0, inWindow[inWindow.length - limit] + windowMs - now);
  }
  if (waitMs === undefined) times.push(now);
  return waitMs;
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

function waitList(label: string, count: () => number) {
  let waiters: Waiter[] = [];
  return {
    wait(n: number, timeoutMs: number): Promise<void> {
      if (count() >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          n,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters = waiters.filter((w) => w !== waiter);
            reject(new Error(`expected ${n} ${label} within ${timeoutMs} ms, got ${count()}`));
          }, timeoutMs),
        };
        waiters.push(waiter);
      });
    },
    notify(): void {
      const ready = waiters.filter((w) => count() >= w.n);
      waiters = waiters.filter((w) => count() < w.n);
      for (const w of ready) {
        clearTimeout(w.timer);
        w.resolve();
      }
    },
    close(): void {
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error('feishu server closed'));
      }
      waiters = [];
    },
  };
}

/** POST without keep-alive, so no socket outlives the call; rejects on network errors, resolves status 0 on timeout. */
function postJson(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = (target.protocol === 'https:' ? https : http).request(
      target,
      { method: 'POST', agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => {
      resolve({ status: 0, text: '' });
      request.destroy();
    }, timeoutMs);
    request.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    request.end(body);
  });
}

export function createFeishuApp(options: FeishuAppOptions, log: (msg: string) => void): FeishuAppRuntime {
  const rateLimit = options.rateLimit === false ? false : { ...FEISHU_APP_RATE_LIMIT, ...options.rateLimit };
  const tokenTtlMs = (options.tokenTtlSec ?? 7200) * 1000;
  const renewWindowMs = (options.tokenRenewWindowSec ?? 1800) * 1000;
  const tenantKey = options.tenantKey ?? 'tenant_test';
  const callbackTimeoutMs = options.callbackTimeoutMs ?? 3000;
  let callbackUrl = options.callbackUrl;

  const usersByType: Record<string, Map<string, AppUser>> = { open_id: new Map(), union_id: new Map(), user_id: new Map(), email: new Map() };
  /** chat id → the open_id of its user, or undefined for a group chat. */
  const chats = new Map<string, string | undefined>();
  const tokens = new Map<string, number>();
  let currentToken: string | undefined;

  const messages: AppMessage[] = [];
  const updates: Array<{ messageId: string; card: any; at: number }> = [];
  const urgents: Array<{ messageId: string; userIds: string[]; at: number }> = [];
  const redraws: Array<{ messageId: string; card: any; eventId: string; at: number }> = [];
  /** Events pressed so far, by event_id: a press naming one again is Feishu retrying it. */
  const pressedEvents = new Map<string, unknown>();
  let uuids = new Map<string, AppMessage>();
  let faults: Array<{ remaining: number; fault: AppFault }> = [];
  let appTimes: number[] = [];
  let recipientTimes = new Map<string, number[]>();
  let updateTimes = new Map<string, number[]>();
  let tokensIssued = 0;
  let tokenRequests = 0;
  let rateLimitedCount = 0;

  const messageWaiters = waitList('accepted app messages', () => messages.length);
  const updateWaiters = waitList('card updates', () => updates.length);
  const urgentWaiters = waitList('urgent_app calls', () => urgents.length);

  const chatIdOf = (openId: string): string => derivedId('oc_', `p2p:${openId}`);

  const registerUser = (user: AppUser): void => {
    const copy = { ...user };
    usersByType.open_id.set(copy.openId, copy);
    if (copy.unionId) usersByType.union_id.set(copy.unionId, copy);
    if (copy.userId) usersByType.user_id.set(copy.userId, copy);
    if (copy.email) usersByType.email.set(copy.email, copy);
    chats.set(chatIdOf(copy.openId), copy.openId);
  };

  const findUser = (type: string, id: string): AppUser | undefined => {
    const known = usersByType[type]?.get(id);
    if (known || !options.autoRegisterUsers || !usersByType[type]) return known;
    const user: AppUser = type === 'open_id' ? { openId: id } : { openId: derivedId('ou_', `${type}:${id}`) };
    if (type === 'union_id') user.unionId = id;
    if (type === 'user_id') user.userId = id;
    if (type === 'email') user.email = id;
    registerUser(user);
    return user;
  };

  const findMessage = (messageId: string): AppMessage | undefined => messages.find((m) => m.messageId === messageId);

  const tokenValid = (token: string | undefined, now: number): boolean => token !== undefined && (tokens.get(token) ?? 0) > now;

  const bearerOf = (headers: IncomingHttpHeaders): string | undefined => /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1];

  const faultAnswer = (fault: AppFault): AppAnswer => {
    const httpStatus = fault.httpStatus ?? (fault.code === 0 ? 200 : fault.code === 99991400 ? 429 : 400);
    const body =
      fault.code === 0
        ? { code: 0, msg: fault.msg ?? 'success', data: {} }
        : { code: fault.code, msg: fault.msg ?? APP_CODE_MESSAGES[fault.code] ?? 'injected fault' };
    return { httpStatus, body, headers: fault.resetSec !== undefined ? { 'x-ogw-ratelimit-reset': String(fault.resetSec) } : undefined };
  };

  const handleToken = (raw: Buffer, now: number): AppAnswer => {
    tokenRequests += 1;
    const body = parseJsonObject(raw);
    const appId = body?.app_id;
    const appSecret = body?.app_secret;
    if (typeof appId !== 'string' || appId === '' || typeof appSecret !== 'string' || appSecret === '') return err(400, 10003);
    if (appId !== options.appId || appSecret !== options.appSecret) return err(400, 10014);
    for (const [token, expiresAt] of tokens) if (expiresAt <= now) tokens.delete(token);
    const left = currentToken !== undefined && tokens.has(currentToken) ? tokens.get(currentToken)! - now : 0;
    if (currentToken === undefined || left < renewWindowMs) {
      // The old token stays valid until its own expiry: clients holding it keep working.
      currentToken = `t-${randomHex(20)}`;
      tokens.set(currentToken, now + tokenTtlMs);
      tokensIssued += 1;
      return { httpStatus: 200, body: { code: 0, msg: 'ok', tenant_access_token: currentToken, expire: Math.floor(tokenTtlMs / 1000) } };
    }
    return { httpStatus: 200, body: { code: 0, msg: 'ok', tenant_access_token: currentToken, expire: Math.floor(left / 1000) } };
  };

  const messageData = (m: AppMessage) => ({
    message_id: m.messageId,
    chat_id: m.chatId,
    msg_type: m.msgType,
    create_time: String(m.sentAt),
    update_time: String(m.sentAt),
    deleted: false,
    updated: false,
    sender: { id: options.appId, id_type: 'app_id', sender_type: 'app', tenant_key: tenantKey },
    body: { content: JSON.stringify(m.cards[0]) },
  });

  /** undefined when the content is a valid message of that type, else the answer. */
  const contentProblem = (msgType: string, content: string): AppAnswer | undefined => {
    if (Buffer.byteLength(content, 'utf8') > APP_CONTENT_MAX_BYTES) return err(400, 230025);
    const parsed = parseJson(content);
    if (msgType === 'interactive') return isCard2(parsed) ? undefined : err(400, 230001, 'card content invalid: need schema "2.0" and body.elements');
    return typeof parsed?.text === 'string' ? undefined : err(400, 230001, 'invalid message content: need {"text": "..."}');
  };

  const handleSend = (url: URL, raw: Buffer, tooLarge: boolean, now: number): AppAnswer => {
    const receiveIdType = url.searchParams.get('receive_id_type') ?? '';
    if (!RECEIVE_ID_TYPES.includes(receiveIdType)) return fieldInvalid('receive_id_type', `must be one of ${RECEIVE_ID_TYPES.join(', ')}`);
    if (tooLarge) return err(400, 230025);
    const body = parseJsonObject(raw);
    if (!body) return err(400, 9499);
    const { receive_id: receiveId, msg_type: msgType, content, uuid } = body;
    if (typeof receiveId !== 'string' || receiveId === '') return fieldInvalid('receive_id', 'is required');
    if (msgType !== 'interactive' && msgType !== 'text') return fieldInvalid('msg_type', 'must be interactive or text');
    if (typeof content !== 'string' || content === '') return fieldInvalid('content', 'must be a JSON string');
    if (uuid !== undefined && (typeof uuid !== 'string' || uuid.length > UUID_MAX_LENGTH)) return fieldInvalid('uuid', `at most ${UUID_MAX_LENGTH} characters`);
    const problem = contentProblem(msgType, content);
    if (problem) return problem;

    let openId: string | undefined;
    let chatId: string;
    if (receiveIdType === 'chat_id') {
      if (!chats.has(receiveId)) {
        if (!options.autoRegisterUsers) return err(400, 230001);
        chats.set(receiveId, undefined);
      }
      openId = chats.get(receiveId);
      chatId = receiveId;
    } else {
      const user = findUser(receiveIdType, receiveId);
      if (!user) return err(400, 230001);
      openId = user.openId;
      chatId = chatIdOf(user.openId);
    }

    const earlier = uuid ? uuids.get(uuid) : undefined;
    if (earlier && now - earlier.sentAt < UUID_WINDOW_MS) return { httpStatus: 200, body: { code: 0, msg: 'success', data: messageData(earlier) } };

    if (rateLimit) {
      const key = openId ? `user:${openId}` : `chat:${chatId}`;
      const times = recipientTimes.get(key) ?? [];
      recipientTimes.set(key, times);
      if (takeSlot(times, now, [{ limit: rateLimit.recipientPerSecond, windowMs: 1000 }]) !== undefined) {
        rateLimitedCount += 1;
        return err(400, 230020);
      }
    }

    const parsed = JSON.parse(content);
    const message: AppMessage = {
      messageId: `om_${randomHex(16)}`,
      chatId,
      receiveIdType,
      receiveId,
      openId,
      uuid,
      msgType,
      card: parsed,
      cards: [parsed],
      sentAt: now,
    };
    messages.push(message);
    if (uuid) uuids.set(uuid, message);
    messageWaiters.notify();
    return { httpStatus: 200, body: { code: 0, msg: 'success', data: messageData(message) } };
  };

  const handleUpdate = (messageId: string, raw: Buffer, tooLarge: boolean, now: number): AppAnswer => {
    const message = findMessage(messageId);
    if (!message) return err(400, 230001, 'invalid message_id');
    if (message.msgType !== 'interactive' || message.cards[0]?.config?.update_multi !== true) {
      return err(400, 230001, 'card not shared: it was sent without config.update_multi = true');
    }
    if (now - message.sentAt > UPDATE_WINDOW_MS) return err(400, 230031);
    if (tooLarge) return err(400, 230025);
    const body = parseJsonObject(raw);
    if (!body) return err(400, 9499);
    if (typeof body.content !== 'string' || body.content === '') return fieldInvalid('content', 'must be a JSON string');
    const problem = contentProblem('interactive', body.content);
    if (problem) return problem;
    if (rateLimit) {
      const times = updateTimes.get(messageId) ?? [];
      updateTimes.set(messageId, times);
      if (takeSlot(times, now, [{ limit: rateLimit.messageUpdatesPerSecond, windowMs: 1000 }]) !== undefined) {
        rateLimitedCount += 1;
        return err(400, 230020);
      }
    }
    const parsed = JSON.parse(body.content);
    message.card = parsed;
    message.cards.push(parsed);
    updates.push({ messageId, card: parsed, at: now });
    updateWaiters.notify();
    return { httpStatus: 200, body: { code: 0, msg: 'success', data: {} } };
  };

  const handleUrgent = (messageId: string, url: URL, raw: Buffer, now: number): AppAnswer => {
    const userIdType = url.searchParams.get('user_id_type') ?? '';
    if (!USER_ID_TYPES.includes(userIdType)) return fieldInvalid('user_id_type', `must be one of ${USER_ID_TYPES.join(', ')}`);
    const body = parseJsonObject(raw);
    if (!body) return err(400, 9499);
    const list = body.user_id_list;
    if (!Array.isArray(list) || list.length === 0 || !list.every((id) => typeof id === 'string' && id !== '')) {
      return fieldInvalid('user_id_list', 'must be a non-empty list of ids');
    }
    if (!findMessage(messageId)) return err(400, 230001, 'invalid message_id');
    const invalid = list.filter((id: string) => !findUser(userIdType, id));
    urgents.push({ messageId, userIds: list.filter((id: string) => !invalid.includes(id)), at: now });
    urgentWaiters.notify();
    return { httpStatus: 200, body: { code: 0, msg: 'success', data: { invalid_user_id_list: invalid } } };
  };

  const handleIm = (method: string, url: URL, headers: IncomingHttpHeaders, raw: Buffer, tooLarge: boolean, now: number): { answer: AppAnswer; op: string } => {
    const path = url.pathname;
    const urgentMatch = URGENT_PATH.exec(path);
    const messageMatch = MESSAGE_PATH.exec(path);
    const op = urgentMatch ? 'urgent' : messageMatch ? 'update' : path === MESSAGES_PATH ? 'send' : 'unknown';
    const expected = op === 'send' ? 'POST' : 'PATCH';
    if (op === 'unknown' || method !== expected) return { answer: { httpStatus: 404, body: { code: 404, msg: '404 page not found' } }, op };

    const head = faults[0];
    if (head) {
      head.remaining -= 1;
      if (head.remaining <= 0) faults.shift();
      return { answer: faultAnswer(head.fault), op };
    }
    if (!tokenValid(bearerOf(headers), now)) return { answer: invalidToken(), op };
    if (rateLimit) {
      const waitMs = takeSlot(appTimes, now, [
        { limit: rateLimit.appPerSecond, windowMs: 1000 },
        { limit: rateLimit.appPerMinute, windowMs: 60_000 },
      ]);
      if (waitMs !== undefined) {
        rateLimitedCount += 1;
        const answer = err(429, 99991400);
        answer.headers = { 'x-ogw-ratelimit-reset': String(Math.max(1, Math.ceil(waitMs / 1000))) };
        return { answer, op };
      }
    }
    const messageId = decodeURIComponent((urgentMatch ?? messageMatch)?.[1] ?? '');
    if (op === 'send') return { answer: handleSend(url, raw, tooLarge, now), op };
    if (op === 'update') return { answer: handleUpdate(messageId, raw, tooLarge, now), op: `update ${messageId}` };
    return { answer: handleUrgent(messageId, url, raw, now), op: `urgent ${messageId}` };
  };

  const deliver = async (payload: unknown, o: CallbackOptions, eventId: string, what: string): Promise<PressResult> => {
    if (!callbackUrl) throw new Error(`${what}: no callback URL: pass app.callbackUrl or call setCallbackUrl`);
    const encrypt = o.encrypt ?? Boolean(options.encryptKey);
    if (encrypt && !options.encryptKey) throw new Error(`${what}: encrypt needs app.encryptKey`);
    const plain = JSON.stringify(payload);
    const raw = encrypt ? JSON.stringify({ encrypt: larkEncrypt(options.encryptKey!, plain) }) : plain;
    const timestamp = String(o.timestamp ?? Math.floor(Date.now() / 1000));
    const nonce = o.nonce ?? randomHex(8);
    const signature = larkSignature(timestamp, nonce, o.signWith ?? options.encryptKey ?? '', raw);
    const started = Date.now();
    let answer: { status: number; text: string };
    try {
      answer = await postJson(
        callbackUrl,
        { 'content-type': 'application/json', 'x-lark-request-timestamp': timestamp, 'x-lark-request-nonce': nonce, 'x-lark-signature': signature },
        raw,
        callbackTimeoutMs,
      );
    } catch (e) {
      throw new Error(`${what}: POST ${callbackUrl} failed: ${String(e)}`);
    }
    const ms = Date.now() - started;
    log(
      `callback ${what}${encrypt ? ' (encrypted)' : ''} → ${answer.status === 0 ? `no answer within ${callbackTimeoutMs} ms` : `HTTP ${answer.status}`} in ${ms} ms`,
    );
    const body = answer.text === '' ? undefined : (parseJson(answer.text) ?? answer.text);
    return { status: answer.status, body, eventId, ms };
  };

  const app: FeishuApp = {
    registerUser,
    registerChat: (chatId) => void chats.set(chatId, chats.get(chatId)),
    chatIdOf,
    setCallbackUrl: (url) => {
      callbackUrl = url;
    },
    messages,
    updates,
    urgents,
    redraws,
    get tokensIssued() {
      return tokensIssued;
    },
    get tokenRequests() {
      return tokenRequests;
    },
    get rateLimitedCount() {
      return rateLimitedCount;
    },
    expireTokens: () => {
      tokens.clear();
      currentToken = undefined;
    },
    failNext: (n, fault) => {
      if (n > 0) faults.push({ remaining: n, fault });
    },
    ageMessage: (messageId, ms) => {
      const message = findMessage(messageId);
      if (!message) throw new Error(`ageMessage: no message ${messageId}`);
      message.sentAt -= ms;
    },
    message: findMessage,
    messagesTo: (openId) => messages.filter((m) => m.openId === openId),
    waitForMessages: async (n, timeoutMs = 5_000) => {
      await messageWaiters.wait(n, timeoutMs);
      return [...messages];
    },
    waitForUpdates: (n, timeoutMs = 5_000) => updateWaiters.wait(n, timeoutMs),
    waitForUrgents: (n, timeoutMs = 5_000) => urgentWaiters.wait(n, timeoutMs),
    buttons: (messageId) => {
      const message = findMessage(messageId);
      if (!message) throw new Error(`buttons: no message ${messageId} (messages: ${messages.map((m) => m.messageId).join(', ') || 'none'})`);
      return callbackButtons(message.card);
    },
    press: async (o) => {
      // Feishu's retry of an unanswered (or any) callback: the same event again, as first sent.
      const retried = o.eventId ? pressedEvents.get(o.eventId) : undefined;
      if (retried) return deliver(retried, o, o.eventId!, `retry of ${o.eventId}`);
      const message = findMessage(o.messageId);
      if (!message) throw new Error(`press: no message ${o.messageId} (messages: ${messages.map((m) => m.messageId).join(', ') || 'none'})`);
      const buttons = callbackButtons(message.card);
      const button = buttons.find((b) => b.value?.action === o.action);
      if (!button) {
        const names = buttons.map((b) => `"${b.text}" (action ${JSON.stringify(b.value?.action)})`).join(', ');
        throw new Error(`press: message ${o.messageId} has no callback button with action "${o.action}"; its buttons: ${names || 'none'}`);
      }
      const openId = o.operatorOpenId ?? message.openId;
      if (!openId) throw new Error(`press: message ${o.messageId} went to a chat, not a user: pass operatorOpenId`);
      const user = usersByType.open_id.get(openId);
      const eventId = o.eventId ?? randomHex(16);
      const event = {
        schema: '2.0',
        header: {
          event_id: eventId,
          event_type: 'card.action.trigger',
          create_time: String(o.timestamp !== undefined ? o.timestamp * 1000 : Date.now()),
          token: options.verificationToken ?? '',
          app_id: options.appId,
          tenant_key: tenantKey,
        },
        event: {
          operator: { open_id: openId, ...(user?.unionId && { union_id: user.unionId }), ...(user?.userId && { user_id: user.userId }) },
          token: `c-${randomHex(16)}`,
          action: { value: { ...button.value, ...o.extraValue }, tag: 'button' },
          host: 'im_message',
          context: { open_message_id: message.messageId, open_chat_id: message.chatId },
        },
      };
      pressedEvents.set(eventId, event);
      const result = await deliver(event, o, eventId, `press ${o.action} on ${o.messageId}`);
      // Feishu redraws only with a card it can render; anything else leaves the message as it was.
      const card = result.body?.card;
      if (result.status === 200 && card?.type === 'raw' && isCard2(card.data)) {
        message.card = card.data;
        message.cards.push(card.data);
        redraws.push({ messageId: message.messageId, card: card.data, eventId, at: Date.now() });
      }
      return result;
    },
    verifyUrl: (o = {}) => {
      const payload = { type: 'url_verification', challenge: o.challenge ?? randomHex(16), token: options.verificationToken ?? '' };
      return deliver(payload, { encrypt: o.encrypt }, '', 'url_verification');
    },
    sendCallback: (payload, o = {}) => deliver(payload, o, '', 'callback'),
    reset: () => {
      messages.length = 0;
      updates.length = 0;
      urgents.length = 0;
      redraws.length = 0;
      uuids = new Map();
      faults = [];
      appTimes = [];
      recipientTimes = new Map();
      updateTimes = new Map();
      tokensIssued = 0;
      tokenRequests = 0;
      rateLimitedCount = 0;
    },
  };

  return {
    app,
    isAppPath: (path) => path === TOKEN_PATH || path === MESSAGES_PATH || MESSAGE_PATH.test(path) || URGENT_PATH.test(path),
    handle: (method, url, headers, raw, tooLarge, receivedAt) => {
      if (url.pathname !== TOKEN_PATH) return handleIm(method, url, headers, raw, tooLarge, receivedAt);
      if (method !== 'POST') return { answer: { httpStatus: 404, body: { code: 404, msg: '404 page not found' } }, op: 'token' };
      return { answer: handleToken(raw, receivedAt), op: 'token' };
    },
    redact: (path, headers, body) => {
      const bearer = bearerOf(headers);
      const auth = headers.authorization;
      const safeHeaders = auth === undefined ? headers : { ...headers, authorization: bearer ? `Bearer ${maskSecret(bearer)}` : maskSecret(auth) };
      const safeBody = path === TOKEN_PATH && typeof body?.app_secret === 'string' ? { ...body, app_secret: maskSecret(body.app_secret) } : body;
      return { headers: safeHeaders, body: safeBody };
    },
    close: () => {
      messageWaiters.close();
      updateWaiters.close();
      urgentWaiters.close();
    },
  };
}
