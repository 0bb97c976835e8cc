/**
 * The users' settings and channels, cached in each process: every delivery and every request
 * needs them, and they change rarely. A change is written to MongoDB, then announced on a Redis
 * pub/sub channel (`<QUEUE_PREFIX>:user-cache`); every process drops that user's entries when the
 * announcement arrives. So a change reaches every worker within the pub/sub delay, and never
 * waits for an entry to age out.
 *
 * What keeps it right:
 * - a read that began before an invalidation is not stored (the epoch moved on meanwhile);
 * - while this process is not subscribed (starting, Redis lost and back), nothing is cached and
 *   what was cached is dropped: an announcement missed then cannot leave a stale entry;
 * - entries are bounded (USER_CACHE_SIZE, least recently used out) and live at most
 *   `maxAgeMs`, a safety net for a writer that died between its write and its announcement.
 */
import type { Redis } from 'ioredis';

export type CachePart = 'settings' | 'channels';

export interface UserCacheOptions {
  /** Users held (each up to one entry per part); 0 turns the cache off. */
  size: number;
  maxAgeMs?: number;
  now?: () => number;
}

export class UserCache {
  private readonly entries = new Map<string, { value: unknown; at: number }>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private epoch = 0;
  private live = false;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: UserCacheOptions) {
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The cached value, or `load()` shared by the concurrent callers and stored when nothing changed meanwhile. */
  async get<T>(part: CachePart, userId: string, load: () => Promise<T>): Promise<T> {
    if (!this.live || this.opts.size === 0) return load();
    const key = `${part}\u0000${userId}`;
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.maxAgeMs) {
      // Map order is the eviction order: a hit moves to the back.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value as T;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending as Promise<T>;
    const epoch = this.epoch;
    const read = load().then(
      (value) => {
        if (this.inflight.get(key) === read) this.inflight.delete(key);
        if (epoch === this.epoch && this.live) this.store(key, value);
        return value;
      },
      (err: unknown) => {
        if (this.inflight.get(key) === read) this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, read);
    return read;
  }

  /** Drops the user's entries (a change was written, here or in another process). */
  drop(userId: string): void {
    this.epoch++;
    for (const part of ['settings', 'channels'] as const) {
      this.entries.delete(`${part}\u0000${userId}`);
      this.inflight.delete(`${part}\u0000${userId}`);
    }
  }

  /** Caching on (subscribed) or off (not subscribed: everything dropped, every read goes to MongoDB). */
  setLive(live: boolean): void {
    this.epoch++;
    this.live = live;
    this.entries.clear();
    this.inflight.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: string, value: unknown): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: this.now() });
    // Two parts per user.
    while (this.entries.size > this.opts.size * 2) this.entries.delete(this.entries.keys().next().value as string);
  }
}

export const userCacheChannel = (prefix: string) => `${prefix}:user-cache`;

export interface UserCacheHandle {
  cache: UserCache;
  /** Announces a user's change to every process (and drops it here at once). */
  invalidate: (userId: string) => Promise<void>;
  close: () => void;
}

/**
 * The cache of this process, subscribed on its own connection (a subscribed connection can do
 * nothing else); `publisher` announces this process's own changes.
 */
export function subscribeUserCache(opts: {
  subscriber: Redis;
  publisher: Redis;
  prefix: string;
  size: number;
  onError?: (err: Error) => void;
}): UserCacheHandle {
  const cache = new UserCache({ size: opts.size });
  const channel = userCacheChannel(opts.prefix);
  const { subscriber } = opts;
  subscriber.on('message', (ch: string, userId: string) => {
    if (ch === channel) cache.drop(userId);
  });
  const subscribe = () =>
    subscriber.subscribe(channel).then(
      () => cache.setLive(true),
      (err: Error) => opts.onError?.(err),
    );
  subscriber.on('ready', () => void subscribe());
  subscriber.on('close', () => cache.setLive(false));
  subscriber.on('error', (err: Error) => opts.onError?.(err));
  if (subscriber.status === 'ready') void subscribe();
  return {
    cache,
    invalidate: async (userId) => {
      cache.drop(userId);
      try {
        await opts.publisher.publish(channel, userId);
      } catch (err) {
        // The write stands; other processes' entries then age out (maxAgeMs) or drop with their subscription.
        opts.onError?.(err as Error);
      }
    },
    close: () => {
      cache.setLive(false);
      subscriber.disconnect();
    },
  };
}

/** A cached read when the context has a cache (a process's context does; some tests' do not). */
export function cachedRead<T>(ctx: { userCache?: UserCacheHandle }, part: CachePart, userId: string, load: () => Promise<T>): Promise<T> {
  return ctx.userCache ? ctx.userCache.cache.get(part, userId, load) : load();
}
