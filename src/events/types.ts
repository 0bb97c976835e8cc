/** The events dueflow tells the host product about (Standard Webhooks, and GET /api/v1/events). */
export const eventTypes = [
  'preview.confirmed', 'preview.rejected', 'preview.expired',
  'notification.sent', 'notification.skipped', 'notification.dead',
  'anomaly.acknowledged', 'anomaly.escalated', 'reminder.snoozed', 'reminder.done',
  'webhook.test',
] as const;
export type EventType = (typeof eventTypes)[number];
