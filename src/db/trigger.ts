/**
 * active_schedule_triggers: one detected anomaly. Deduplicated by an idempotency key and by a
 * dedupe key of user, type, target and window (both unique), so two different tasks in one window
 * are two triggers.
 */
import type { Connection, InferSchemaType, Types } from 'mongoose';
import { Schema } from 'mongoose';

/** The workflow's own types (planned into a preview); an anomaly from another service may carry any type matching triggerTypePattern. */
export const triggerTypes = ['important_urgent_task', 'unfinished_feedback', 'missed_block'] as const;
export const triggerTypePattern = /^[a-z][a-z0-9_]{0,63}$/;
export const anomalySeverities = ['info', 'warning', 'critical'] as const;
export type AnomalySeverity = (typeof anomalySeverities)[number];
export const triggerSources = ['worker_due_job', 'api_trigger', 'user_feedback'] as const;
/** Where a user answered: the dueflow page, a Feishu card, the API. */
export const answerPlaces = ['app', 'feishu', 'api'] as const;
export type AnswerPlace = (typeof answerPlaces)[number];
/** A critical anomaly nobody acknowledged: step 1 buzzes its message, step 2 sends it to the fallback channel. */
export const escalationActions = ['buzz', 'fallback'] as const;
export type EscalationAction = (typeof escalationActions)[number];

const escalationStep = new Schema(
  {
    at: { type: Date, required: true },
    /** done | skipped (nothing to do: not an app message, no fallback channel) | failed */
    outcome: { type: String, enum: ['done', 'skipped', 'failed'] },
    detail: String,
    /** The fallback's notification record. */
    recordId: String,
  },
  { _id: false },
);
export const triggerStatuses = ['pending', 'processing', 'preview_generated', 'closed', 'skipped', 'rejected', 'failed'] as const;

const triggerSchema = new Schema(
  {
    userId: { type: String, required: true },
    type: { type: String, match: triggerTypePattern, required: true },
    source: { type: String, enum: triggerSources, required: true },
    target: { type: new Schema({ type: { type: String, required: true }, id: { type: String, required: true } }, { _id: false }), required: true },
    /** user|type|targetType:targetId|windowStart (ISO) */
    dedupeKey: { type: String, required: true },
    /** Dedupe by idempotency key goes through idempotency_keys (FerretDB v1 has no partial unique indexes). */
    idempotencyKey: String,
    status: { type: String, enum: triggerStatuses, required: true, default: 'pending' },
    reason: String,
    /** Lease of `processing`: a trigger stuck there past it is retried. */
    processingSince: Date,
    attempts: { type: Number, required: true, default: 0 },
    lastError: String,
    dueJobId: String,
    previewId: String,
    notificationId: String,
    /** Free-form details of the anomaly (JSON text: FerretDB stores no nested arrays). */
    detail: String,
    /** Set on anomalies reported by other services (POST /api/v1/anomalies): no preview, a message built from these. */
    anomaly: {
      type: new Schema(
        {
          severity: { type: String, enum: anomalySeverities, required: true },
          title: { type: String, required: true },
          detail: { type: String, required: true },
          occurredAt: { type: Date, required: true },
          actionUrl: String,
          /** Acknowledged by the user (on the card or on /app): its escalation stops. */
          acknowledgedAt: Date,
          acknowledgedVia: { type: String, enum: answerPlaces },
        },
        { _id: false },
      ),
      required: false,
    },
    /** A critical anomaly's escalation: the last step taken, each step's outcome. */
    escalation: {
      type: new Schema({ step: { type: Number, required: true }, buzz: escalationStep, fallback: escalationStep }, { _id: false }),
      default: undefined,
    },
  },
  { collection: 'active_schedule_triggers', timestamps: true },
);
triggerSchema.index({ dedupeKey: 1 }, { unique: true });
triggerSchema.index({ status: 1, updatedAt: 1 });
/** Escalation looks for critical anomalies not yet acknowledged. */
triggerSchema.index({ 'anomaly.severity': 1, createdAt: 1 });

export type TriggerDoc = InferSchemaType<typeof triggerSchema> & { _id: Types.ObjectId };
export const triggerModel = (conn: Connection) => conn.model('Trigger', triggerSchema);
