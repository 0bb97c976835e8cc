/**
 * idempotency_keys: an Idempotency-Key seen on a service request, with what it answered.
 * The key is the _id, so two racing requests with one key cannot both win.
 * FerretDB has no TTL indexes: old keys are purged by the worker, not by MongoDB.
 */
import { Connection, Schema } from 'mongoose';

const idempotencySchema = new Schema(
  {
    _id: { type: String, required: true },
    /** sha256 of the request body: the same key with another body is refused. */
    requestHash: { type: String, required: true },
    resourceId: { type: String, required: true },
  },
  { collection: 'idempotency_keys', timestamps: true },
);
idempotencySchema.index({ createdAt: 1 });

export function idempotencyKeyModel(conn: Connection) {
  return conn.model('IdempotencyKey', idempotencySchema);
}
