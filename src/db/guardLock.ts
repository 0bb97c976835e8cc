/**
 * Short Redis locks around guarded updates. FerretDB v1 does not apply a guarded update
 * atomically: its findAndModify/update reads the matching document, then writes it back by _id,
 * so two callers can both "win" one transition (measured: 379 claims of 200 due jobs by two
 * scanners; two of three concurrent confirmations of one preview). Holding a lock per document
 * across the update makes the read-then-write exclusive. The state stays in MongoDB; a lock only
 * serialises the few milliseconds of a transition, and expires by itself if its holder dies.
 * On MongoDB, where the update alone is atomic, it costs a round trip and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config';

type Ctx = { redis: Redis; config: Pick<Config, 'QUEUE_PREFIX'> };

/** Long enough for one guarded update. */
const lockTtlMs = 15_000;
const releaseScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const lockKey = (ctx: Ctx, name: string) => `${ctx.config.QUEUE_PREFIX}:guard-lock:${name}`;

export type Locked<T> = { acquired: true; value: T } | { acquired: false };

/** Runs `fn` holding the lock `name`, waiting up to `waitMs` for it; `{acquired: false}` when it stayed taken. */
export async function withGuardLock<T>(ctx: Ctx, name: string, fn: () => Promise<T>, waitMs = 2000): Promise<Locked<T>> {
  const key = lockKey(ctx, name);
  const token = randomUUID();
  const deadline = Date.now() + waitMs;
  while ((await ctx.redis.set(key, token, 'PX', lockTtlMs, 'NX')) !== 'OK') {
    if (Date.now() >= deadline) return { acquired: false };
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
  }
  try {
    return { acquired: true, value: await fn() };
  } finally {
    await ctx.redis.eval(releaseScript, 1, key, token).catch(() => undefined);
  }
}

/** Takes, without waiting, the locks it can of many names in one round trip; returns those it got and a release. */
export async function lockMany(ctx: Ctx, names: string[]): Promise<{ locked: string[]; release: () => Promise<void> }> {
  if (!names.length) return { locked: [], release: async () => undefined };
  const token = randomUUID();
  const pipeline = ctx.redis.pipeline();
  for (const name of names) pipeline.set(lockKey(ctx, name), token, 'PX', lockTtlMs, 'NX');
  const results = (await pipeline.exec()) ?? [];
  const locked = names.filter((_, i) => results[i]?.[1] === 'OK');
  const release = async () => {
    if (!locked.length) return;
    const p = ctx.redis.pipeline();
    for (const name of locked) p.eval(releaseScript, 1, lockKey(ctx, name), token);
    await p.exec();
  };
  return { locked, release };
}
