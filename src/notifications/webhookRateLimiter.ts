/**
 * Per-webhook rate limit shared by every worker, in Redis: Feishu allows 5 requests per second
 * and 100 per minute to one bot, counted over rolling windows. Each send reserves the earliest
 * moment that keeps both rolling windows within limits (a sliding log of reservations in one
 * sorted set per webhook); the caller waits for its moment, or gives it back and is delayed.
 *
 * Why not a fixed-window library limiter: windows counted in whole seconds (rate-limiter-flexible)
 * let 2x the limit through across a window edge, and Feishu answers that with 11232.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const reserveScript = `
local key = KEYS[1]
local perSecond = tonumber(ARGV[1])
local perMinute = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])
local member = ARGV[4]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60000 - margin)
local slot = now
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then slot = math.max(slot, tonumber(last[2])) end
local s = redis.call('ZRANGE', key, -perSecond, -perSecond, 'WITHSCORES')
if s[2] then slot = math.max(slot, tonumber(s[2]) + 1000 + margin) end
local m = redis.call('ZRANGE', key, -perMinute, -perMinute, 'WITHSCORES')
if m[2] then slot = math.max(slot, tonumber(m[2]) + 60000 + margin) end
redis.call('ZADD', key, slot, member)
redis.call('PEXPIRE', key, (slot - now) + 60000 + 2 * margin)
return {slot, now}
`;

export interface Reservation {
  /** How long to wait before sending (0: send now). */
  waitMs: number;
  /** Gives the slot back (when the caller would rather be delayed than wait). */
  release(): Promise<void>;
}

export interface WebhookRateLimiter {
  reserve(webhookUrl: string): Promise<Reservation>;
  /** Feishu said "slow down": no send to this webhook from any worker for the next `ms`. */
  pause(webhookUrl: string, ms: number): Promise<void>;
}

// Fills the last second before `now + ms` with reservations, so the next free moment is after it.
const pauseScript = `
local key = KEYS[1]
local perSecond = tonumber(ARGV[1])
local ms = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local at = now + ms - 1000
for i = 1, perSecond do redis.call('ZADD', key, at, 'pause-' .. now .. '-' .. i) end
redis.call('PEXPIRE', key, ms + 61000)
return at
`;

export function createWebhookRateLimiter(redis: Redis, opts: { prefix: string; perSecond: number; perMinute: number; marginMs?: number }): WebhookRateLimiter {
  const margin = opts.marginMs ?? 250; // jitter between the reserved moment and Feishu receiving the request
  const keyOf = (webhookUrl: string) => `${opts.prefix}:webhook-rate:${createHash('sha256').update(webhookUrl).digest('hex').slice(0, 32)}`;
  return {
    async pause(webhookUrl, ms) {
      await redis.eval(pauseScript, 1, keyOf(webhookUrl), opts.perSecond, ms);
    },
    async reserve(webhookUrl) {
      const key = keyOf(webhookUrl);
      const member = randomUUID();
      const [slot, now] = (await redis.eval(reserveScript, 1, key, opts.perSecond, opts.perMinute, margin, member)) as [number, number];
      return {
        waitMs: Math.max(0, slot - now),
        release: async () => { await redis.zrem(key, member); },
      };
    },
  };
}
