/** Records in a given state, written through the real transitions, for tests of what follows a record's end. */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../src/context';
import { markSent } from '../../src/notifications/transitions';

/** A reminder's bot record taken `sending` and ended `sent`: its notification.sent waits in its outbox. Answers its id. */
export async function sentRecord(models: AppContext['models'], targetId: string): Promise<string> {
  const record = await models.notificationRecords.create({
    userId: `u-${randomUUID()}`,
    channel: 'feishu_bot',
    dedupeKey: randomUUID(),
    triggerType: 'reminder',
    target: { type: 'reminder', id: targetId },
    message: { title: 't', summary: 's' },
    status: 'sending',
    sendingSince: new Date(),
    attemptCount: 1,
    maxAttempts: 5,
  });
  await markSent(models.notificationRecords, record._id, new Date(), 1, {
    kind: 'sent',
    code: 'ok',
    rateLimited: false,
    durationMs: 5,
    request: { url: 'u', body: {} },
  });
  return String(record._id);
}
