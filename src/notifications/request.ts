/**
 * requestNotification: the one way into delivery, for dueflow's own workflows and for other
 * services (POST /api/v1/notifications). The record is created once per (channel, dedupeKey);
 * a repeated request returns it and sends nothing again.
 */
import type { AppContext } from '../context';
import { defaultChannelKind } from '../channels/store';
import { enqueueDelivery } from './enqueue';
import type { NotificationRequest, RequestResult } from './schemas';
import { isDuplicateKey } from '../db/errors';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config'>;

export async function requestNotification(ctx: Ctx, input: NotificationRequest): Promise<RequestResult> {
  const channel = input.channel ?? (await defaultChannelKind(ctx, input.userId));
  const Records = ctx.models.notificationRecords;
  const now = new Date();
  // Grouping off (threshold 0) or a critical alert: nothing to hold.
  const held = input.digestible === true && !input.urgent && ctx.config.DIGEST_THRESHOLD > 0;

  // Insert first: a new key (the usual case) costs one write, checked by the unique index, and no
  // lookup (on FerretDB a lookup by a secondary key reads the whole collection). A repeated key,
  // or another request racing this one, ends in a duplicate-key error: then the existing record wins.
  let created = false;
  let record;
  try {
    record = await Records.create({
      userId: input.userId,
      channel,
      dedupeKey: input.dedupeKey,
      triggerType: input.triggerType,
      target: input.target,
      triggerId: input.triggerId,
      previewId: input.previewId,
      message: input.message,
      traceId: input.traceId,
      urgent: input.urgent ?? false,
      status: 'pending',
      attemptCount: 0,
      maxAttempts: ctx.config.NOTIFY_ATTEMPTS,
      replyKind: input.replyKind,
      severity: input.severity,
      ...(held ? { digestState: 'held' } : {}),
      ...(input.notBefore ? { deferredUntil: input.notBefore } : {}),
      history: [{ at: now, event: 'requested' }, ...(input.notBefore ? [{ at: now, event: 'deferred', code: 'snoozed', until: input.notBefore }] : [])],
    });
    created = true;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    record = await Records.findOne({ channel, dedupeKey: input.dedupeKey });
    if (!record) throw err;
  }

  // A pending record always has a job; adding it again is a no-op thanks to the job id.
  // A held record waits DIGEST_HOLD_MS, so anomalies arriving together are sent as one digest.
  const holdMs = created && held ? ctx.config.DIGEST_HOLD_MS : 0;
  const delayMs = Math.max(holdMs, (record.deferredUntil?.getTime() ?? 0) - now.getTime());
  if (record.status === 'pending' || record.status === 'failed') await enqueueDelivery(ctx, String(record._id), { delayMs, urgent: record.urgent ?? false });
  return { id: String(record._id), status: record.status, reused: !created };
}
