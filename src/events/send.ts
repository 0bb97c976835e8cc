/**
 * One webhook request in the Standard Webhooks format, as Svix sends them:
 *   webhook-id: the event id (the same on every attempt, so the receiver can dedupe)
 *   webhook-timestamp: the attempt's Unix seconds
 *   webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>", keyed by the secret's decoded bytes>
 *   body: {"type", "timestamp", "data"}
 * POSTed through the SSRF-guarded agent, redirects not followed, bounded by EVENT_TIMEOUT_MS.
 */
import { fetch, type Agent } from 'undici';
import { Webhook } from 'standardwebhooks';
import { blockedAddressCode, createGuardedAgent, literalHostProblem } from '../providers/addressGuard';
import type { AttemptCode } from '../db/eventDelivery';

/** How much of an answer is kept (the ledger, POST /:id/test). */
export const ANSWER_BYTES = 1024;

export interface WireMessage {
  body: string;
  headers: Record<string, string>;
}

export interface StoredEvent {
  _id: string;
  type: string;
  at: Date;
  dataJson: string;
}

/** The body is built around the stored JSON text of `data`, so what is signed is exactly what is sent. */
export function wireMessage(event: StoredEvent, secret: string, now: Date): WireMessage {
  const body = `{"type":${JSON.stringify(event.type)},"timestamp":${JSON.stringify(event.at.toISOString())},"data":${event.dataJson}}`;
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': event._id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(event._id, now, body),
    },
  };
}

export type SendResult =
  | { kind: 'answered'; status: number; durationMs: number; body: string }
  | { kind: 'no_answer'; code: Extract<AttemptCode, 'timeout' | 'network_error' | 'address_refused'>; detail: string; durationMs: number };

export interface EventSender {
  post(url: string, message: WireMessage): Promise<SendResult>;
}

export function createEventSender(opts: { allowLoopback: boolean; timeoutMs: number }): EventSender {
  const agent = createGuardedAgent(opts.allowLoopback);
  return { post: (url, message) => post({ url, message, agent, ...opts }) };
}

async function post(r: { url: string; message: WireMessage; agent: Agent; allowLoopback: boolean; timeoutMs: number }): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const literal = literalHostProblem(r.url, r.allowLoopback);
  if (literal) return { kind: 'no_answer', code: 'address_refused', detail: literal, durationMs: 0 };
  try {
    const response = await fetch(r.url, {
      dispatcher: r.agent,
      method: 'POST',
      headers: r.message.headers,
      body: r.message.body,
      // A redirect could hand the signed event to someone else: it is a failed attempt instead.
      redirect: 'manual',
      signal: AbortSignal.timeout(r.timeoutMs),
    });
    return { kind: 'answered', status: response.status, body: await firstBytes(response.body), durationMs: elapsed() };
  } catch (err) {
    const durationMs = elapsed();
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
      return { kind: 'no_answer', code: 'timeout', detail: `no answer within ${r.timeoutMs} ms`, durationMs };
    const detail = e?.cause?.message ? `${e.cause.code ? `${e.cause.code}: ` : ''}${e.cause.message}` : String(e?.message ?? err);
    if (e?.cause?.code === blockedAddressCode) return { kind: 'no_answer', code: 'address_refused', detail, durationMs };
    return { kind: 'no_answer', code: 'network_error', detail, durationMs };
  }
}

/** The first KB of a body; the rest is not read. A body that stalls after the status keeps what came. */
async function firstBytes(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!stream) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // the status is what decides; a broken body only shortens what is kept
  } finally {
    reader.cancel().catch(() => undefined);
  }
  const bytes = Buffer.concat(chunks).subarray(0, ANSWER_BYTES);
  // Cut on a whole character: a cut one would be kept as U+FFFD.
  return bytes.toString('utf8').replace(/\uFFFD$/, '');
}
