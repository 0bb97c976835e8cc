/** MongoDB's duplicate-key error (E11000): a unique index decided a race. */
export const isDuplicateKey = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 11000;

/**
 * The store could not take the command now, and the same command later may well succeed: its
 * connection is gone or timed out, or FerretDB/SQLite refused a write on its busy lock (SQLITE_BUSY).
 */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.name === 'MongoNetworkError' || e.name === 'MongoNetworkTimeoutError' || e.name === 'MongoServerSelectionError' || e.name === 'MongoNotConnectedError')
    return true;
  return typeof e.message === 'string' && /SQLITE_BUSY|database is locked/.test(e.message);
}
