/**
 * Feishu/Lark card callbacks, the pure part: the signature over the raw body, the AES-256-CBC
 * envelope and the shapes of the bodies. No I/O, so every rule is unit-tested without services.
 * dueflow does not use the SDK's check: it hashes JSON.stringify of the parsed body, has no
 * timestamp window and accepts everything when no encrypt key is set.
 */
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { CardActionEvent } from '../cards/actions';

/** A callback signed longer ago than this (or this far ahead) is refused: a captured request cannot be replayed later. */
export const SIGNATURE_WINDOW_MS = 5 * 60_000;

export const signatureHeaders = {
  timestamp: 'x-lark-request-timestamp',
  nonce: 'x-lark-request-nonce',
  signature: 'x-lark-signature',
} as const;

export type SignatureCheck =
  { ok: true } | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'future_timestamp' | 'bad_signature'; message: string };

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

/** hex(sha256(timestamp + nonce + encrypt_key + raw body)), Feishu's callback signature. */
export function callbackSignature(input: { timestamp: string; nonce: string; encryptKey: string; rawBody: Buffer }): string {
  return createHash('sha256')
    .update(input.timestamp + input.nonce + input.encryptKey)
    .update(input.rawBody)
    .digest('hex');
}

export function verifyCallbackSignature(input: { rawBody: Buffer; headers: Headers; encryptKey: string; nowMs: number }): SignatureCheck {
  const timestamp = header(input.headers, signatureHeaders.timestamp);
  const nonce = header(input.headers, signatureHeaders.nonce);
  const signature = header(input.headers, signatureHeaders.signature);
  const missing = Object.entries({ [signatureHeaders.timestamp]: timestamp, [signatureHeaders.nonce]: nonce, [signatureHeaders.signature]: signature })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) return { ok: false, reason: 'missing_headers', message: `missing header ${missing.join(', ')}` };
  if (!/^\d{1,12}$/.test(timestamp!)) return { ok: false, reason: 'bad_timestamp', message: `${signatureHeaders.timestamp} must be Unix seconds` };
  const skewMs = input.nowMs - Number(timestamp) * 1000;
  if (skewMs > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'stale_timestamp', message: `${signatureHeaders.timestamp} is more than 5 minutes old` };
  if (skewMs < -SIGNATURE_WINDOW_MS) return { ok: false, reason: 'future_timestamp', message: `${signatureHeaders.timestamp} is more than 5 minutes ahead` };
  const expected = Buffer.from(callbackSignature({ timestamp: timestamp!, nonce: nonce!, encryptKey: input.encryptKey, rawBody: input.rawBody }), 'hex');
  const given = /^[0-9a-f]{64}$/i.test(signature!) ? Buffer.from(signature!, 'hex') : Buffer.alloc(0);
  // Both are 32 bytes once the format is right, so the comparison itself takes the same time.
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad_signature', message: `${signatureHeaders.signature} does not match the body` };
  return { ok: true };
}

export class CallbackDecryptError extends Error {
  readonly field = 'encrypt';
  constructor(message: string) {
    super(message);
    this.name = 'CallbackDecryptError';
  }
}

/** AES-256-CBC, key sha256(encrypt_key), IV the first 16 bytes of the base64-decoded data, PKCS#7. */
export function decryptCallback(encrypt: string, encryptKey: string): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encrypt)) throw new CallbackDecryptError('encrypt must be base64');
  const data = Buffer.from(encrypt, 'base64');
  if (data.length < 32 || data.length % 16 !== 0) throw new CallbackDecryptError('encrypt must be a 16-byte IV followed by whole AES blocks');
  const key = createHash('sha256').update(encryptKey).digest();
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, data.subarray(0, 16));
    const plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    // Wrong key or corrupt data: the padding or the text does not check out.
    throw new CallbackDecryptError('encrypt does not decrypt with FEISHU_ENCRYPT_KEY');
  }
}

/** An encrypted body: the whole callback is inside `encrypt`. */
export const encryptedCallbackBody = z.object({ encrypt: z.string().min(1).max(10_000_000) });

export const urlVerificationBody = z.object({
  type: z.literal('url_verification'),
  challenge: z.string().min(1).max(1000),
  token: z.string().max(256).optional(),
});

/** Every 2.0 event starts like this; dueflow reads the rest only for card.action.trigger. */
export const eventEnvelope = z.object({
  schema: z.literal('2.0'),
  header: z.object({
    event_id: z.string().min(1).max(200),
    event_type: z.string().min(1).max(200),
    create_time: z.string().max(32).optional(),
    token: z.string().max(256).optional(),
    app_id: z.string().min(1).max(64),
    tenant_key: z.string().max(200).optional(),
  }),
});

const id = z.string().min(1).max(200);

export const cardActionBody = eventEnvelope.extend({
  header: eventEnvelope.shape.header.extend({ event_type: z.literal('card.action.trigger') }),
  event: z.object({
    operator: z.object({ open_id: id.optional(), union_id: id.optional(), user_id: id.optional() }),
    token: z.string().max(1000).optional(),
    action: z.object({ value: z.unknown().optional(), tag: z.string().max(100).optional() }),
    host: z.string().max(100).optional(),
    context: z.object({ open_message_id: id, open_chat_id: id.optional() }),
  }),
});

/** The body as documented: encrypted, or plain (a URL verification or a 2.0 event). */
export const callbackBodyDoc = z.union([encryptedCallbackBody, urlVerificationBody, cardActionBody]);

export type ParsedCallback =
  | { kind: 'url_verification'; challenge: string; token?: string }
  | { kind: 'card_action'; event: CardActionEvent; token?: string; appId: string; eventType: 'card.action.trigger' }
  /** A verified 2.0 event dueflow does not act on; answered {} so Feishu does not retry it. */
  | { kind: 'other_event'; eventId: string; token?: string; appId: string; eventType: string }
  | { kind: 'invalid'; error: z.ZodError };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The plain (decrypted) callback JSON → what it is; `invalid` carries zod's issues, each naming a field. */
export function parseCallback(json: unknown): ParsedCallback {
  if (isObject(json) && json.type === 'url_verification') {
    const r = urlVerificationBody.safeParse(json);
    return r.success ? { kind: 'url_verification', challenge: r.data.challenge, token: r.data.token } : { kind: 'invalid', error: r.error };
  }
  const envelope = eventEnvelope.safeParse(json);
  if (!envelope.success) return { kind: 'invalid', error: envelope.error };
  const { header } = envelope.data;
  if (header.event_type !== 'card.action.trigger') {
    return { kind: 'other_event', eventId: header.event_id, token: header.token, appId: header.app_id, eventType: header.event_type };
  }
  const r = cardActionBody.safeParse(json);
  if (!r.success) return { kind: 'invalid', error: r.error };
  const { event } = r.data;
  return {
    kind: 'card_action',
    token: r.data.header.token,
    appId: r.data.header.app_id,
    eventType: 'card.action.trigger',
    event: {
      eventId: r.data.header.event_id,
      operator: { openId: event.operator.open_id, unionId: event.operator.union_id, userId: event.operator.user_id },
      value: event.action.value,
      openMessageId: event.context.open_message_id,
      openChatId: event.context.open_chat_id,
    },
  };
}

export const cardActionAnswerSchema = z.object({
  toast: z.object({ type: z.enum(['success', 'info', 'warning', 'error']), content: z.string() }),
  card: z.object({ type: z.literal('raw'), data: z.record(z.string(), z.unknown()) }).optional(),
});
