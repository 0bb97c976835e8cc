/** The delivery decision, pure: no Redis, no database. */
import { decideDelivery } from '../src/notifications/deliver';
import { defaultUserSettings } from '../src/settings/store';

const channel = (over: Record<string, unknown> = {}) => ({
  enabled: true,
  config: { kind: 'feishu_app' as const, receiveIdType: 'open_id' as const, receiveId: 'ou_a' },
  ...over,
});
const settings = (over: Record<string, unknown> = {}) => ({ ...defaultUserSettings(), timeZone: 'UTC', ...over });
// 23:30 UTC: inside quiet hours 22:00–07:00.
const night = new Date('2026-12-03T23:30:00Z');
const quiet = { quietHours: { start: '22:00', end: '07:00' } };
const record = (over: Record<string, unknown> = {}) => ({ triggerType: 'reminder', urgent: false, ...over });

test('opt-out first, then a recipient, then quiet hours (not for urgent ones), then a digest hold, else send', () => {
  expect(decideDelivery({ record: record(), settings: settings({ optOutTriggerTypes: ['reminder'] }), channel: null, now: night })).toEqual({
    kind: 'skip',
    reason: 'user_opted_out',
  });
  expect(decideDelivery({ record: record(), settings: settings(), channel: null, now: night })).toEqual({ kind: 'skip', reason: 'recipient_missing' });
  expect(decideDelivery({ record: record(), settings: settings(), channel: channel({ enabled: false }), now: night })).toEqual({
    kind: 'skip',
    reason: 'recipient_missing',
  });
  expect(
    decideDelivery({
      record: record(),
      settings: settings(),
      channel: channel({ config: { kind: 'feishu_bot', webhookUrl: '', format: 'card' } }),
      now: night,
    }),
  ).toEqual({ kind: 'skip', reason: 'recipient_missing' });
  expect(decideDelivery({ record: record(), settings: settings(quiet), channel: channel(), now: night })).toEqual({
    kind: 'defer',
    until: new Date('2026-12-04T07:00:00Z'),
  });
  expect(decideDelivery({ record: record({ urgent: true }), settings: settings(quiet), channel: channel(), now: night })).toEqual({ kind: 'send' });
  expect(decideDelivery({ record: record({ digestState: 'held' }), settings: settings(), channel: channel(), now: night })).toEqual({ kind: 'digest' });
  expect(decideDelivery({ record: record(), settings: settings(), channel: channel(), now: night })).toEqual({ kind: 'send' });
});

test('a replay is sent now: through quiet hours and holds, but never to nobody nor against an opt-out', () => {
  expect(decideDelivery({ record: record({ digestState: 'held' }), settings: settings(quiet), channel: channel(), now: night, replay: true })).toEqual({
    kind: 'send',
  });
  expect(decideDelivery({ record: record(), settings: settings(), channel: null, now: night, replay: true })).toEqual({
    kind: 'skip',
    reason: 'recipient_missing',
  });
  expect(decideDelivery({ record: record(), settings: settings({ optOutTriggerTypes: ['reminder'] }), channel: channel(), now: night, replay: true })).toEqual({
    kind: 'skip',
    reason: 'user_opted_out',
  });
});
