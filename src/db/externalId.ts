/**
 * external_ids: the host product's own id of a task or block → dueflow's id of it. The _id is
 * `<kind>|<userId>|<externalId>`, so the unique index is _id itself: FerretDB v1 pushes only
 * `{_id}` filters down (fast), and a unique {userId, externalId} index on the resource would count
 * every resource without an externalId as one duplicate null (FerretDB v1 has no partial indexes).
 * An externalId never contains `|`, so the last `|` ends the userId: no two triples share an _id.
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

export const externalKinds = ['task', 'block'] as const;
export type ExternalKind = (typeof externalKinds)[number];

export interface ExternalRef {
  userId: string;
  externalId: string;
}

export const externalIdKey = (kind: ExternalKind, ref: ExternalRef) => `${kind}|${ref.userId}|${ref.externalId}`;

const externalIdSchema = new Schema(
  {
    _id: { type: String, required: true },
    kind: { type: String, enum: externalKinds, required: true },
    userId: { type: String, required: true },
    externalId: { type: String, required: true },
    /** The task's or block's _id. Written before the resource, so a crash leaves a mapping to nothing, never a resource nobody maps. */
    resourceId: { type: Schema.Types.ObjectId, required: true },
  },
  { collection: 'external_ids', timestamps: true },
);

export type ExternalIdDoc = InferSchemaType<typeof externalIdSchema> & { _id: string; resourceId: Types.ObjectId };
export const externalIdModel = (conn: Connection) => conn.model('ExternalId', externalIdSchema);
