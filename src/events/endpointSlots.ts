/**
 * The per-endpoint limit on requests in flight, across every worker: a Redis sorted set per
 * endpoint, one member per request (score: when it started, by Redis' clock). A holder that
 * died is forgotten after `holdMs`, so a crash never leaks a slot for long.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** KEYS[1] the set; ARGV: limit, holdMs, token. Returns 1 (taken) or 0 (full). */
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

export interface EndpointSlots {
  /** A release function when a slot was free, else undefined. */
  take(endpointId: string): Promise<(() => Promise<void>) | undefined>;
}

export function createEndpointSlots(redis: Redis, opts: { prefix: string; limit: number; holdMs: number }): EndpointSlots {
  return {
    async take(endpointId) {
      const key = `${opts.prefix}:event-endpoint-slots:${endpointId}`;
      const token = randomUUID();
      const taken = await redis.eval(acquireScript, 1, key, opts.limit, opts.holdMs, token);
      if (taken !== 1) return undefined;
      return async () => {
        await redis.zrem(key, token).catch(() => undefined);
      };
    },
  };
}
