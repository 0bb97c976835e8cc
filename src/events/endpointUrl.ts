/**
 * The rules a webhook endpoint's URL must pass: the same address rules as channels (https, no
 * private, loopback or link-local address, no credentials; redirects are never followed when
 * sending), plus EVENT_ALLOWED_HOSTS. Names that resolve to a private address are refused when
 * connecting (providers/addressGuard.ts), since DNS can change after this check.
 */
import net from 'node:net';
import type { Config } from '../config';
import { isAllowedAddress } from '../providers/addressGuard';

export type EndpointUrlPolicy = Pick<Config, 'EVENT_ALLOWED_HOSTS' | 'WEBHOOK_ALLOW_LOOPBACK'>;

export const MAX_ENDPOINT_URL_LENGTH = 2048;

const loopbackHosts = new Set(['127.0.0.1', '[::1]']);

function hostAllowed(host: string, allowed: string[]): boolean {
  return allowed.some((a) => (a.startsWith('*.') ? host.endsWith(a.slice(1)) && host.length > a.length - 1 : host === a));
}

/** What is wrong with an endpoint URL, in words the caller can act on; undefined when it is fine. */
export function endpointUrlProblem(raw: string, policy: EndpointUrlPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL, like https://hooks.example.com/dueflow';
  }
  if (url.username || url.password) return 'must not contain credentials (user:password@)';
  if (raw.includes('#')) return 'must not have a fragment';
  // The test and demo switch: a receiver on this machine, over http too.
  const loopback = policy.WEBHOOK_ALLOW_LOOPBACK && loopbackHosts.has(url.hostname);
  if (url.protocol !== 'https:' && !(loopback && url.protocol === 'http:')) return 'must use https';
  if (loopback) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    if (!isAllowedAddress(host, false)) return `must not point to a private, loopback or link-local address (${host})`;
  } else if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    return 'must name a public host';
  }
  if (policy.EVENT_ALLOWED_HOSTS.length && !hostAllowed(url.hostname, policy.EVENT_ALLOWED_HOSTS)) {
    return `host must be one of ${policy.EVENT_ALLOWED_HOSTS.join(', ')} (EVENT_ALLOWED_HOSTS)`;
  }
  return undefined;
}
