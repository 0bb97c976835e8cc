/**
 * notification_channels: where one user's messages go, one document per (user, channel kind).
 * Secrets (the webhook URL, whose last segment is the token; bearer tokens; signing secrets) are
 * stored sealed with SECRETS_KEY; only a mask is kept in the clear. An app channel (feishu_app)
 * has no secret of its own: the app's credentials are the deployment's.
 */
import type { Connection, InferSchemaType } from 'mongoose';
import { Schema } from 'mongoose';
import { channelKinds, webhookChannelKinds } from './notificationRecord';
import { receiveIdTypes } from '../feishuApp/types';

function isWebhookKind(this: { channel?: string }): boolean {
  return (webhookChannelKinds as readonly string[]).includes(this.channel ?? '');
}

const channelSchema = new Schema(
  {
    userId: { type: String, required: true },
    channel: { type: String, enum: channelKinds, required: true },
    enabled: { type: Boolean, required: true },
    webhookUrlSealed: { type: String, required: isWebhookKind },
    webhookUrlMasked: { type: String, required: isWebhookKind },
    /** feishu_app only: whom the app bot writes to. */
    receiveIdType: { type: String, enum: receiveIdTypes },
    receiveId: String,
    /** feishu (Flow webhook) only */
    authType: { type: String, enum: ['none', 'bearer'] },
    bearerTokenSealed: String,
    /** feishu_bot only */
    signingSecretSealed: String,
    format: { type: String, enum: ['card', 'post', 'text'] },
    keyword: String,
    lastTest: {
      status: { type: String, enum: ['ok', 'failed'] },
      errorCode: String,
      error: String,
      at: Date,
    },
  },
  { collection: 'notification_channels', timestamps: true },
);
channelSchema.index({ userId: 1, channel: 1 }, { unique: true });

export type NotificationChannelDoc = InferSchemaType<typeof channelSchema>;

export function notificationChannelModel(conn: Connection) {
  return conn.model('NotificationChannel', channelSchema);
}
