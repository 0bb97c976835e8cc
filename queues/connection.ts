/**
 * One connection policy for Redis:
 * - workers block on Redis and must ride out restarts, so their commands never give up
 *   (`maxRetriesPerRequest: null`, as BullMQ requires);
 * - producers (API requests adding jobs) fail fast while Redis is away, so a request answers
 *   503 instead of hanging.
 */
import type { RedisOptions } from 'ioredis';
import { Redis } from 'ioredis';
import type { Config } from '../src/config';

export type RedisRole = 'worker' | 'producer';

export function redisOptions(config: Pick<Config, 'REDIS_URL' | 'REDIS_TLS_REJECT_UNAUTHORIZED'>, role: RedisRole): RedisOptions {
  const tls = config.REDIS_URL.startsWith('rediss://') ? { rejectUnauthorized: config.REDIS_TLS_REJECT_UNAUTHORIZED } : undefined;
  const common: RedisOptions = { tls, connectionName: `dueflow-${role}`, retryStrategy: (times) => Math.min(times * 200, 2000) };
  return role === 'worker'
    ? { ...common, maxRetriesPerRequest: null, enableReadyCheck: true }
    : { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 };
}

export function createRedis(config: Pick<Config, 'REDIS_URL' | 'REDIS_TLS_REJECT_UNAUTHORIZED'>, role: RedisRole): Redis {
  return new Redis(config.REDIS_URL, redisOptions(config, role));
}

/** Resolves when the connection is ready; producers have no offline queue, so they must wait for it. */
export function waitForReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
