/** Prometheus metrics (prom-client), one registry per process context so tests can build several. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queues } from '../queues';

const jobStates = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const;

export interface Metrics {
  registry: Registry;
  notificationsFinal: Counter<'status' | 'channel'>;
  deliveryLatency: Histogram<'channel'>;
  providerErrors: Counter<'channel' | 'code'>;
  repairs: Counter<'kind'>;
}

export function createMetrics(queues: Queues): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'dueflow_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of Object.values(queues)) {
        const counts = await queue.getJobCounts(...jobStates);
        for (const state of jobStates) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });

  return {
    registry,
    notificationsFinal: new Counter({
      name: 'dueflow_notifications_total',
      help: 'Notifications by final status and channel',
      labelNames: ['status', 'channel'],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'dueflow_notification_delivery_seconds',
      help: 'Time from a notification being requested to it being sent',
      labelNames: ['channel'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    providerErrors: new Counter({
      name: 'dueflow_provider_errors_total',
      help: 'Provider error codes',
      labelNames: ['channel', 'code'],
      registers: [registry],
    }),
    repairs: new Counter({ name: 'dueflow_repairs_total', help: 'Repairs made by the reconciler', labelNames: ['kind'], registers: [registry] }),
  };
}
