/**
 * The user page (/app, /app/previews/<id>): where my messages go, when, and what happened to them.
 * Plain DOM on the public API; the token comes from `#token=` or a paste box and stays in this tab.
 */
import { Api, ApiError } from './api';
import { h, replaceChildren } from './dom';
import { FormErrors, field } from './forms';
import { prefs } from './format';
import { cleanToken, clearToken, storedToken, storeToken, takeTokenFromFragment, tokenSubject } from './token';
import { channelView } from './views/channel';
import { notificationsView } from './views/notifications';
import { previewsView } from './views/previews';
import { settingsView } from './views/settings';

const root = document.getElementById('app')!;

/** /app/previews/<id>: the page opens on that suggestion. */
function focusedPreviewId(): string | null {
  return /^\/app\/previews\/([0-9a-f]{24})\/?$/.exec(location.pathname)?.[1] ?? null;
}

function start(): void {
  const token = takeTokenFromFragment() ?? storedToken();
  if (token) showApp(token);
  else showSignIn();
}

function showSignIn(reason?: string): void {
  document.title = 'Sign in — dueflow';
  const errors = new FormErrors();
  const input = h('textarea', { name: 'token', rows: 3, autocomplete: 'off', spellcheck: 'false', placeholder: 'eyJhbGciOi…' });
  const submit = h('button', { type: 'submit', className: 'primary' }, 'Open my page');
  const form = h(
    'form',
    { className: 'card sign-in', novalidate: true },
    h('h2', {}, 'Open your notification settings'),
    reason ? h('p', { className: 'form-error', role: 'alert' }, reason) : null,
    field(
      'Your dueflow token',
      input,
      errors,
      'token',
      'Copy it from the product that sent you here. It stays in this browser tab only, and "Sign out" forgets it.',
    ),
    errors.general,
    h('div', { className: 'actions' }, submit),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = cleanToken(input.value);
    if (!token) {
      errors.show(
        new ApiError(400, 'validation_failed', 'token', [
          { field: 'token', message: 'this is not a token: it looks like three parts separated by dots (xxxxx.yyyyy.zzzzz)' },
        ]),
      );
      return;
    }
    storeToken(token);
    showApp(token);
  });
  replaceChildren(root, header(null), h('main', { id: 'main' }, form));
  input.focus();
}

function header(subject: string | null, onSignOut?: () => void): HTMLElement {
  const nav = subject
    ? h(
        'nav',
        { 'aria-label': 'Sections' },
        h('a', { href: '#previews' }, 'Suggestions'),
        h('a', { href: '#channel' }, 'Channels'),
        h('a', { href: '#settings' }, 'Settings'),
        h('a', { href: '#notifications' }, 'Notifications'),
      )
    : null;
  const signOut = onSignOut ? h('button', { type: 'button', className: 'link', 'data-action': 'sign-out', onclick: onSignOut }, 'Sign out') : null;
  return h(
    'header',
    { className: 'top' },
    h('div', { className: 'brand' }, h('span', { className: 'logo', 'aria-hidden': 'true' }, '◷'), h('strong', {}, 'dueflow')),
    subject ? h('span', { className: 'who' }, 'Signed in as ', h('code', {}, subject)) : null,
    signOut,
    nav,
  );
}

function showApp(token: string): void {
  document.title = 'My notifications — dueflow';
  let signedOut = false;
  const signOut = (reason?: string) => {
    if (signedOut) return;
    signedOut = true;
    clearToken();
    if (focusedPreviewId() === null && location.pathname !== '/app') history.replaceState(null, '', '/app');
    showSignIn(reason);
  };
  const api = new Api(token, () => signOut('Your token was refused (invalid or expired). Paste a new one.'));
  const banner = h('p', { className: 'form-error banner', role: 'alert', hidden: true });
  const focusId = focusedPreviewId();

  const previews = previewsView(api, focusId);
  // Settings and channels tell each other: the cards show the primary and fallback, the settings warn of a channel not set up.
  const channel = channelView(api, (kinds) => settings.setChannels(kinds));
  const settings = settingsView(api, (s) => {
    prefs.timeZone = s.timeZone;
    channel.setRouting(s);
  });
  const notifications = notificationsView(api, (records) => settings.addKnownTypes(records.map((r) => r.triggerType)));

  replaceChildren(
    root,
    header(tokenSubject(token), () => signOut()),
    h('main', { id: 'main' }, banner, previews.element, channel.element, settings.element, notifications.element),
  );

  const failed = (what: string) => (err: unknown) => {
    if (signedOut) return;
    banner.textContent = `Could not load ${what}: ${err instanceof ApiError ? err.message : String(err)}`;
    banner.hidden = false;
  };
  // Settings first: times on the page are shown in the user's time zone.
  void settings
    .load()
    .then((s) => channel.setRouting(s), failed('your settings'))
    .then(async () => {
      if (signedOut) return;
      await Promise.all([
        channel.load().catch(failed('your channels')),
        notifications.load(),
        api
          .records({ limit: 50 })
          .catch((err: unknown) => {
            failed('your suggestions')(err);
            return { items: [] };
          })
          .then((page) => previews.load(page.items))
          .catch(failed('your suggestions')),
      ]);
      // Tests (and scripts) wait for this before reading the page.
      root.dataset.ready = 'true';
    });
}

start();
