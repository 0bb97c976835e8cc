/** The host product's Feishu/Lark app as dueflow uses it: send a card to a person, redraw it, buzz it. */
import type { ProviderOutcome } from '../providers/types';

export const receiveIdTypes = ['open_id', 'union_id', 'user_id', 'email'] as const;
export type ReceiveIdType = (typeof receiveIdTypes)[number];

/** One call's outcome, in the providers' terms; `providerMessageId` is Feishu's message_id on a send. */
export interface AppCallOutcome extends ProviderOutcome {
  /** When Feishu said "slow down": how long to wait (x-ogw-ratelimit-reset, or 1-2 s). */
  retryAfterMs?: number;
}

export interface SendCardInput {
  receiveIdType: ReceiveIdType;
  receiveId: string;
  /** Feishu card JSON 2.0 (sent as the `content` string, msg_type interactive). */
  card: object;
  /** Derived from the notification record: the same on every attempt and replay (Feishu sends one message per uuid per hour). */
  uuid: string;
}

export interface FeishuAppApi {
  send(input: SendCardInput): Promise<AppCallOutcome>;
  /** PATCH /open-apis/im/v1/messages/:message_id with the card redrawn. */
  updateCard(input: { messageId: string; card: object }): Promise<AppCallOutcome>;
  /** PATCH /open-apis/im/v1/messages/:message_id/urgent_app?user_id_type=open_id. */
  buzz(input: { messageId: string; openIds: string[] }): Promise<AppCallOutcome>;
}
