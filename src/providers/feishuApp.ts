/** The host product's Feishu/Lark app bot: one card to one person, through the app API (src/feishuApp/). */
import { createHash } from 'node:crypto';
import { renderCard } from '../cards/render';
import type { FeishuAppApi } from '../feishuApp/types';
import type { Delivery, FeishuAppChannel, Provider } from './types';

/**
 * Feishu sends at most one message per uuid within an hour: derived from the record alone, it is
 * the same on every attempt and replay, so a resend after a crash is still one message.
 */
export function messageUuid(notificationId: string): string {
  return `df-${createHash('sha256').update(notificationId).digest('base64url').slice(0, 40)}`;
}

/** The card as first sent: the message, and the buttons its kind offers. */
function firstCard(delivery: Delivery): object {
  return renderCard(
    delivery.card ?? { recordId: delivery.notificationId, language: 'zh-CN', timeZone: 'Asia/Shanghai', message: delivery.message, state: { kind: 'message' } },
  );
}

/** Without an app (FEISHU_APP_ID unset) every send is refused for good, saying which setting is missing. */
export function createFeishuAppProvider(api: FeishuAppApi | undefined): Provider<FeishuAppChannel> {
  return {
    kind: 'feishu_app',
    async send(channel, delivery) {
      if (!api) {
        return {
          kind: 'permanent',
          code: 'app_not_configured',
          rateLimited: false,
          detail: 'the feishu_app channel is off: FEISHU_APP_ID and FEISHU_APP_SECRET are not set',
          durationMs: 0,
          request: { url: '/open-apis/im/v1/messages', body: {} },
        };
      }
      return api.send({
        receiveIdType: channel.receiveIdType,
        receiveId: channel.receiveId,
        card: firstCard(delivery),
        uuid: messageUuid(delivery.notificationId),
      });
    },
  };
}
