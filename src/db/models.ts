/** Every MongoDB model, registered on one connection (tests build their own). */
import type { Connection } from 'mongoose';

export type Models = ReturnType<typeof createModels>;

export function createModels(_conn: Connection) {
  return {};
}

/** Builds indexes (unique ones are what dedupes) before anything writes. */
export async function initModels(models: Models): Promise<void> {
  await Promise.all(Object.values(models).map((m: any) => m.init()));
}
