/**
 * A user's notification channels (Feishu Flow webhook, Feishu/Lark group bot, the host product's
 * app bot) and their test message; the host product links its users' app channels itself.
 */
import { z } from 'zod';
import type { AppContext } from '../../context';
import { feishuAppEnabled } from '../../config';
import { channelBodySchemas, channelParams, channelPutBodySchema, channelTestResult, channelView, type ChannelBody } from '../../channels/schemas';
import { deleteChannel, getChannel, listChannels, saveChannel, testChannel } from '../../channels/store';
import { HttpError, validationError } from '../errors';
import { defineRoute } from '../route';

const tag = 'notification channels';
const path = '/api/v1/notification/channels/:channel';
const missing = (channel: string) =>
  new HttpError(404, 'not_found', `no ${channel} channel is configured; create it with PUT ${path.replace(':channel', channel)}`);

export function channelRoutes(ctx: AppContext) {
  const bodies = channelBodySchemas(ctx.config);

  /** The body schema depends on the path's kind, so it is applied here rather than by the route. */
  const parseBody = (channel: ChannelBody['channel'], body: unknown): ChannelBody => {
    const parsed = bodies[channel].safeParse(body);
    if (!parsed.success) throw validationError('body', parsed.error);
    return { channel, body: parsed.data } as ChannelBody;
  };
  /** Without the deployment's app credentials there is nothing to send through. */
  const requireAppFor = (channel: string) => {
    if (channel === 'feishu_app' && !feishuAppEnabled(ctx.config)) {
      throw new HttpError(409, 'feishu_app_off', 'the feishu_app channel is off on this deployment: FEISHU_APP_ID (and FEISHU_APP_SECRET) is not set', {
        missing: 'FEISHU_APP_ID',
      });
    }
  };
  const save = async (userId: string, channel: ChannelBody['channel'], body: unknown) => {
    requireAppFor(channel);
    const saved = await saveChannel(ctx, userId, parseBody(channel, body));
    if (!saved.ok) {
      const field = `body.${saved.field}`;
      throw new HttpError(400, 'validation_failed', `${field}: ${saved.message}`, [{ field, message: saved.message }]);
    }
    return { status: 200, body: saved.channel };
  };
  const appParams = z.object({ userId: z.string().min(1).max(128) });

  return [
    defineRoute({
      method: 'get',
      path: '/api/v1/notification/channels',
      tag,
      auth: 'user',
      summary: 'My notification channels (secrets masked)',
      responses: { 200: { description: 'Configured channels, feishu_bot first', schema: z.object({ items: z.array(channelView) }) } },
      handler: async ({ userId }) => ({ status: 200, body: { items: await listChannels(ctx, userId) } }),
    }),
    defineRoute({
      method: 'get',
      path,
      tag,
      auth: 'user',
      summary: 'One of my channels (secrets masked)',
      params: channelParams,
      responses: { 200: { description: 'The channel', schema: channelView }, 404: { description: 'Not configured' } },
      handler: async ({ userId, params }) => {
        const channel = await getChannel(ctx, userId, params.channel);
        if (!channel) throw missing(params.channel);
        return { status: 200, body: channel };
      },
    }),
    defineRoute({
      method: 'put',
      path,
      tag,
      auth: 'user',
      params: channelParams,
      body: channelPutBodySchema(bodies),
      summary: 'Create or replace a channel. Stored secrets are kept when omitted (signingSecret: null removes it); the last test result is cleared',
      responses: {
        200: { description: 'The stored channel (secrets masked)', schema: channelView },
        409: { description: 'feishu_app while the deployment has no app (FEISHU_APP_ID)' },
      },
      handler: async ({ userId, params, body }) => save(userId, params.channel, body),
    }),
    defineRoute({
      method: 'put',
      path: '/api/v1/users/:userId/notification/channels/feishu_app',
      tag,
      auth: 'service',
      params: appParams,
      body: bodies.feishu_app,
      summary: "Link a user to the host product's Feishu/Lark app: messages go to them as direct messages from the app bot",
      responses: {
        200: { description: 'The stored channel (an email receive id masked)', schema: channelView },
        409: { description: 'The deployment has no app (FEISHU_APP_ID)' },
      },
      handler: async ({ params, body }) => save(params.userId, 'feishu_app', body),
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/users/:userId/notification/channels/feishu_app',
      tag,
      auth: 'service',
      params: appParams,
      summary: "A user's link to the host product's app",
      responses: { 200: { description: 'The channel', schema: channelView }, 404: { description: 'Not linked' } },
      handler: async ({ params }) => {
        const channel = await getChannel(ctx, params.userId, 'feishu_app');
        if (!channel) throw missing('feishu_app');
        return { status: 200, body: channel };
      },
    }),
    defineRoute({
      method: 'delete',
      path,
      tag,
      auth: 'user',
      summary: 'Remove a channel and its secrets',
      params: channelParams,
      responses: { 204: { description: 'Removed' }, 404: { description: 'Not configured' } },
      handler: async ({ userId, params }) => {
        if (!(await deleteChannel(ctx, userId, params.channel))) throw missing(params.channel);
        return { status: 204 };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${path}/test`,
      tag,
      auth: 'user',
      params: channelParams,
      summary: 'Send a fixed test message through the channel; the result is stored on the channel (no notification record)',
      responses: {
        200: { description: 'The provider was asked; ok says whether it accepted the message', schema: channelTestResult },
        404: { description: 'Not configured' },
        409: { description: 'The channel is disabled, or feishu_app while the deployment has no app' },
      },
      handler: async ({ userId, params }) => {
        requireAppFor(params.channel);
        const outcome = await testChannel(ctx, userId, params.channel);
        if (outcome.kind === 'missing') throw missing(params.channel);
        if (outcome.kind === 'disabled') {
          throw new HttpError(409, 'channel_disabled', `the ${params.channel} channel is disabled; enable it (PUT with enabled: true) to send a test message`);
        }
        return { status: 200, body: outcome.result };
      },
    }),
  ];
}
