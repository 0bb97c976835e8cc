/**
 * The SDK's token cache, in Redis, shared by every dueflow process. A miss is a fetch the SDK is
 * about to make, so a miss takes a short lock first: the winner gets undefined (the SDK fetches
 * and calls `set`, which stores the token and ends the lock), the others poll until the token is
 * there. One process fetches, none of the others does. Values never leave this module but to the SDK.
 */
import { randomUUID } from 'node:crypto';
import { CTenantAccessToken } from '@larksuiteoapi/node-sdk';
import type { Redis } from 'ioredis';

/**
 * KEYS[1] value key, KEYS[2] lock key
 * ARGV[1] lock owner id, ARGV[2] lock TTL (ms)
 * Returns {1, value} when cached; {2} when the caller took the lock and must fetch; {0} when another holds it.
 */
const getOrLockScript = `
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
`;

/**
 * KEYS[1] value key, KEYS[2] lock key
 * ARGV[1] value, ARGV[2] expiry (unix ms)
 * Returns 1. A stored value ends the fetch, so the lock goes whoever holds it.
 */
const setAndUnlockScript = `
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`;

/**
 * KEYS[1] key
 * ARGV[1] the value it must still hold
 * Returns 1 when deleted, 0 when it held something else or nothing.
 */
const compareAndDeleteScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Temporary trouble of the cache itself: Redis unreachable, or the fetching process never stored a token. */
export class TokenCacheError extends Error {
  constructor(
    readonly reason: 'redis' | 'wait_timeout',
    message: string,
  ) {
    super(message);
    this.name = 'TokenCacheError';
  }
}

export interface TokenCacheOptions {
  redis: Redis;
  /** QUEUE_PREFIX (hash-tagged, so the value and its lock share a Cluster slot). */
  prefix: string;
  appId: string;
  /** Outlives one token fetch, so a live fetch never loses its lock. */
  lockMs?: number;
  /** How long a process waits for another one's fetch. */
  waitMs?: number;
  pollMs?: number;
}

/** As the SDK types it: its keys are strings or Symbols (CTenantAccessToken). */
// eslint-disable-next-line @typescript-eslint/no-wrapper-object-types -- mirrors the SDK's Cache key type
type CacheKey = string | Symbol;
interface CacheOptions {
  namespace?: string;
}

/** The SDK's `Cache` interface plus what dueflow needs around the token. */
export interface FeishuTokenCache {
  get(key: CacheKey, options?: CacheOptions): Promise<unknown>;
  set(key: CacheKey, value: unknown, expiredTimeMs?: number, options?: CacheOptions): Promise<boolean>;
  /** Drops the cached tenant token only if it is still `badToken` (a fresh one another process stored stays). */
  invalidate(badToken: string): Promise<boolean>;
  /** The token fetch this process started failed: free its lock so a waiter can try at once. */
  abandonFetch(): Promise<void>;
}

export function createTokenCache(options: TokenCacheOptions): FeishuTokenCache {
  const { redis, prefix, appId } = options;
  const lockMs = options.lockMs ?? 10_000;
  const waitMs = options.waitMs ?? 5_000;
  const pollMs = options.pollMs ?? 50;
  /** Lock key → owner id, for the locks this instance holds. */
  const held = new Map<string, string>();

  const valueKey = (key: CacheKey, namespace = appId) => {
    const name = typeof key === 'string' ? key : (key.description ?? 'symbol');
    return `${prefix}:feishu-app:${namespace}:${name}`;
  };
  const lockKeyOf = (k: string) => `${k}:lock`;

  const redisCall = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new TokenCacheError('redis', `token cache (Redis) ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  const releaseLock = async (k: string) => {
    const owner = held.get(lockKeyOf(k));
    if (owner === undefined) return;
    held.delete(lockKeyOf(k));
    await redisCall('unlock', () => redis.eval(compareAndDeleteScript, 1, lockKeyOf(k), owner));
  };

  return {
    async get(key, opts) {
      const k = valueKey(key, opts?.namespace);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const owner = randomUUID();
        const [state, value] = (await redisCall('get', () => redis.eval(getOrLockScript, 2, k, lockKeyOf(k), owner, lockMs))) as [number, string?];
        if (state === 1) return JSON.parse(value as string);
        if (state === 2) {
          held.set(lockKeyOf(k), owner);
          return undefined;
        }
        if (Date.now() >= deadline) throw new TokenCacheError('wait_timeout', `waited ${waitMs} ms for another process to fetch the Feishu app token`);
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },

    async set(key, value, expiredTimeMs, opts) {
      const k = valueKey(key, opts?.namespace);
      // The SDK expires tokens 3 min early; one already past that is used once and not shared.
      if (expiredTimeMs === undefined || !Number.isFinite(expiredTimeMs) || expiredTimeMs <= Date.now()) {
        await releaseLock(k);
        return true;
      }
      held.delete(lockKeyOf(k));
      await redisCall('set', () => redis.eval(setAndUnlockScript, 2, k, lockKeyOf(k), JSON.stringify(value), Math.floor(expiredTimeMs)));
      return true;
    },

    async invalidate(badToken) {
      const deleted = await redisCall('invalidate', () => redis.eval(compareAndDeleteScript, 1, valueKey(CTenantAccessToken), JSON.stringify(badToken)));
      return deleted === 1;
    },

    async abandonFetch() {
      await releaseLock(valueKey(CTenantAccessToken));
    },
  };
}
