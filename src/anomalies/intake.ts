/**
 * Anomalies reported by other services: each becomes a trigger of source api_trigger (type = the
 * anomaly's type, target = its target, window = occurredAt's 30-minute bucket), which the workflow
 * turns straight into one notification, without a preview.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import type { TriggerDoc } from '../db/trigger';
import { createTrigger } from '../triggers/create';
import type { AnomalyBody, AnomalyView } from './schemas';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config'>;

export async function reportAnomaly(ctx: Ctx, body: AnomalyBody): Promise<{ trigger: TriggerDoc; created: boolean }> {
  const occurredAt = new Date(body.occurredAt);
  return createTrigger(ctx, {
    userId: body.userId,
    type: body.type,
    source: 'api_trigger',
    target: { type: body.targetType, id: body.targetId },
    at: occurredAt,
    idempotencyKey: body.idempotencyKey,
    // Keys are the reporting services', across users; the whole body must match on a repeat.
    idempotency: { scope: 'anomalies', body },
    anomaly: { severity: body.severity, title: body.title, detail: body.detail, occurredAt, actionUrl: body.actionUrl },
  });
}

/** The anomaly (a trigger carrying `anomaly`) with its notification record; null when there is none. */
export async function loadAnomaly(ctx: Pick<AppContext, 'models'>, id: string): Promise<AnomalyView | null> {
  const t = await ctx.models.triggers.findOne({ _id: id, anomaly: { $exists: true } }).lean<TriggerDoc>();
  if (!t?.anomaly) return null;
  const projection = { history: 0, providerRequest: 0, providerResponse: 0 };
  const record = t.notificationId
    ? await ctx.models.notificationRecords.findById(t.notificationId, projection).lean<NotificationRecord>()
    : // The workflow requested it but died before noting its id on the trigger.
      await ctx.models.notificationRecords.findOne({ triggerId: String(t._id) }, projection).lean<NotificationRecord>();
  const digest = record?.digestId ? await ctx.models.notificationRecords.findById(record.digestId, { status: 1, sentAt: 1 }).lean<NotificationRecord>() : null;
  const a = t.anomaly;
  return {
    id: String(t._id),
    status: record?.status ?? t.status,
    trigger: {
      id: String(t._id),
      userId: t.userId,
      type: t.type,
      source: t.source,
      target: { type: t.target.type, id: t.target.id },
      status: t.status,
      reason: t.reason ?? null,
      createdAt: (t.createdAt ?? new Date(0)).toISOString(),
      updatedAt: (t.updatedAt ?? new Date(0)).toISOString(),
    },
    anomaly: { severity: a.severity, title: a.title, detail: a.detail, occurredAt: a.occurredAt.toISOString(), actionUrl: a.actionUrl ?? null },
    notification: record
      ? {
          id: String(record._id),
          status: record.status,
          attemptCount: record.attemptCount,
          sentAt: record.sentAt?.toISOString() ?? null,
          deferredUntil: record.deferredUntil?.toISOString() ?? null,
          urgent: record.urgent ?? false,
          digest: digest ? { id: String(digest._id), status: digest.status, sentAt: digest.sentAt?.toISOString() ?? null } : null,
        }
      : null,
  };
}
