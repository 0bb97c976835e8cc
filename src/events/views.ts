/** What the API shows of endpoints, deliveries and events: never a secret. */
import type { EventDeliveryDoc } from '../db/eventDelivery';
import type { WebhookEndpointDoc } from '../db/webhookEndpoint';
import { isoOrNull } from '../time/iso';
import type { DeliveryView, EndpointView, EventView } from './schemas';
import type { EventType } from './types';

const iso = (d: Date | string) => new Date(d).toISOString();

export function toEndpointView(e: Pick<WebhookEndpointDoc, '_id' | 'url' | 'events' | 'description' | 'enabled' | 'createdAt' | 'updatedAt'>): EndpointView {
  return {
    id: String(e._id),
    url: e.url,
    events: [...e.events],
    description: e.description ?? null,
    enabled: e.enabled,
    createdAt: iso(e.createdAt),
    updatedAt: iso(e.updatedAt),
  };
}

export function toDeliveryView(d: EventDeliveryDoc): DeliveryView {
  const history = d.history ?? [];
  return {
    id: d._id,
    endpointId: d.endpointId,
    eventId: d.eventId,
    eventType: d.eventType,
    status: d.status,
    statusReason: d.statusReason ?? null,
    attemptCount: d.attemptCount,
    maxAttempts: d.maxAttempts,
    nextRetryAt: isoOrNull(d.nextRetryAt),
    deliveredAt: isoOrNull(d.deliveredAt),
    lastErrorCode: d.lastErrorCode ?? null,
    lastError: d.lastError ?? null,
    attempts: history
      .filter((h) => h.event === 'attempt')
      .map((h) => ({
        at: iso(h.at),
        attempt: h.attempt ?? 0,
        outcome: h.outcome === 'delivered' ? 'delivered' : 'failed',
        code: h.code ?? 'non_2xx',
        httpStatus: h.httpStatus ?? null,
        durationMs: h.durationMs ?? 0,
        response: h.response ?? null,
        detail: h.detail ?? null,
      })),
    history: history.filter((h) => h.event !== 'attempt').map((h) => ({ at: iso(h.at), event: h.event, code: h.code ?? null, detail: h.detail ?? null })),
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

export function toEventView(e: { _id: string; type: string; at: Date; userId?: string | null; dataJson: string; seq: unknown }): EventView {
  return {
    id: e._id,
    type: e.type as EventType,
    timestamp: iso(e.at),
    userId: e.userId ?? null,
    cursor: String(e.seq),
    data: JSON.parse(e.dataJson) as Record<string, unknown>,
  };
}
