/**
 * The user's token: handed over in the URL fragment (`/app#token=...`; a fragment never reaches
 * the server or its logs) or pasted once, then kept in sessionStorage (gone with the tab).
 */
const KEY = 'dueflow.token';

/** Reads `#token=` and removes it from the address bar and history. */
export function takeTokenFromFragment(): string | null {
  if (!location.hash.startsWith('#')) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token === null) return null;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  const cleaned = cleanToken(token);
  if (cleaned) storeToken(cleaned);
  return cleaned;
}

/** Accepts what people paste: with or without `Bearer `, with stray spaces or newlines. */
export function cleanToken(raw: string): string | null {
  const token = raw
    .trim()
    .replace(/^Bearer\s+/i, '')
    .replace(/\s+/g, '');
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) ? token : null;
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    /* storage disabled: the token lives as long as the page */
  }
}

export function clearToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
}

/** The user id in the token (not verified here: the API does that), for display only. */
export function tokenSubject(token: string): string | null {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    const json = JSON.parse(new TextDecoder().decode(bytes));
    return typeof json.sub === 'string' ? json.sub : null;
  } catch {
    return null;
  }
}
