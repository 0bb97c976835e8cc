/**
 * POST /api/v1/webhook-endpoints/:id/test: a webhook.test event to this endpoint only, attempted
 * at once (not through the queue) so the answer can say what the endpoint replied. It is a real
 * event with a real delivery: when the attempt fails, or the endpoint's slots are full, its job
 * is enqueued and it is retried like any other.
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context';
import { deliverEvent, type EventDeliveryDeps } from './deliver';
import { writeEvent } from './emit';
import { enqueueEventDeliveries } from './enqueue';
import type { TestResultView } from './schemas';

type Ctx = Pick<AppContext, 'models' | 'secrets' | 'config' | 'logger' | 'redis' | 'store' | 'queues'>;

export async function sendTestEvent(ctx: Ctx, endpointId: string, deps: EventDeliveryDeps): Promise<TestResultView> {
  const { eventId, deliveryIds } = await writeEvent(
    ctx,
    {
      type: 'webhook.test',
      key: `${endpointId}|${randomUUID()}`,
      data: { endpointId, message: 'A test event from dueflow: if its signature verifies, the endpoint is set up.' },
    },
    { enqueue: false },
  );
  const deliveryId = deliveryIds[0];
  if (!deliveryId) throw new Error(`webhook endpoint ${endpointId} vanished while testing it`);
  const { step, attempt } = await deliverEvent(ctx, deliveryId, undefined, deps);
  if (step.kind === 'retry' || step.kind === 'delay') {
    await enqueueEventDeliveries(ctx, [{ id: deliveryId, delayMs: Math.max(0, step.kind === 'delay' ? step.until.getTime() - Date.now() : step.delayMs) }]);
  }
  if (!attempt) {
    const code = step.kind === 'delay' ? 'endpoint_busy' : step.kind === 'dead' ? step.code : 'not_sent';
    const detail =
      step.kind === 'delay'
        ? `the endpoint has ${ctx.config.EVENT_ENDPOINT_CONCURRENCY} requests in flight; the test event is queued`
        : step.kind === 'dead'
          ? step.detail
          : null;
    return { eventId, deliveryId, ok: false, code, httpStatus: null, durationMs: null, body: null, detail };
  }
  return {
    eventId,
    deliveryId,
    ok: attempt.outcome === 'delivered',
    code: attempt.code,
    httpStatus: attempt.httpStatus ?? null,
    durationMs: attempt.durationMs,
    body: attempt.response ?? null,
    detail: attempt.detail ?? null,
  };
}
