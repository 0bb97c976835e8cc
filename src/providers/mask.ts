/** Masking for anything that reaches a log, an audit record or an API answer. */

const FULL_MASK = '****';
/** Below this length, showing 8 characters would give away half the secret or more. */
const MIN_PARTIAL_LENGTH = 16;

/** `abcd…wxyz` for long strings; short strings are fully masked (length not revealed). */
export function maskSecret(s: string): string {
  if (s.length < MIN_PARTIAL_LENGTH) return FULL_MASK;
  return `${s.slice(0, 4)}…${s.slice(-4)}`;
}

/** Masks the last path segment (where Feishu puts the token) and every query value (where DingTalk/WeCom do). */
export function maskWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return maskSecret(url);
  }
  const segments = parsed.pathname.split('/');
  const last = segments.length - 1;
  if (segments[last] !== '') segments[last] = maskSecret(decodeURIComponent(segments[last]));
  const query = [...parsed.searchParams.keys()].map((key) => `${key}=${maskSecret(parsed.searchParams.get(key) ?? '')}`);
  // Built by hand: URL setters would percent-encode the ellipsis.
  return `${parsed.origin}${segments.join('/')}${query.length ? `?${query.join('&')}` : ''}`;
}

/** The token part of a webhook URL (last path segment), for redaction. */
export function webhookUrlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const lastSegment = decodeURIComponent(parsed.pathname.split('/').pop() ?? '');
    return [lastSegment, ...parsed.searchParams.values()].filter((s) => s.length > 0);
  } catch {
    return [url];
  }
}

/** Shorter "secrets" would wreck ordinary text when replaced; real tokens are far longer. */
const MIN_REDACTED_LENGTH = 4;
const REDACTED = '[redacted]';

/** Deep copy of `value` with every occurrence of a secret inside strings replaced (defence against servers that echo what they got). */
export function redactSecrets<T>(value: T, secrets: Array<string | undefined>): T {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= MIN_REDACTED_LENGTH);
  if (list.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return list.reduce((acc, secret) => (acc.includes(secret) ? acc.split(secret).join(REDACTED) : acc), v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, inner]) => [walk(k) as string, walk(inner)]));
    }
    return v;
  };
  return walk(value) as T;
}
