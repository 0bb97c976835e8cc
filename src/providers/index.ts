/** The provider registry. A new provider = its channel type in types.ts' ChannelConfig + one file + one line below. */
import { createFeishuBotProvider } from './feishuBot';
import { createFeishuFlowProvider } from './feishuFlow';
import { createFeishuAppProvider } from './feishuApp';
import { createGuardedAgent } from './addressGuard';
import type { FeishuAppApi } from '../feishuApp/types';
import type { ChannelConfig, Delivery, Provider, ProviderOutcome } from './types';

export type ProviderKind = ChannelConfig['kind'];
type ProviderFor<K extends ProviderKind> = Provider<Extract<ChannelConfig, { kind: K }>>;

/** Mapped over ChannelConfig, so a channel kind without a provider is a compile error. */
export type Providers = { [K in ProviderKind]: ProviderFor<K> };

/** dueflow's providers: with the configured timeout and the SSRF guard (public addresses only). */
export function createProviders(options: { timeoutMs?: number; allowLoopback: boolean; feishuApp?: FeishuAppApi }): Providers {
  const guard = { agent: createGuardedAgent(options.allowLoopback), allowLoopback: options.allowLoopback };
  return {
    feishu_bot: createFeishuBotProvider({ timeoutMs: options.timeoutMs, guard }),
    feishu: createFeishuFlowProvider({ timeoutMs: options.timeoutMs, guard }),
    // The app API's base is the operator's setting, not a user's URL: no address guard there.
    feishu_app: createFeishuAppProvider(options.feishuApp),
  };
}

/** Unguarded providers with the default 5 s timeout, for tools and provider tests; the process context builds guarded ones. */
export const providers: Providers = {
  feishu_bot: createFeishuBotProvider(),
  feishu: createFeishuFlowProvider(),
  feishu_app: createFeishuAppProvider(undefined),
};

export function isProviderKind(kind: string): kind is ProviderKind {
  return Object.prototype.hasOwnProperty.call(providers, kind);
}

export function providerFor<K extends ProviderKind>(kind: K, registry: Providers = providers): ProviderFor<K> {
  const provider = registry[kind];
  if (!provider) throw new Error(`no provider for channel kind "${String(kind)}"`);
  return provider;
}

/** Sends through the provider matching the channel's kind (the kind check lives here, once). */
export function sendToChannel(channel: ChannelConfig, delivery: Delivery, registry: Providers = providers): Promise<ProviderOutcome> {
  return (providerFor(channel.kind, registry) as Provider<ChannelConfig>).send(channel, delivery);
}

export type * from './types';
export { maskSecret, maskWebhookUrl } from './mask';
export { classifyFeishuResponse, createFeishuBotProvider, feishuBotProvider, buildFeishuBotBody, feishuSign } from './feishuBot';
export { createFeishuAppProvider, messageUuid } from './feishuApp';
export { classifyFeishuFlowResponse, createFeishuFlowProvider, feishuFlowProvider, buildFeishuFlowBody } from './feishuFlow';
