/**
 * webhook_endpoints: where the host product wants dueflow's events, and the secret that signs
 * them (sealed with SECRETS_KEY; shown once, when created or rotated).
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

const endpointSchema = new Schema(
  {
    url: { type: String, required: true },
    /** `whsec_…`, sealed by secrets.ts: never stored or shown in clear. */
    secretSealed: { type: String, required: true },
    /** Event types it receives; ['*'] for all (webhook.test goes only to the endpoint tested). */
    events: { type: [String], required: true },
    description: String,
    enabled: { type: Boolean, required: true, default: true },
    secretRotatedAt: Date,
  },
  { collection: 'webhook_endpoints', timestamps: true, minimize: false },
);

export type WebhookEndpointDoc = InferSchemaType<typeof endpointSchema> & { _id: Types.ObjectId; createdAt: Date; updatedAt: Date };

export function webhookEndpointModel(conn: Connection) {
  return conn.model('WebhookEndpoint', endpointSchema);
}
