/**
 * Short Redis locks around the claim of one due job. They exist because FerretDB v1 does not
 * apply a guarded update atomically: its findAndModify/update reads the matching document, then
 * writes it back by _id, so two scanners can both "win" one pending job. Holding this lock across
 * the guarded update makes the read-then-write exclusive per job; on MongoDB it costs one round
 * trip per batch and changes nothing. The lock only serialises claimers: the state stays in
 * MongoDB, and a lost lock (Redis restart) is still caught by the BullMQ job id of the occurrence.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context';

/** Long enough for one guarded update; expires by itself if its holder dies. */
const lockTtlMs = 15_000;

const releaseScript = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

type Ctx = Pick<AppContext, 'redis' | 'config'>;

const lockKey = (ctx: Ctx, dueJobId: string) => `${ctx.config.QUEUE_PREFIX}:due-job-lock:${dueJobId}`;

/** Takes the locks it can (one round trip) and returns the ids it got, with a release function. */
export async function lockDueJobs(ctx: Ctx, dueJobIds: string[]): Promise<{ locked: string[]; release: () => Promise<void> }> {
  if (!dueJobIds.length) return { locked: [], release: async () => undefined };
  const token = randomUUID();
  const pipeline = ctx.redis.pipeline();
  for (const id of dueJobIds) pipeline.set(lockKey(ctx, id), token, 'PX', lockTtlMs, 'NX');
  const results = (await pipeline.exec()) ?? [];
  const locked = dueJobIds.filter((_, i) => results[i]?.[1] === 'OK');
  const release = async () => {
    if (!locked.length) return;
    const p = ctx.redis.pipeline();
    for (const id of locked) p.eval(releaseScript, 1, lockKey(ctx, id), token);
    await p.exec();
  };
  return { locked, release };
}
