/** MongoDB's duplicate-key error (E11000): a unique index decided a race. */
export const isDuplicateKey = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 11000;
