/**
 * event_deliveries: the ledger, one document per (endpoint, event), `_id` = `<endpointId>|<eventId>`
 * (unique, and the one kind of lookup FerretDB v1 serves from its index). Every attempt is
 * appended to `history` with its status, duration and the first 1 KB of the answer.
 */
import type { Connection, InferSchemaType } from 'mongoose';
import { Schema } from 'mongoose';

export const deliveryStatuses = ['pending', 'sending', 'delivered', 'failed', 'dead'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** Why a delivery is dead (or was repaired). */
export const deliveryReasons = [
  'attempts_exhausted',
  'address_refused',
  'url_refused',
  'endpoint_missing',
  'endpoint_disabled',
  'event_missing',
  'payload_invalid',
  'sender_lost',
] as const;
export type DeliveryReason = (typeof deliveryReasons)[number];

/** What one attempt got: a 2xx (ok), another answer (non_2xx, redirect: never followed), or no answer. */
export const attemptCodes = ['ok', 'non_2xx', 'redirect', 'timeout', 'network_error', 'address_refused'] as const;
export type AttemptCode = (typeof attemptCodes)[number];

/** attempt | replay | dead | repaired */
export const historyEvents = ['attempt', 'replay', 'dead', 'repaired'] as const;

const historyEntry = new Schema(
  {
    at: { type: Date, required: true },
    event: { type: String, enum: historyEvents, required: true },
    attempt: Number,
    outcome: { type: String, enum: ['delivered', 'failed'] },
    code: String,
    httpStatus: Number,
    durationMs: Number,
    /** The first 1 KB of the answer's body. */
    response: String,
    detail: String,
  },
  { _id: false },
);

const deliverySchema = new Schema(
  {
    _id: { type: String, required: true },
    endpointId: { type: String, required: true },
    eventId: { type: String, required: true },
    eventType: { type: String, required: true },
    status: { type: String, enum: deliveryStatuses, required: true, default: 'pending' },
    statusReason: String,
    /** Every attempt ever made, replays included. */
    attemptCount: { type: Number, required: true, default: 0 },
    /** attemptCount when it was last replayed: attempts of the current round = attemptCount - replayBase. */
    replayBase: { type: Number, required: true, default: 0 },
    maxAttempts: { type: Number, required: true },
    nextRetryAt: Date,
    /** When the current `sending` began: a lease, so a dead sender's delivery can be taken over. */
    sendingSince: Date,
    deliveredAt: Date,
    lastErrorCode: String,
    lastError: String,
    history: { type: [historyEntry], default: [] },
  },
  { collection: 'event_deliveries', timestamps: true, minimize: false },
);

deliverySchema.index({ endpointId: 1, createdAt: -1 });
deliverySchema.index({ status: 1, updatedAt: 1 });
deliverySchema.index({ createdAt: 1 });

export type EventDeliveryDoc = InferSchemaType<typeof deliverySchema> & { _id: string; createdAt: Date; updatedAt: Date };
export type DeliveryHistoryEntry = InferSchemaType<typeof historyEntry>;

export function eventDeliveryModel(conn: Connection) {
  return conn.model('EventDelivery', deliverySchema);
}
