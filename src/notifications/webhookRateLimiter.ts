/**
 * Feishu's rate limits, shared by every worker, in Redis, counted over rolling windows:
 * - a group bot or Flow webhook: 5 requests per second and 100 per minute;
 * - the app: 50 per second and 1000 per minute, and 5 per second to one person.
 * Each send reserves the earliest moment that keeps every window it counts in within its limit
 * (a sliding log of reservations per limit, one sorted set each); the caller waits for its
 * moment, or gives it back and is delayed.
 *
 * The app's budget is split in two lanes with logs of their own: urgent sends (critical
 * anomalies, answers to a press) get FEISHU_APP_URGENT_PER_SECOND of it, the rest the remainder.
 * Reservations within a lane are first come, first served, so without a lane of its own an
 * urgent send would queue behind every bulk reservation already made.
 *
 * Why not a fixed-window library limiter: windows counted in whole seconds (rate-limiter-flexible)
 * let 2x the limit through across a window edge, and Feishu answers that with 11232 / 99991400.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Reserves one send in every log of KEYS at the earliest moment all of them allow.
 * KEYS: the sliding logs (sorted sets of member → reserved ms).
 * ARGV[1]: margin ms (jitter between the reserved moment and Feishu receiving the request);
 * ARGV[2]: the member; then, per key i, ARGV[1 + 2i]: per-second limit, ARGV[2 + 2i]: per-minute
 * limit (0: none).
 * Returns {slot, now} in ms of Redis' clock.
 */
const reserveScript = `
local margin = tonumber(ARGV[1])
local member = ARGV[2]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local slot = now
for i, key in ipairs(KEYS) do
  local perSecond = tonumber(ARGV[1 + 2 * i])
  local perMinute = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60000 - margin)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then slot = math.max(slot, tonumber(last[2])) end
  local s = redis.call('ZRANGE', key, -perSecond, -perSecond, 'WITHSCORES')
  if s[2] then slot = math.max(slot, tonumber(s[2]) + 1000 + margin) end
  if perMinute > 0 then
    local m = redis.call('ZRANGE', key, -perMinute, -perMinute, 'WITHSCORES')
    if m[2] then slot = math.max(slot, tonumber(m[2]) + 60000 + margin) end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, slot, member)
  redis.call('PEXPIRE', key, (slot - now) + 60000 + 2 * margin)
end
return {slot, now}
`;

/**
 * Fills the last second before now + ms of every log with reservations, so the next free moment
 * in each is after it.
 * KEYS: the logs; ARGV[1]: ms; ARGV[1 + i]: the per-second limit of key i. Returns the fill time.
 */
const pauseScript = `
local ms = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local at = now + ms - 1000
for i, key in ipairs(KEYS) do
  for j = 1, tonumber(ARGV[1 + i]) do redis.call('ZADD', key, at, 'pause-' .. now .. '-' .. j) end
  redis.call('PEXPIRE', key, ms + 61000)
end
return at
`;

export interface Reservation {
  /** How long to wait before sending (0: send now). */
  waitMs: number;
  /** Gives the slot back (when the caller would rather be delayed than wait). */
  release(): Promise<void>;
}

/** Whom a send counts against: a webhook, or the app (in a lane) and the person it writes to. */
export type RateTarget = { kind: 'webhook'; url: string } | { kind: 'app'; recipient: string; urgent: boolean };

/** What Feishu asked to slow down: the webhook, the whole app, or sends to one person (230020). */
export type PauseScope = 'target' | 'recipient';

export interface WebhookRateLimiter {
  reserve(target: RateTarget): Promise<Reservation>;
  /** Feishu said "slow down": no send counted in `scope` of this target from any worker for the next `ms`. */
  pause(target: RateTarget, ms: number, scope?: PauseScope): Promise<void>;
}

export interface AppRateLimits {
  perSecond: number;
  perMinute: number;
  recipientPerSecond: number;
  /** Of perSecond (and the same share of perMinute), what urgent sends have to themselves. */
  urgentPerSecond: number;
}

export interface RateLimiterOptions {
  prefix: string;
  /** Per webhook. */
  perSecond: number;
  perMinute: number;
  app?: AppRateLimits;
  marginMs?: number;
}

interface Log {
  key: string;
  perSecond: number;
  perMinute: number;
}

const hashOf = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

export function createWebhookRateLimiter(redis: Redis, opts: RateLimiterOptions): WebhookRateLimiter {
  const margin = opts.marginMs ?? 250;
  const app = opts.app ?? { perSecond: 50, perMinute: 1000, recipientPerSecond: 5, urgentPerSecond: 10 };
  const urgentPerSecond = Math.min(app.urgentPerSecond, app.perSecond - 1);
  const urgentPerMinute = Math.floor((app.perMinute * urgentPerSecond) / app.perSecond);
  const lanes = {
    urgent: { key: `${opts.prefix}:app-rate:urgent`, perSecond: urgentPerSecond, perMinute: urgentPerMinute },
    bulk: { key: `${opts.prefix}:app-rate:bulk`, perSecond: app.perSecond - urgentPerSecond, perMinute: app.perMinute - urgentPerMinute },
  };
  const recipientLog = (recipient: string): Log => ({
    key: `${opts.prefix}:app-rate:to:${hashOf(recipient)}`,
    perSecond: app.recipientPerSecond,
    perMinute: 0,
  });
  const logsOf = (target: RateTarget, scope: PauseScope = 'target'): Log[] => {
    if (target.kind === 'webhook') return [{ key: `${opts.prefix}:webhook-rate:${hashOf(target.url)}`, perSecond: opts.perSecond, perMinute: opts.perMinute }];
    if (scope === 'recipient') return [recipientLog(target.recipient)];
    return [target.urgent ? lanes.urgent : lanes.bulk, recipientLog(target.recipient)];
  };
  return {
    async pause(target, ms, scope) {
      // The app said slow down: both lanes wait, the urgent one too.
      const logs = target.kind === 'app' && scope !== 'recipient' ? [lanes.urgent, lanes.bulk] : logsOf(target, scope);
      await redis.eval(pauseScript, logs.length, ...logs.map((l) => l.key), ms, ...logs.map((l) => l.perSecond));
    },
    async reserve(target) {
      const logs = logsOf(target);
      const member = randomUUID();
      const limits = logs.flatMap((l) => [l.perSecond, l.perMinute]);
      const [slot, now] = (await redis.eval(reserveScript, logs.length, ...logs.map((l) => l.key), margin, member, ...limits)) as [number, number];
      return {
        waitMs: Math.max(0, slot - now),
        release: async () => {
          const p = redis.pipeline();
          for (const l of logs) p.zrem(l.key, member);
          await p.exec();
        },
      };
    },
  };
}
