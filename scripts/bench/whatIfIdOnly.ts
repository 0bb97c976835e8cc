/**
 * A what-if, not a fix: preloaded into a bench worker (`--what-if`), it turns every guarded update
 * (findOneAndUpdate / updateOne whose filter names `_id` and a state) into a read by `_id`, the
 * state checked in the process (sift), and a write by `_id` alone — the only filter FerretDB
 * v1/SQLite answers from an index. It is not atomic: it measures what dueflow would gain if its
 * transitions, already serialized by the Redis guard locks, were written that way.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const mongoose = require('mongoose');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sift = require('sift').default as (q: object) => (doc: unknown) => boolean;

const hex24 = /^[0-9a-f]{24}$/;

mongoose.plugin((schema: any) => {
  schema.pre(['findOneAndUpdate', 'updateOne'], async function (this: any) {
    if (this.getOptions()?.upsert) return;
    const filter = this.getFilter() as Record<string, unknown>;
    if (!('_id' in filter) || Object.keys(filter).length === 1) return;
    const { _id: rawId, ...rest } = filter;
    if (rawId !== null && typeof rawId === 'object' && !(rawId instanceof mongoose.Types.ObjectId)) return; // an operator on _id
    const id = typeof rawId === 'string' && hex24.test(rawId) && schema.path('_id')?.instance === 'ObjectId' ? new mongoose.Types.ObjectId(rawId) : rawId;
    const doc = await this.model.collection.findOne({ _id: id });
    const matches = doc ? sift(rest)(doc) : false;
    // A filter by _id alone; a fresh id matches nothing (the transition lost, as the guarded update would).
    this.setQuery({ _id: matches ? doc._id : new mongoose.Types.ObjectId() });
  });
});
