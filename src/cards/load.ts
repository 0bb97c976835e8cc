/**
 * A sent card's view as it is now: the record's message, drawn in the state of what it asks
 * about (the preview, the reminder card's own answer, the anomaly), in the user's language and
 * time zone. `cardStateOf` is the pure part.
 */
import type { AppContext } from '../context';
import type { NotificationRecord } from '../db/notificationRecord';
import type { PreviewDoc } from '../db/preview';
import type { TriggerDoc } from '../db/trigger';
import { isExpired } from '../previews/views';
import { loadUserSettings } from '../settings/store';
import type { CardState, CardView } from './render';
import { firstCardState } from './state';

type Ctx = Pick<AppContext, 'models'>;
type RecordDoc = Pick<NotificationRecord, '_id' | 'userId' | 'message' | 'replyKind' | 'severity' | 'reply' | 'previewId' | 'triggerId'>;

export interface Subject {
  preview?: Pick<PreviewDoc, 'status' | 'expiresAt' | 'candidate'> | null;
  trigger?: Pick<TriggerDoc, 'anomaly' | 'escalation'> | null;
}

/** Pure: the state a card shows, from its record and what it asks about. */
export function cardStateOf(record: Pick<RecordDoc, 'replyKind' | 'severity' | 'reply'>, subject: Subject, now: Date): CardState {
  const first = firstCardState(record);
  if (first.kind === 'preview' && subject.preview) {
    const p = subject.preview;
    if (p.status === 'confirmed') {
      const { start, end } = p.candidate ?? {};
      return { kind: 'preview', status: 'confirmed', ...(start && end ? { slot: { start, end } } : {}) };
    }
    if (p.status === 'rejected') return { kind: 'preview', status: 'rejected' };
    if (isExpired(p, now)) return { kind: 'preview', status: 'expired' };
    return first;
  }
  if (first.kind === 'reminder' && record.reply) {
    return record.reply.kind === 'done'
      ? { kind: 'reminder', status: 'done', at: record.reply.at }
      : { kind: 'reminder', status: 'snoozed', until: record.reply.until ?? record.reply.at };
  }
  if (first.kind === 'anomaly' && subject.trigger?.anomaly) {
    const a = subject.trigger.anomaly;
    if (a.acknowledgedAt) return { kind: 'anomaly', status: 'acknowledged', at: a.acknowledgedAt, severity: a.severity };
    const buzzedAt = subject.trigger.escalation?.buzz?.outcome === 'done' ? subject.trigger.escalation.buzz.at : undefined;
    return { kind: 'anomaly', status: 'open', severity: a.severity, ...(buzzedAt ? { buzzedAt } : {}) };
  }
  return first;
}

export async function loadSubject(ctx: Ctx, record: Pick<RecordDoc, 'replyKind' | 'previewId' | 'triggerId'>): Promise<Subject> {
  if (record.replyKind === 'preview' && record.previewId) {
    return { preview: await ctx.models.previews.findById(record.previewId, { status: 1, expiresAt: 1, candidate: 1 }).lean<PreviewDoc>() };
  }
  if (record.replyKind === 'anomaly' && record.triggerId) {
    return { trigger: await ctx.models.triggers.findById(record.triggerId, { anomaly: 1, escalation: 1 }).lean<TriggerDoc>() };
  }
  return {};
}

export async function loadCardView(ctx: Ctx, record: RecordDoc, now = new Date()): Promise<CardView> {
  const [settings, subject] = await Promise.all([loadUserSettings(ctx, record.userId), loadSubject(ctx, record)]);
  const m = record.message;
  return {
    recordId: String(record._id),
    language: settings.language,
    timeZone: settings.timeZone,
    message: { title: m.title, summary: m.summary, actionText: m.actionText ?? undefined, actionUrl: m.actionUrl ?? undefined },
    state: cardStateOf(record, subject, now),
  };
}
