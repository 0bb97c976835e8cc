/** Names of dueflow's queues. BullMQ keys are `${QUEUE_PREFIX}:${name}:...`. */
export const queueNames = {
  notifications: 'notifications',
  activeScheduleTriggered: 'active-schedule-triggered',
  scanner: 'scanner',
  maintenance: 'maintenance',
  /** Redraws of sent app cards (cards/updates.ts). */
  cardUpdates: 'card-updates',
  /** Webhook events to the host product's endpoints (events/deliver.ts); apart from notifications, so neither slows the other. */
  events: 'events',
} as const;

export type QueueName = (typeof queueNames)[keyof typeof queueNames];
export const allQueueNames: QueueName[] = Object.values(queueNames);
