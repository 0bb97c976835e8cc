/**
 * A document id as dueflow stores and hands it out: 24 lowercase hex digits. mongoose also takes
 * upper case (and any 12 characters) for the same document, but a lock name is built from the
 * string: an id from outside that is not in this one spelling is no document of ours.
 */
export const isStoredId = (id: unknown): id is string => typeof id === 'string' && /^[0-9a-f]{24}$/.test(id);
