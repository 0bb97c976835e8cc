/** The provider contract: a provider turns one delivery into one outcome and never throws for HTTP trouble. */

export interface NotificationMessage {
  title: string;
  summary: string;
  actionText?: string;
  actionUrl?: string;
}

/** What is being delivered. */
export interface Delivery {
  notificationId: string;
  userId: string;
  triggerType: string;
  target: { type: string; id: string };
  message: NotificationMessage;
  traceId?: string;
  triggerId?: string;
  previewId?: string;
  /** For the app channel's card: the user's language and clock, and the state it is drawn in. */
  card?: CardView;
}

/** What a card shows (cards/render.ts draws it): the message, in the state of what it asks about. */
export type CardState =
  | { kind: 'message' }
  | { kind: 'test' }
  | { kind: 'preview'; status: 'ready' }
  | { kind: 'preview'; status: 'confirmed'; slot?: { start: Date; end: Date } }
  | { kind: 'preview'; status: 'rejected' | 'expired' }
  | { kind: 'reminder'; status: 'open' }
  | { kind: 'reminder'; status: 'done'; at: Date }
  | { kind: 'reminder'; status: 'snoozed'; until: Date }
  | { kind: 'anomaly'; status: 'open'; severity?: string; buzzedAt?: Date }
  | { kind: 'anomaly'; status: 'acknowledged'; at: Date; severity?: string };

export interface CardView {
  recordId: string;
  language: 'zh-CN' | 'en';
  timeZone: string;
  message: NotificationMessage;
  state: CardState;
}

export type OutcomeKind = 'sent' | 'temporary' | 'permanent';

export interface ProviderOutcome {
  kind: OutcomeKind;
  /** 'ok' | 'provider_rate_limited' | 'provider_5xx' | 'provider_timeout' | 'network_error' | 'provider_auth_failed' | 'payload_invalid' | 'invalid_url' | 'feishu_<code>' */
  code: string;
  /** true for Feishu 11232 and HTTP 429: the caller slows the webhook down without spending an attempt. */
  rateLimited: boolean;
  /** When rate limited: how long Feishu asked to wait (the app API's x-ogw-ratelimit-reset). */
  retryAfterMs?: number;
  httpStatus?: number;
  /** Feishu's JSON code, when there was one. */
  providerCode?: number;
  /** Human-readable, never contains a secret. */
  detail?: string;
  providerMessageId?: string;
  durationMs: number;
  /** With secrets removed: URL token part masked, sign removed, bearer never included. */
  request: { url: string; body: unknown };
  response?: { status: number; body: unknown };
}

/** Custom group bot webhook (open-apis/bot/v2/hook/<token>). */
export interface FeishuBotChannel {
  kind: 'feishu_bot';
  webhookUrl: string;
  signingSecret?: string;
  format: 'card' | 'post' | 'text';
  keyword?: string;
}

/** Feishu Flow trigger webhook (flow/api/trigger-webhook/<id>). */
export interface FeishuFlowChannel {
  kind: 'feishu';
  webhookUrl: string;
  authType: 'none' | 'bearer';
  bearerToken?: string;
}

/** A person, through the host product's Feishu/Lark app bot (the deployment's FEISHU_APP_ID). */
export interface FeishuAppChannel {
  kind: 'feishu_app';
  receiveIdType: 'open_id' | 'union_id' | 'user_id' | 'email';
  receiveId: string;
}

/** Secrets already decrypted. A new provider adds its channel type here. */
export type ChannelConfig = FeishuBotChannel | FeishuFlowChannel | FeishuAppChannel;

export interface Provider<C extends ChannelConfig = ChannelConfig> {
  kind: C['kind'];
  send(channel: C, delivery: Delivery): Promise<ProviderOutcome>;
}

/** The classification part of an outcome: what a pure response classifier returns. */
export type Classification = Pick<ProviderOutcome, 'kind' | 'code' | 'rateLimited' | 'httpStatus' | 'providerCode' | 'detail'>;
