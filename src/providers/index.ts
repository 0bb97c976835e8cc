/** The provider registry. A new provider = its channel type in types.ts' ChannelConfig + one file + one line below. */
import { feishuBotProvider } from './feishuBot';
import { feishuFlowProvider } from './feishuFlow';
import type { ChannelConfig, Delivery, Provider, ProviderOutcome } from './types';

export type ProviderKind = ChannelConfig['kind'];
type ProviderFor<K extends ProviderKind> = Provider<Extract<ChannelConfig, { kind: K }>>;

/** Mapped over ChannelConfig, so a channel kind without a provider is a compile error. */
export const providers: { [K in ProviderKind]: ProviderFor<K> } = {
  feishu_bot: feishuBotProvider,
  feishu: feishuFlowProvider,
};

export function isProviderKind(kind: string): kind is ProviderKind {
  return Object.prototype.hasOwnProperty.call(providers, kind);
}

export function providerFor<K extends ProviderKind>(kind: K): ProviderFor<K> {
  const provider = providers[kind];
  if (!provider) throw new Error(`no provider for channel kind "${String(kind)}"`);
  return provider;
}

/** Sends through the provider matching the channel's kind (the kind check lives here, once). */
export function sendToChannel(channel: ChannelConfig, delivery: Delivery): Promise<ProviderOutcome> {
  return (providerFor(channel.kind) as Provider<ChannelConfig>).send(channel, delivery);
}

export type * from './types';
export { maskSecret, maskWebhookUrl } from './mask';
export { classifyFeishuResponse, createFeishuBotProvider, feishuBotProvider, buildFeishuBotBody, feishuSign } from './feishuBot';
export { classifyFeishuFlowResponse, createFeishuFlowProvider, feishuFlowProvider, buildFeishuFlowBody } from './feishuFlow';
