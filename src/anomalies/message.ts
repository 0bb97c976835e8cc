/**
 * The Feishu message of an anomaly, in the user's language and time zone: a severity mark and the
 * title, then the detail, when it occurred and the link (if the reporting service gave one). Pure.
 */
import type { AnomalySeverity } from '../db/trigger';
import type { z } from 'zod';
import type { messageSchema } from '../notifications/schemas';
import { formatMoment, type Language } from '../workflow/message';

export interface AnomalyMessageInput {
  language: Language;
  timeZone: string;
  severity: AnomalySeverity;
  title: string;
  detail: string;
  occurredAt: Date;
  actionUrl?: string | null;
}

const marks: Record<Language, Record<AnomalySeverity, string>> = {
  'zh-CN': { info: '【提示】', warning: '【警告】', critical: '【严重】' },
  en: { info: '[Info] ', warning: '[Warning] ', critical: '[Critical] ' },
};

export function buildAnomalyMessage(m: AnomalyMessageInput): z.infer<typeof messageSchema> {
  const zh = m.language === 'zh-CN';
  const when = `${formatMoment(m.occurredAt, m.timeZone, m.language)} (${m.timeZone})`;
  return {
    title: `${marks[m.language][m.severity]}${m.title}`,
    summary: `${m.detail}\n${zh ? '发生时间：' : 'Occurred: '}${when}`,
    ...(m.actionUrl ? { actionText: zh ? '查看详情' : 'View details', actionUrl: m.actionUrl } : {}),
  };
}
