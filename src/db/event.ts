/**
 * events: what dueflow tells the host product, one document per event, kept EVENT_RETENTION_DAYS.
 * `_id` is derived from the event's type and key (events/ids.ts), so emitting it twice inserts
 * once; `seq` (an ObjectId taken at insert) orders GET /api/v1/events. `data` is stored as JSON
 * text: FerretDB v1 cannot store every shape of nested arrays as a document.
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';
import { webhookEndpointModel } from './webhookEndpoint';
import { eventDeliveryModel } from './eventDelivery';

const eventSchema = new Schema(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    /** What made it this event (a preview id, a record id…): the input of its id. */
    key: { type: String, required: true },
    userId: String,
    dataJson: { type: String, required: true },
    /** When it happened (the body's `timestamp`). */
    at: { type: Date, required: true },
    seq: { type: Schema.Types.ObjectId, required: true },
    /** Set once a delivery exists for every endpoint it goes to; the reconciler fans out events without it. */
    fannedOutAt: Date,
  },
  { collection: 'events', timestamps: { createdAt: true, updatedAt: false }, minimize: false },
);

eventSchema.index({ seq: 1 }, { unique: true });
eventSchema.index({ createdAt: 1 });

export type EventDoc = InferSchemaType<typeof eventSchema> & { _id: string; seq: Types.ObjectId; createdAt: Date };

export function eventModel(conn: Connection) {
  return conn.model('Event', eventSchema);
}

/** The three collections of the events feature, registered together by db/models.ts. */
export function eventModels(conn: Connection) {
  return { webhookEndpoints: webhookEndpointModel(conn), events: eventModel(conn), eventDeliveries: eventDeliveryModel(conn) };
}
