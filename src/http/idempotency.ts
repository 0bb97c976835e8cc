/**
 * Idempotency-Key for service routes: the first request with a key does the work and stores the
 * id it produced (withIdempotencyKey) or its whole answer (withStoredAnswer); a repeat with the
 * same body gets that back; the same key with another body is refused (422), as it is almost
 * certainly a client bug.
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
  const { _id, requestHash } = keyOf(scope, key, body);

  const seen = await Keys.findById(_id);
  if (seen) {
    refuseOtherBody(seen, requestHash);
    return { result: await replay(seen.resourceId!), replayed: true };
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

const keyOf = (scope: string, key: string, body: unknown) => ({
  _id: `${scope}|${key}`,
  requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
});

function refuseOtherBody(seen: { requestHash: string }, requestHash: string): void {
  if (seen.requestHash !== requestHash) throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request body');
}

export interface StoredAnswer {
  status: number;
  body?: unknown;
}

/**
 * For answers that are not one resource (a batch): the first answer is stored whole and a repeat
 * with the same body gets exactly it. Two first requests at once both run (the work itself must be
 * idempotent); the one that stores second answers what the first stored, so both say the same.
 */
export async function withStoredAnswer(
  ctx: Pick<AppContext, 'models'>,
  scope: string,
  key: string | undefined,
  body: unknown,
  run: () => Promise<StoredAnswer>,
): Promise<{ answer: StoredAnswer; replayed: boolean }> {
  if (!key) return { answer: await run(), replayed: false };
  const Keys = ctx.models.idempotencyKeys;
  const { _id, requestHash } = keyOf(scope, key, body);
  const stored = async (): Promise<{ answer: StoredAnswer; replayed: boolean } | undefined> => {
    const seen = await Keys.findById(_id).lean();
    if (!seen) return undefined;
    refuseOtherBody(seen, requestHash);
    if (seen.answer == null) throw new Error(`idempotency key ${_id} has no stored answer`);
    return { answer: JSON.parse(seen.answer) as StoredAnswer, replayed: true };
  };

  const seen = await stored();
  if (seen) return seen;
  const answer = await run();
  try {
    await Keys.create({ _id, requestHash, answer: JSON.stringify(answer) });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const first = await stored();
    if (first) return first;
  }
  return { answer, replayed: false };
}
