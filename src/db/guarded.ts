/**
 * The store seam: the one place that knows whether the store applies a guarded update atomically.
 * MongoDB does; FerretDB v1 reads the matching document and writes it back by _id, so two callers
 * can both "win" one transition (measured: 379 claims of 200 due jobs by two scanners). There, and
 * only there, a guarded transition runs under a short per-document Redis lock (guardLock.ts).
 * Detected once at connect (FerretDB reports `ferretdbVersion` in buildInfo);
 * STORE_GUARDED_UPDATES=atomic|locked overrides.
 *
 * `exclusively` is the other kind: a few reads and writes that must not interleave with another
 * run of them (a conflict check and the insert it allows), which no store makes atomic without
 * transactions. It always takes its lock.
 *
 * `guardedMany` is guardedTransition for a batch: one guarded update per document, their locks
 * taken (where needed) in one round trip, the busy ones left out for the caller's next run.
 */
import type { Connection } from 'mongoose';
import type { Redis } from 'ioredis';
import { lockMany, withGuardLock } from './guardLock';
import type { Config } from '../config';

export type GuardedUpdates = 'atomic' | 'locked';

export interface StoreInfo {
  guardedUpdates: GuardedUpdates;
}

export async function detectStore(conn: Connection, setting: 'auto' | GuardedUpdates): Promise<StoreInfo> {
  if (setting !== 'auto') return { guardedUpdates: setting };
  const info = (await conn.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string };
  return { guardedUpdates: info.ferretdbVersion ? 'locked' : 'atomic' };
}

/** What a lock is of: a document of a collection, or a user's schedule or digest. */
export type LockKind =
  | 'trigger'
  | 'preview'
  | 'notification'
  | 'due-job'
  | 'reminder'
  | 'schedule'
  | 'digest'
  | 'event'
  | 'event-delivery'
  | 'external-id'
  | 'channel'
  | 'webhook-endpoint';

/** The one lock naming: `<kind>:<id>`. */
export const lockName = (kind: LockKind, id: unknown): string => `${kind}:${String(id)}`;

/** A lock stayed taken (another change of the same thing is running): try again shortly. */
export class StoreBusyError extends Error {
  constructor(readonly lockName: string) {
    super(`${lockName} is being changed by another process; try again`);
    this.name = 'StoreBusyError';
  }
}

type Ctx = { store: StoreInfo; redis: Redis; config: Config };

/** Runs one guarded update of the document `name` names; throws StoreBusyError when its lock stayed taken. */
export async function guardedTransition<T>(ctx: Ctx, name: string, update: () => Promise<T>, waitMs?: number): Promise<T> {
  if (ctx.store.guardedUpdates === 'atomic') return update();
  return exclusively(ctx, name, update, waitMs);
}

/** Runs fn holding the lock `name`, on every store; throws StoreBusyError when it stayed taken for `waitMs`. */
export async function exclusively<T>(ctx: Pick<Ctx, 'redis' | 'config'>, name: string, fn: () => Promise<T>, waitMs = 2000): Promise<T> {
  const locked = await withGuardLock(ctx, name, fn, waitMs);
  if (!locked.acquired) throw new StoreBusyError(name);
  return locked.value;
}

/** The same, answering null instead of throwing when the lock stayed taken (a caller that just looks again later). */
export async function guardedOrNull<T>(ctx: Ctx, name: string, update: () => Promise<T | null>): Promise<T | null> {
  try {
    return await guardedTransition(ctx, name, update);
  } catch (err) {
    if (err instanceof StoreBusyError) return null;
    throw err;
  }
}

/**
 * Runs fn with the documents of `names` it may update guarded, at once: on an atomic store all of
 * them, no lock; otherwise those whose lock it took without waiting (one pipeline, lockMany),
 * held until fn is done. A busy one is left out: its caller looks again on its next run.
 */
export async function guardedMany<T>(ctx: Ctx, names: string[], fn: (lockedNames: string[]) => Promise<T>): Promise<T> {
  if (ctx.store.guardedUpdates === 'atomic') return fn(names);
  const { locked, release } = await lockMany(ctx, names);
  try {
    return await fn(locked);
  } finally {
    await release().catch(() => undefined);
  }
}
