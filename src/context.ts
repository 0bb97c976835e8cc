/**
 * The process context: config, logger, database, queues and metrics, built once by main.ts
 * (or by a test, against its own database and queue prefix) and passed down explicitly.
 */
import type { Connection } from 'mongoose';
import type { Redis } from 'ioredis';
import type { Config } from './config';
import type { Logger } from './logger';
import { connectMongo } from './db/connection';
import type { Models } from './db/models';
import { createModels, initModels } from './db/models';
import { detectStore, type StoreInfo } from './db/guarded';
import type { Metrics } from './metrics';
import { createMetrics } from './metrics';
import type { SecretBox } from './secrets';
import { createSecretBox } from './secrets';
import type { Providers } from './providers';
import { createProviders } from './providers';
import { feishuAppEnabled } from './config';
import { createFeishuAppApi } from './feishuApp/client';
import type { FeishuAppApi } from './feishuApp/types';
import { createRedis, waitForReady } from '../queues/connection';
import { subscribeUserCache, type UserCacheHandle } from './settings/cache';
import type { Queues } from '../queues';
import { closeQueues, createQueues } from '../queues';

export interface AppContext {
  config: Config;
  logger: Logger;
  mongo: Connection;
  models: Models;
  /** What the store can do atomically (the seam in db/guarded.ts). */
  store: StoreInfo;
  /** Producer connection: fails fast while Redis is away. */
  redis: Redis;
  queues: Queues;
  metrics: Metrics;
  secrets: SecretBox;
  /** Feishu providers with the configured timeout. */
  providers: Providers;
  /** The host product's app (cards, redraws, buzz); undefined when FEISHU_APP_ID is not set. */
  feishuApp?: FeishuAppApi;
  /** Users' settings and channels held in this process, dropped on every change (settings/cache.ts). */
  userCache: UserCacheHandle;
}

export async function createContext(config: Config, logger: Logger): Promise<AppContext> {
  const mongo = await connectMongo(config);
  const models = createModels(mongo);
  await initModels(models);
  const store = await detectStore(mongo, config.STORE_GUARDED_UPDATES);
  logger.info({ guardedUpdates: store.guardedUpdates, setting: config.STORE_GUARDED_UPDATES }, 'store: guarded updates');
  const redis = createRedis(config, 'producer');
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis producer connection error'));
  await waitForReady(redis);
  await warnUnlessNoEviction(redis, logger);
  const queues = createQueues(redis, config.QUEUE_PREFIX, (err, queue) => logger.warn({ err: err.message, queue }, 'queue error'));
  const metrics = createMetrics(queues);
  const feishuApp = feishuAppEnabled(config) ? createFeishuAppApi({ config, redis, logger }) : undefined;
  const providers = createProviders({ timeoutMs: config.FEISHU_TIMEOUT_MS, allowLoopback: config.WEBHOOK_ALLOW_LOOPBACK, feishuApp });
  const subscriber = createRedis(config, 'worker');
  const userCache = subscribeUserCache({
    subscriber,
    publisher: redis,
    prefix: config.QUEUE_PREFIX,
    size: config.USER_CACHE_SIZE,
    onError: (err) => logger.warn({ err: err.message }, 'user cache: redis error (nothing is cached until it is subscribed again)'),
  });
  return { config, logger, mongo, models, store, redis, queues, metrics, secrets: createSecretBox(config.SECRETS_KEY), providers, feishuApp, userCache };
}

export async function closeContext(ctx: AppContext): Promise<void> {
  await closeQueues(ctx.queues).catch(() => undefined);
  ctx.userCache.close();
  ctx.redis.disconnect();
  await ctx.mongo.close().catch(() => undefined);
}

/** BullMQ's keys must never be evicted; managed Redis may refuse CONFIG, which is only worth a debug line. */
async function warnUnlessNoEviction(redis: Redis, logger: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy && policy !== 'noeviction')
      logger.warn({ policy }, 'Redis maxmemory-policy is not noeviction: queued jobs may be evicted under memory pressure');
  } catch (err) {
    logger.debug({ err: (err as Error).message }, 'could not read Redis maxmemory-policy');
  }
}
