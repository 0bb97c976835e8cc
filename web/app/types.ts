/** The API's answers as the page uses them (see GET /openapi.json for the full shapes). */

/** In the server's order of preference when settings name no primary channel (src/channels/store.ts). */
export const channelKinds = ['feishu_app', 'feishu_bot', 'feishu'] as const;
export type ChannelKind = (typeof channelKinds)[number];
export type BotFormat = 'card' | 'post' | 'text';
export const receiveIdTypes = ['open_id', 'union_id', 'user_id', 'email'] as const;
export type ReceiveIdType = (typeof receiveIdTypes)[number];

export interface LastTest {
  status: 'ok' | 'failed';
  errorCode: string | null;
  error: string | null;
  at: string;
}

interface ChannelCommon {
  enabled: boolean;
  lastTest: LastTest | null;
  createdAt: string;
  updatedAt: string;
}
export type Channel =
  | (ChannelCommon & { channel: 'feishu'; webhookUrl: string; authType: 'none' | 'bearer'; hasBearerToken: boolean })
  | (ChannelCommon & { channel: 'feishu_bot'; webhookUrl: string; hasSigningSecret: boolean; format: BotFormat; keyword: string | null })
  /** The host product's app bot, as direct messages; an email receive id comes back masked. */
  | (ChannelCommon & { channel: 'feishu_app'; receiveIdType: ReceiveIdType; receiveId: string });

export interface ChannelTestResult {
  ok: boolean;
  code: string;
  httpStatus?: number;
  detail?: string;
}

export interface ClockRange {
  start: string;
  end: string;
}
export type Language = 'zh-CN' | 'en';
export interface Settings {
  timeZone: string;
  quietHours: ClockRange | null;
  optOutTriggerTypes: string[];
  workingHours: ClockRange;
  language: Language;
  /** null: automatic (the enabled channel, in channelKinds' order). */
  primaryChannel: ChannelKind | null;
  /** Where an unacknowledged critical anomaly goes at the second escalation step; null: none. */
  fallbackChannel: ChannelKind | null;
  escalation: { afterMinutes: number };
  /** Settings the page does not edit are kept as they are. */
  [other: string]: unknown;
}

export const recordStatuses = ['pending', 'sending', 'sent', 'skipped', 'failed', 'dead', 'digested'] as const;
export type RecordStatus = (typeof recordStatuses)[number];

export interface Message {
  title: string;
  summary: string;
  actionText?: string;
  actionUrl?: string;
}

export interface NotificationRecord {
  id: string;
  channel: ChannelKind;
  triggerType: string;
  triggerId: string | null;
  previewId: string | null;
  message: Message;
  status: RecordStatus;
  statusReason: string | null;
  attemptCount: number;
  maxAttempts: number;
  nextRetryAt: string | null;
  deferredUntil: string | null;
  lastErrorCode: string | null;
  lastError: string | null;
  sentAt: string | null;
  /** `digested`: the digest record that carried this message. */
  digestId?: string | null;
  /** A digest: the records it lists. */
  digestOf?: string[] | null;
  /** What its card lets the user answer; anomalies can be acknowledged. */
  replyKind?: 'preview' | 'reminder' | 'anomaly' | null;
  /** An anomaly's severity (info, warning, critical). */
  severity?: string | null;
  acknowledgedAt?: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface HistoryEntry {
  at: string;
  event: string;
  attempt?: number;
  outcome?: string;
  code?: string;
  httpStatus?: number;
  providerCode?: number;
  durationMs?: number;
  detail?: string;
  until?: string;
}

export interface RecordDetail extends NotificationRecord {
  history: HistoryEntry[];
}
export interface RecordPage {
  items: NotificationRecord[];
  nextCursor: string | null;
}

export interface Candidate {
  kind: string;
  taskId: string | null;
  title: string | null;
  start: string | null;
  end: string | null;
  score: number | null;
  reason: string | null;
}
export type PreviewStatus = 'ready' | 'confirming' | 'confirmed' | 'rejected' | 'expired';
export interface Preview {
  id: string;
  triggerId: string;
  triggerType: string;
  status: PreviewStatus;
  candidate: Candidate;
  summaryText: string;
  message: { title: string; summary: string; actionText: string | null; actionUrl: string | null } | null;
  timeZone: string | null;
  expiresAt: string;
  confirmedAt: string | null;
  blockId: string | null;
  createdAt: string;
}

export interface Block {
  id: string;
  taskId: string | null;
  title: string;
  start: string;
  end: string;
  status: string;
  previewId: string | null;
}
export interface ConfirmResult {
  preview: Preview;
  block: Block | null;
  replayed: boolean;
}
export interface RejectResult {
  preview: Preview;
  replayed: boolean;
}

export interface AcknowledgeResult {
  id: string;
  acknowledgedAt: string;
  acknowledgedVia: 'app' | 'feishu' | 'api';
}
