/**
 * The pure parts of the app channel, without services: how a card is drawn in each state (and
 * kept under Feishu's 30 KB), which channel a message goes to, who may press, when an anomaly
 * escalates.
 */
import { actionsFor, MAX_CARD_BYTES, renderCard, stateLine, type CardView } from '../src/cards/render';
import { cardStateOf } from '../src/cards/load';
import { chooseChannelKind } from '../src/channels/store';
import { isRecipient } from '../src/cards/actions';
import { dueEscalationStep } from '../src/anomalies/escalation';
import { messageUuid } from '../src/providers/feishuApp';

const view = (over: Partial<CardView> = {}): CardView => ({
  recordId: '0123456789abcdef01234567',
  language: 'en',
  timeZone: 'Asia/Shanghai',
  message: { title: 'Write the plan', summary: 'Due at 18:00.', actionUrl: 'https://dueflow.example/app/previews/x' },
  state: { kind: 'preview', status: 'ready' },
  ...over,
});
const buttons = (card: any) =>
  JSON.stringify(card)
    .match(/"action":"(\w+)"/g)
    ?.map((m) => m.slice(10, -1)) ?? [];

describe('cards', () => {
  test('a suggestion waiting: Confirm and Reject carrying only the action and the record, and the link; JSON 2.0 with update_multi', () => {
    const card: any = renderCard(view());
    expect(card.schema).toBe('2.0');
    expect(card.config.update_multi).toBe(true);
    expect(buttons(card)).toEqual(['confirm', 'reject']);
    const values = JSON.stringify(card).match(/"value":\{[^}]*\}/g);
    expect(values).toEqual([
      '"value":{"action":"confirm","record":"0123456789abcdef01234567"}',
      '"value":{"action":"reject","record":"0123456789abcdef01234567"}',
    ]);
    expect(JSON.stringify(card)).toContain('"default_url":"https://dueflow.example/app/previews/x"');
  });

  test('each answered state is drawn without buttons, with its line in the user language and clock', () => {
    const at = new Date('2026-12-03T10:05:00Z'); // 18:05 in Shanghai
    const cases: Array<[CardView['state'], string, string]> = [
      [
        { kind: 'preview', status: 'confirmed', slot: { start: at, end: new Date(at.getTime() + 3600_000) } },
        'Added to your schedule: Thu 18:05–19:05',
        '已加入日程：周四 18:05–19:05',
      ],
      [{ kind: 'preview', status: 'rejected' }, 'Rejected', '已拒绝'],
      [{ kind: 'preview', status: 'expired' }, 'This suggestion expired', '该建议已过期'],
      [{ kind: 'reminder', status: 'snoozed', until: at }, 'Snoozed until 18:05', '已推迟到 18:05'],
      [{ kind: 'reminder', status: 'done', at }, 'Done at 18:05', '已完成（18:05）'],
      [{ kind: 'anomaly', status: 'acknowledged', at }, 'Acknowledged by you at 18:05', '你已于 18:05 确认收到'],
    ];
    for (const [state, en, zh] of cases) {
      expect(stateLine(view({ state }))).toBe(en);
      expect(stateLine(view({ state, language: 'zh-CN' }))).toBe(zh);
      expect(buttons(renderCard(view({ state })))).toEqual([]);
      expect(JSON.stringify(renderCard(view({ state })))).toContain(en);
    }
  });

  test('reminders and anomalies offer their own buttons; a critical anomaly is red', () => {
    expect(actionsFor({ kind: 'reminder', status: 'open' })).toEqual(['done', 'snooze_10m', 'snooze_1h']);
    expect(actionsFor({ kind: 'anomaly', status: 'open' })).toEqual(['acknowledge']);
    expect(actionsFor({ kind: 'message' })).toEqual([]);
    expect((renderCard(view({ state: { kind: 'anomaly', status: 'open', severity: 'critical' } })) as any).header.template).toBe('red');
  });

  test('a summary far over 30 KB is trimmed to fit, never refused; the title and buttons stay', () => {
    const card = renderCard(view({ message: { title: '写计划', summary: '很长的说明'.repeat(20_000) } }));
    const bytes = Buffer.byteLength(JSON.stringify(card));
    expect(bytes).toBeLessThanOrEqual(MAX_CARD_BYTES);
    expect(bytes).toBeGreaterThan(MAX_CARD_BYTES - 200);
    expect((card as any).header.title.content).toBe('写计划');
    expect(JSON.stringify(card)).toContain('…');
    expect(buttons(card)).toEqual(['confirm', 'reject']);
  });

  test('the state follows the subject: a preview answered or expired, a reminder answered, an anomaly acknowledged or buzzed', () => {
    const now = new Date('2026-12-03T10:00:00Z');
    const start = new Date('2026-12-03T11:00:00Z');
    const end = new Date('2026-12-03T12:00:00Z');
    const preview = (status: string, expiresAt = new Date(now.getTime() + 60_000)) => ({
      preview: { status, expiresAt, candidate: { kind: 'add_task_to_schedule', start, end } } as any,
    });
    expect(cardStateOf({ replyKind: 'preview' }, preview('ready'), now)).toEqual({ kind: 'preview', status: 'ready' });
    expect(cardStateOf({ replyKind: 'preview' }, preview('confirming'), now)).toEqual({ kind: 'preview', status: 'ready' });
    expect(cardStateOf({ replyKind: 'preview' }, preview('confirmed'), now)).toEqual({ kind: 'preview', status: 'confirmed', slot: { start, end } });
    expect(cardStateOf({ replyKind: 'preview' }, preview('ready', new Date(now.getTime() - 1)), now)).toEqual({ kind: 'preview', status: 'expired' });
    expect(cardStateOf({ replyKind: 'reminder', reply: { kind: 'snoozed', at: now, until: end } as any }, {}, now)).toEqual({
      kind: 'reminder',
      status: 'snoozed',
      until: end,
    });
    const anomaly = (extra: object) => ({
      trigger: { anomaly: { severity: 'critical', ...extra }, escalation: { step: 1, buzz: { at: start, outcome: 'done' } } } as any,
    });
    expect(cardStateOf({ replyKind: 'anomaly' }, anomaly({}), now)).toEqual({ kind: 'anomaly', status: 'open', severity: 'critical', buzzedAt: start });
    expect(cardStateOf({ replyKind: 'anomaly' }, anomaly({ acknowledgedAt: end }), now)).toEqual({
      kind: 'anomaly',
      status: 'acknowledged',
      at: end,
      severity: 'critical',
    });
    expect(cardStateOf({}, {}, now)).toEqual({ kind: 'message' });
  });

  test("the uuid is the same for every attempt of one record, different across records, and fits Feishu's 50 characters", () => {
    expect(messageUuid('0123456789abcdef01234567')).toBe(messageUuid('0123456789abcdef01234567'));
    expect(messageUuid('0123456789abcdef01234567')).not.toBe(messageUuid('0123456789abcdef01234568'));
    expect(messageUuid(`channel-test-${'x'.repeat(36)}`).length).toBeLessThanOrEqual(50);
  });
});

describe('where a message goes', () => {
  const on = (channel: any, enabled = true) => ({ channel, enabled });
  test('the primary while it is enabled; else the enabled one, the app first; else the primary or feishu_bot', () => {
    expect(chooseChannelKind([on('feishu_bot'), on('feishu_app')], 'feishu_bot')).toBe('feishu_bot');
    expect(chooseChannelKind([on('feishu_bot'), on('feishu_app')], null)).toBe('feishu_app');
    expect(chooseChannelKind([on('feishu_bot'), on('feishu_app', false)], 'feishu_app')).toBe('feishu_bot');
    expect(chooseChannelKind([on('feishu'), on('feishu_bot', false)], null)).toBe('feishu');
    expect(chooseChannelKind([on('feishu_bot', false)], 'feishu_app')).toBe('feishu_app');
    expect(chooseChannelKind([], null)).toBe('feishu_bot');
  });
});

describe('who may press', () => {
  test("the recipient named by the channel's receive id; an email recipient by the message alone", () => {
    const op = { openId: 'ou_a', unionId: 'on_a', userId: 'u_a' };
    expect(isRecipient(op, { receiveIdType: 'open_id', receiveId: 'ou_a' })).toBe(true);
    expect(isRecipient(op, { receiveIdType: 'open_id', receiveId: 'ou_b' })).toBe(false);
    expect(isRecipient({ openId: 'ou_a' }, { receiveIdType: 'union_id', receiveId: 'on_a' })).toBe(false);
    expect(isRecipient(op, { receiveIdType: 'union_id', receiveId: 'on_a' })).toBe(true);
    expect(isRecipient(op, { receiveIdType: 'user_id', receiveId: 'u_b' })).toBe(false);
    expect(isRecipient(op, { receiveIdType: 'email', receiveId: 'a@example.com' })).toBe(true);
  });
});

describe('escalation', () => {
  const sentAt = new Date('2026-12-03T10:00:00Z');
  const at = (min: number) => new Date(sentAt.getTime() + min * 60_000);
  test('step 1 after afterMinutes, step 2 after twice that, nothing once acknowledged, unsent or done', () => {
    const base = { sentAt, afterMinutes: 15, acknowledged: false };
    expect(dueEscalationStep({ ...base, step: 0, now: at(14.9) })).toBeNull();
    expect(dueEscalationStep({ ...base, step: 0, now: at(15) })).toBe(1);
    expect(dueEscalationStep({ ...base, step: 0, now: at(40) })).toBe(1);
    expect(dueEscalationStep({ ...base, step: 1, now: at(29) })).toBeNull();
    expect(dueEscalationStep({ ...base, step: 1, now: at(30) })).toBe(2);
    expect(dueEscalationStep({ ...base, step: 2, now: at(90) })).toBeNull();
    expect(dueEscalationStep({ ...base, step: 0, acknowledged: true, now: at(90) })).toBeNull();
    expect(dueEscalationStep({ ...base, step: 0, sentAt: null, now: at(90) })).toBeNull();
  });
});
