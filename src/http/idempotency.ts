/**
 * Idempotency-Key for service routes: the first request with a key does the work and stores the
 * id it produced; a repeat with the same body gets that id back; the same key with another body
 * is refused (422), as it is almost certainly a client bug.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppContext } from '../context';
import { HttpError } from './errors';
import { isDuplicateKey } from '../db/errors';

export const idempotencyHeaders = z.object({
  'idempotency-key': z.string().min(1).max(200).optional(),
});

export async function withIdempotencyKey<T>(
  ctx: Pick<AppContext, 'models'>,
  scope: string,
  key: string | undefined,
  body: unknown,
  run: () => Promise<T & { id: string }>,
  replay: (id: string) => Promise<T & { id: string }>,
): Promise<{ result: T & { id: string }; replayed: boolean }> {
  if (!key) return { result: await run(), replayed: false };
  const Keys = ctx.models.idempotencyKeys;
  const _id = `${scope}|${key}`;
  const requestHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');

  const seen = await Keys.findById(_id);
  if (seen) {
    if (seen.requestHash !== requestHash) throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request body');
    return { result: await replay(seen.resourceId), replayed: true };
  }
  const result = await run();
  try {
    await Keys.create({ _id, requestHash, resourceId: result.id });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    // A concurrent request stored the key first; its answer is the one to keep.
  }
  return { result, replayed: false };
}
