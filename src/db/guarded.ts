/**
 * The store seam: the one place that knows whether the store applies a guarded update atomically.
 * MongoDB does; FerretDB v1 reads the matching document and writes it back by _id, so two callers
 * can both "win" one transition. There, and only there, a guarded transition runs under a short
 * per-document Redis lock (guardLock.ts). Detected once at connect (FerretDB reports
 * `ferretdbVersion` in buildInfo); STORE_GUARDED_UPDATES=atomic|locked overrides.
 */
import type { Connection } from 'mongoose';
import type { Redis } from 'ioredis';
import { withGuardLock } from './guardLock';
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

/** The lock of one document's transitions: `<collection>:<id>`. */
export const guardLockName = (collection: string, id: unknown) => `${collection}:${String(id)}`;

/** The document's lock stayed taken (another transition of it is running): try again shortly. */
export class StoreBusyError extends Error {
  constructor(readonly lockName: string) {
    super(`${lockName} is being changed by another process; try again`);
    this.name = 'StoreBusyError';
  }
}

type Ctx = { store: StoreInfo; redis: Redis; config: Config };

/** Runs one guarded update of the document `lockName` names; throws StoreBusyError when its lock stayed taken. */
export async function guardedTransition<T>(ctx: Ctx, lockName: string, update: () => Promise<T>): Promise<T> {
  if (ctx.store.guardedUpdates === 'atomic') return update();
  const locked = await withGuardLock(ctx, lockName, update);
  if (!locked.acquired) throw new StoreBusyError(lockName);
  return locked.value;
}
