/**
 * SSRF guard: webhook requests connect only to public unicast addresses. The check runs on the
 * address actually connected to (a custom DNS lookup in the HTTP agent), so a host name that
 * resolves, or later re-resolves, to a private or loopback address is refused too.
 * Loopback is let through only when WEBHOOK_ALLOW_LOOPBACK is on (tests and the demo).
 */
import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';

export const blockedAddressCode = 'E_DUEFLOW_BLOCKED_ADDRESS';

export function isAllowedAddress(address: string, allowLoopback: boolean): boolean {
  if (!ipaddr.isValid(address)) return false;
  const range = ipaddr.process(address).range();
  return range === 'unicast' || (allowLoopback && range === 'loopback');
}

function blocked(address: string): Error {
  return Object.assign(new Error(`refused to connect to ${address}: not a public address`), { code: blockedAddressCode });
}

/** Refuses an IP-literal URL host before any connection (DNS lookups are skipped for literals). */
export function literalHostProblem(url: string, allowLoopback: boolean): string | undefined {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host) && !isAllowedAddress(host, allowLoopback)) return blocked(host).message;
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | dns.LookupAddress[], family?: number) => void;

export function createGuardedAgent(allowLoopback: boolean): Agent {
  const lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const refused = addresses.find((a) => !isAllowedAddress(a.address, allowLoopback));
      if (refused || addresses.length === 0) return callback(blocked(refused?.address ?? hostname));
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
  return new Agent({ connect: { lookup: lookup as never }, keepAliveTimeout: 30_000 });
}
