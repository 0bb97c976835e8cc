/**
 * idempotency_keys: an Idempotency-Key seen on a service request, with what it answered: the id it
 * produced (replayed by reading that resource again) or, for answers that are not one resource
 * (POST /api/v1/sync), the whole first answer.
 * The key is the _id, so two racing requests with one key cannot both win.
 * FerretDB has no TTL indexes: old keys are purged by the worker, not by MongoDB.
 */
import type { Connection } from 'mongoose';
import { Schema } from 'mongoose';

const idempotencySchema = new Schema(
  {
    _id: { type: String, required: true },
    /** sha256 of the request body: the same key with another body is refused. */
    requestHash: { type: String, required: true },
    /** Required unless the answer itself is stored. */
    resourceId: {
      type: String,
      required(this: { answer?: string }) {
        return this.answer == null;
      },
    },
    /** The first answer as JSON ({status, body}), returned as it was to a repeat. */
    answer: { type: String },
  },
  { collection: 'idempotency_keys', timestamps: true },
);
idempotencySchema.index({ createdAt: 1 });

export function idempotencyKeyModel(conn: Connection) {
  return conn.model('IdempotencyKey', idempotencySchema);
}
