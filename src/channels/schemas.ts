/**
 * The channel settings API's shapes: request bodies per channel kind (validation + TS types +
 * OpenAPI), the channel view and the test answer. Webhook hosts depend on the operator's
 * configuration, so the body schemas are built from it.
 */
import { z } from 'zod';
import type { Config } from '../config';
import { channelKinds, type WebhookChannelKind } from '../db/notificationRecord';
import { receiveIdTypes } from '../feishuApp/types';

export type WebhookPolicy = Pick<Config, 'WEBHOOK_ALLOWED_HOSTS' | 'WEBHOOK_ALLOW_LOOPBACK'>;

export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Feishu's own hosts per kind. An allowed host that belongs to neither (an operator's proxy) is accepted for both. */
const kindHosts: Record<WebhookChannelKind, string[]> = {
  feishu: ['www.feishu.cn', 'feishu.cn'],
  feishu_bot: ['open.feishu.cn', 'open.larksuite.com'],
};
const feishuHosts = new Set(Object.values(kindHosts).flat());

/** The secret part is one URL-safe segment; anything else (encoded slashes, dots) is not a Feishu token. */
const kindPaths: Record<WebhookChannelKind, { pattern: RegExp; shape: string }> = {
  feishu: { pattern: /^\/flow\/api\/trigger-webhook\/[A-Za-z0-9_-]{1,256}$/, shape: '/flow/api/trigger-webhook/<id>' },
  feishu_bot: { pattern: /^\/open-apis\/bot\/v2\/hook\/[A-Za-z0-9_-]{1,256}$/, shape: '/open-apis/bot/v2/hook/<token>' },
};

const loopbackHosts = new Set(['127.0.0.1', '[::1]']);

export function allowedWebhookHosts(kind: WebhookChannelKind, policy: WebhookPolicy): string[] {
  return policy.WEBHOOK_ALLOWED_HOSTS.filter((h) => kindHosts[kind].includes(h) || !feishuHosts.has(h));
}

/** What is wrong with a webhook URL for this kind, in words a user can act on; undefined when it is fine. Never echoes the token. */
export function webhookUrlProblem(kind: WebhookChannelKind, raw: string, policy: WebhookPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL, like https://open.feishu.cn/open-apis/bot/v2/hook/<token>';
  }
  if (url.username || url.password) return 'must not contain credentials (user:password@)';
  if (raw.includes('?') || raw.includes('#')) return 'must not have a query string or fragment';
  const loopback = policy.WEBHOOK_ALLOW_LOOPBACK && loopbackHosts.has(url.hostname);
  if (url.protocol !== 'https:' && !(loopback && url.protocol === 'http:')) return 'must use https';
  if (!loopback) {
    const hosts = allowedWebhookHosts(kind, policy);
    if (!hosts.includes(url.hostname)) {
      return hosts.length ? `host must be one of ${hosts.join(', ')}` : `no host is allowed for ${kind} channels (WEBHOOK_ALLOWED_HOSTS)`;
    }
    // Feishu listens on 443 only; a port is a sign of a wrong or hostile URL.
    if (url.port !== '') return 'must not name a port';
  }
  if (!kindPaths[kind].pattern.test(url.pathname)) return `path must be ${kindPaths[kind].shape}`;
  return undefined;
}

/** The form stored and sent: the parser's normalisation (lower-case host, resolved dot segments). */
export function normalizeWebhookUrl(raw: string): string {
  return new URL(raw).href;
}

function webhookUrlSchema(kind: WebhookChannelKind, policy: WebhookPolicy) {
  return z
    .string()
    .max(MAX_WEBHOOK_URL_LENGTH)
    .superRefine((raw, c) => {
      const problem = webhookUrlProblem(kind, raw, policy);
      if (problem) c.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: `The webhook URL; its last segment is a secret (stored encrypted, shown masked). Path ${kindPaths[kind].shape}.` });
}

/** Tokens go into a header or an HMAC key: printable ASCII, no spaces. */
const secretString = (what: string) =>
  z
    .string()
    .min(1)
    .max(512)
    .regex(/^[\x21-\x7e]+$/, `${what} must be printable ASCII without spaces`);

export function channelBodySchemas(policy: WebhookPolicy) {
  const feishu = z
    .strictObject({
      enabled: z.boolean(),
      webhookUrl: webhookUrlSchema('feishu', policy),
      authType: z.enum(['none', 'bearer']),
      bearerToken: secretString('bearerToken')
        .optional()
        .meta({ description: 'Required with authType bearer, unless one is stored already: omit it to keep the stored token.' }),
    })
    .superRefine((body, c) => {
      if (body.authType === 'none' && body.bearerToken !== undefined) {
        c.addIssue({ code: 'custom', path: ['bearerToken'], message: 'must be absent when authType is none (use authType bearer to send it)' });
      }
    })
    .meta({ title: 'FeishuFlowChannelBody', description: 'A Feishu Flow trigger webhook (PUT /channels/feishu)' });

  const feishuBot = z
    .strictObject({
      enabled: z.boolean(),
      webhookUrl: webhookUrlSchema('feishu_bot', policy),
      signingSecret: secretString('signingSecret')
        .nullable()
        .optional()
        .meta({ description: "The bot's signature secret. Omit to keep the stored one; null removes it." }),
      format: z.enum(['card', 'post', 'text']).default('card'),
      keyword: z
        .string()
        .trim()
        .min(1)
        .max(100)
        .nullable()
        .optional()
        .meta({ description: "The bot's custom keyword, put in every message title; null or absent for none." }),
    })
    .meta({ title: 'FeishuBotChannelBody', description: 'A Feishu or Lark custom group bot (PUT /channels/feishu_bot)' });

  const feishuApp = z
    .strictObject({
      enabled: z.boolean(),
      receiveIdType: z.enum(receiveIdTypes, { message: `must be one of ${receiveIdTypes.join(', ')}` }),
      receiveId: z
        .string()
        .trim()
        .min(1)
        .max(128)
        .meta({ description: "The person in the host product's Feishu app: an open_id (ou_…), union_id (on_…), user_id, or email" }),
    })
    .superRefine((body, c) => {
      const problem = receiveIdProblem(body.receiveIdType, body.receiveId);
      if (problem) c.addIssue({ code: 'custom', path: ['receiveId'], message: problem });
    })
    .meta({ title: 'FeishuAppChannelBody', description: "Direct messages from the host product's Feishu/Lark app bot (PUT /channels/feishu_app)" });

  return { feishu, feishu_bot: feishuBot, feishu_app: feishuApp };
}

const receiveIdShapes: Record<(typeof receiveIdTypes)[number], { pattern: RegExp; shape: string }> = {
  open_id: { pattern: /^ou_[A-Za-z0-9_-]{1,100}$/, shape: 'an open_id: ou_ then letters and digits' },
  union_id: { pattern: /^on_[A-Za-z0-9_-]{1,100}$/, shape: 'a union_id: on_ then letters and digits' },
  user_id: { pattern: /^[A-Za-z0-9_-]{1,64}$/, shape: 'a user_id: letters, digits, _ and -' },
  email: { pattern: /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@.]{2,63}$/, shape: 'an email address' },
};

/** What is wrong with a receive id of that type; undefined when it has the type's shape. */
export function receiveIdProblem(type: (typeof receiveIdTypes)[number], id: string): string | undefined {
  const { pattern, shape } = receiveIdShapes[type];
  return pattern.test(id) ? undefined : `must be ${shape} (receiveIdType ${type})`;
}

export type ChannelBodySchemas = ReturnType<typeof channelBodySchemas>;
export type FeishuFlowChannelBody = z.output<ChannelBodySchemas['feishu']>;
export type FeishuBotChannelBody = z.output<ChannelBodySchemas['feishu_bot']>;
export type FeishuAppChannelBody = z.output<ChannelBodySchemas['feishu_app']>;
export type ChannelBody =
  | { channel: 'feishu'; body: FeishuFlowChannelBody }
  | { channel: 'feishu_bot'; body: FeishuBotChannelBody }
  | { channel: 'feishu_app'; body: FeishuAppChannelBody };

/**
 * The PUT body as the route declares it: any JSON object, documented as one of the two kinds.
 * Which one applies depends on the path, which zod cannot see; the handler parses with the kind's schema.
 */
export function channelPutBodySchema(schemas: ChannelBodySchemas) {
  const oneOf = [schemas.feishu, schemas.feishu_bot, schemas.feishu_app].map((s) => {
    const { $schema: _ignored, ...json } = z.toJSONSchema(s, { io: 'input' });
    return json;
  });
  return z.looseObject({}).meta({ description: 'The body for the channel named in the path: feishu, feishu_bot or feishu_app', oneOf });
}

export const channelParams = z.object({ channel: z.enum(channelKinds) });

const lastTestView = z
  .object({
    status: z.enum(['ok', 'failed']),
    errorCode: z.string().nullable(),
    error: z.string().nullable(),
    at: z.iso.datetime(),
  })
  .nullable()
  .meta({ description: 'The last test message sent through this configuration; cleared by every PUT' });

const commonView = {
  enabled: z.boolean(),
  lastTest: lastTestView,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
};
const webhookUrlView = z.string().meta({ description: 'Masked: first and last 4 characters of the token' });

export const channelView = z.discriminatedUnion('channel', [
  z.object({ channel: z.literal('feishu'), ...commonView, webhookUrl: webhookUrlView, authType: z.enum(['none', 'bearer']), hasBearerToken: z.boolean() }),
  z.object({
    channel: z.literal('feishu_bot'),
    ...commonView,
    webhookUrl: webhookUrlView,
    hasSigningSecret: z.boolean(),
    format: z.enum(['card', 'post', 'text']),
    keyword: z.string().nullable(),
  }),
  z.object({
    channel: z.literal('feishu_app'),
    ...commonView,
    receiveIdType: z.enum(receiveIdTypes),
    receiveId: z.string().meta({ description: 'An email is shown masked (a…e@example.com)' }),
  }),
]);
export type ChannelView = z.infer<typeof channelView>;

export const channelTestResult = z.object({
  ok: z.boolean(),
  code: z.string().meta({ description: "'ok', or the provider's error code (feishu_19021, provider_auth_failed, network_error...)" }),
  httpStatus: z.number().optional(),
  detail: z.string().optional(),
});
export type ChannelTestResult = z.infer<typeof channelTestResult>;
