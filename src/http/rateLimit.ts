/**
 * Request rate limits shared by every web dyno (Redis; rate-limiter-flexible). When Redis is
 * away an in-memory limiter stands in, so the API neither fails nor runs unlimited.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { errorBody } from './errors';

export interface Limiter {
  /** Spends one point for `key`; resolves with the wait in ms when over the limit, else 0. */
  hit(key: string): Promise<number>;
  /** The wait in ms while `key` is over the limit (or blocked), else 0; spends nothing. */
  waitFor(key: string): Promise<number>;
}

export function createLimiter(redis: Redis, opts: { prefix: string; name: string; points: number; durationSec: number; blockSec?: number }): Limiter {
  const common = { points: opts.points, duration: opts.durationSec, blockDuration: opts.blockSec ?? 0 };
  const limiter = new RateLimiterRedis({
    ...common,
    storeClient: redis,
    keyPrefix: `${opts.prefix}:rl:${opts.name}`,
    insuranceLimiter: new RateLimiterMemory(common),
  });
  return {
    async hit(key) {
      try {
        await limiter.consume(key);
        return 0;
      } catch (res) {
        if (res instanceof RateLimiterRes) return Math.max(1, res.msBeforeNext);
        throw res;
      }
    },
    async waitFor(key) {
      const res = await limiter.get(key);
      return res && res.consumedPoints > opts.points ? Math.max(1, res.msBeforeNext) : 0;
    },
  };
}

export function tooManyRequests(res: Parameters<RequestHandler>[1], waitMs: number, what: string): void {
  res.setHeader('Retry-After', String(Math.ceil(waitMs / 1000)));
  res.status(429).json(errorBody('rate_limited', `too many ${what}; retry after ${Math.ceil(waitMs / 1000)} s`));
}

/** Limits requests per caller; `keyOf` names the caller (set by the auth middleware before it). */
export function limitRequests(limiter: Limiter, keyOf: (req: Parameters<RequestHandler>[0]) => string): RequestHandler {
  return async (req, res, next) => {
    try {
      const waitMs = await limiter.hit(keyOf(req));
      if (waitMs > 0) return tooManyRequests(res, waitMs, 'requests');
      next();
    } catch (err) {
      next(err);
    }
  };
}

export const tokenKey = (header: string | undefined) =>
  createHash('sha256')
    .update(header ?? '')
    .digest('hex')
    .slice(0, 32);
