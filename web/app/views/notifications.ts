/**
 * My recent notifications: status, when, the message, and each record's history (loaded when
 * opened), escalation steps included. An anomaly not acknowledged yet has Acknowledge, which stops
 * its escalation.
 */
import type { Api } from '../api';
import { ApiError, describeError } from '../api';
import { h, replaceChildren, safeHref } from '../dom';
import { busy, select } from '../forms';
import { channelLabels, formatDateTime, formatMoment, statusLabels } from '../format';
import { recordStatuses, type HistoryEntry, type NotificationRecord, type RecordStatus } from '../types';

const historyLabels: Record<string, string> = {
  requested: 'requested',
  attempt: 'attempt',
  digested: 'folded into a digest',
  repaired: 'repaired',
  rate_limited: 'rate limited by Feishu',
  deferred: 'held for quiet hours',
  dead: 'gave up',
  replay: 'replayed',
  skipped: 'skipped',
  replied: 'answered on the card',
};

const acknowledgedPlaces: Record<string, string> = {
  app: 'Acknowledged on this page',
  feishu: 'Acknowledged in Feishu',
  api: 'Acknowledged (through another app)',
};

/** An escalation step in words: what dueflow did because nobody acknowledged the alert. */
function escalationWords(e: HistoryEntry): string {
  const reason = e.detail ? `: ${e.detail}` : '';
  if (e.code === 'buzz') {
    if (e.outcome === 'done') return 'Not acknowledged in time: dueflow buzzed you in Feishu';
    if (e.outcome === 'skipped') return `Not acknowledged in time; buzzing was skipped${reason}`;
    return `Not acknowledged in time; buzzing you failed${reason}`;
  }
  if (e.code === 'fallback') {
    if (e.outcome === 'done') {
      // The detail names the channel's kind ("sent to feishu_bot"): said with its label.
      const kind = Object.keys(channelLabels).find((k) => e.detail?.endsWith(k));
      return `Still not acknowledged: sent to your fallback channel${kind ? ` (${channelLabels[kind]})` : ''}`;
    }
    if (e.outcome === 'skipped') return `Still not acknowledged; sending to a fallback channel was skipped${reason}`;
    return `Still not acknowledged; sending to your fallback channel failed${reason}`;
  }
  return `Escalated${e.code ? ` (${e.code})` : ''}${e.outcome ? `: ${e.outcome}` : ''}${reason}`;
}

export function notificationsView(api: Api, onRecords: (records: NotificationRecord[]) => void): { element: HTMLElement; load(): Promise<void> } {
  const filter = select([['', 'All'], ...recordStatuses.map((s) => [s, s] as [string, string])], '', { name: 'status', id: 'records-status' });
  const refresh = h('button', { type: 'button' }, 'Refresh');
  const list = h('ol', { className: 'records', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older');
  const error = h('p', { className: 'form-error', role: 'alert', hidden: true });
  const element = h(
    'section',
    { id: 'notifications', className: 'card', 'aria-labelledby': 'notifications-title' },
    h(
      'div',
      { className: 'section-head' },
      h('h2', { id: 'notifications-title' }, 'My recent notifications'),
      h('div', { className: 'toolbar' }, h('label', { for: 'records-status' }, 'Status'), filter, refresh),
    ),
    error,
    list,
    more,
  );
  let cursor: string | null = null;
  /** The Acknowledge buttons shown, by anomaly (trigger id). */
  const acknowledgers = new Map<string, Set<(at: string) => void>>();

  const fetchPage = async (reset: boolean) => {
    error.hidden = true;
    try {
      const page = await api.records({ status: (filter.value || undefined) as RecordStatus | undefined, cursor: reset ? null : cursor });
      if (reset) {
        replaceChildren(list);
        acknowledgers.clear();
      }
      if (reset && page.items.length === 0)
        list.appendChild(h('li', { className: 'empty' }, filter.value ? `No ${filter.value} notifications.` : 'No notifications yet.'));
      for (const r of page.items) list.appendChild(recordItem(r));
      cursor = page.nextCursor;
      more.hidden = !cursor;
      onRecords(page.items);
    } catch (err) {
      error.textContent = err instanceof ApiError ? `Could not load notifications: ${err.message}` : String(err);
      error.hidden = false;
    }
  };

  filter.addEventListener('change', () => void busy(refresh, () => fetchPage(true)));
  refresh.addEventListener('click', () => void busy(refresh, () => fetchPage(true)));
  more.addEventListener('click', () => void busy(more, () => fetchPage(false)));

  function recordItem(r: NotificationRecord): HTMLLIElement {
    const when = r.sentAt ?? r.createdAt;
    const link = safeHref(r.message.actionUrl);
    const problem =
      r.status === 'skipped'
        ? `Skipped: ${r.statusReason ?? 'no reason given'}`
        : r.lastError || r.lastErrorCode
          ? `${r.status === 'dead' ? 'Gave up' : 'Last error'}: ${[r.lastErrorCode, r.lastError].filter(Boolean).join(' — ')}${r.status === 'failed' && r.nextRetryAt ? `; next try ${formatDateTime(r.nextRetryAt)}` : ''}`
          : r.deferredUntil && r.status === 'pending'
            ? `Held for quiet hours until ${formatDateTime(r.deferredUntil)}`
            : null;
    const digestNote =
      r.status === 'digested' && r.digestId
        ? `Sent inside digest ${r.digestId}, with other alerts of the same moment.`
        : r.digestOf?.length
          ? `A digest of ${r.digestOf.length} alerts.`
          : null;
    const anomaly = r.replyKind === 'anomaly';
    const history = h(
      'details',
      { className: 'history' },
      h('summary', {}, `${anomaly ? 'History' : 'Attempt history'} (${r.attemptCount} of ${r.maxAttempts} attempts)`),
    );
    const body = h('div', { className: 'history-body' });
    history.appendChild(body);
    let loaded = false;
    const loadHistory = () => {
      loaded = true;
      replaceChildren(body, h('p', { className: 'hint' }, 'Loading…'));
      api.record(r.id).then(
        (detail) => replaceChildren(body, historyList(detail.history)),
        (err) => {
          loaded = false;
          replaceChildren(body, h('p', { className: 'form-error' }, err instanceof ApiError ? err.message : String(err)));
        },
      );
    };
    history.addEventListener('toggle', () => {
      if (history.open && !loaded) loadHistory();
    });
    const critical = r.severity === 'critical';
    const item = h(
      'li',
      { className: `record${critical ? ' record-critical' : ''}`, 'data-record-id': r.id, 'data-status': r.status },
      h(
        'div',
        { className: 'record-head' },
        h('span', { className: `badge badge-${r.status}`, title: statusLabels[r.status] ?? r.status }, r.status),
        critical ? h('span', { className: 'badge badge-critical', 'data-severity': 'critical', title: 'A critical alert' }, '⚠ critical') : null,
        h('time', { dateTime: when }, formatDateTime(when)),
        h('span', { className: 'muted' }, channelLabels[r.channel] ?? r.channel),
      ),
      h('h3', { className: 'record-title' }, r.message.title),
      h('p', { className: 'record-summary' }, r.message.summary),
      link ? h('p', {}, h('a', { href: link, rel: 'noopener noreferrer' }, r.message.actionText ?? 'Open')) : null,
      problem ? h('p', { className: 'record-problem' }, problem) : null,
      digestNote ? h('p', { className: 'muted record-digest' }, digestNote) : null,
      anomaly && r.triggerId
        ? acknowledgement(r, r.triggerId, (at) => {
            item.dataset.acknowledged = at;
            // The history gained an entry: read it again when it is (or next gets) opened.
            if (history.open) loadHistory();
            else loaded = false;
          })
        : null,
      history,
    );
    if (anomaly && r.acknowledgedAt) item.dataset.acknowledged = r.acknowledgedAt;
    return item;
  }

  /** "Acknowledged at 09:12", or the Acknowledge button that gets there. */
  function acknowledgement(r: NotificationRecord, triggerId: string, onAcknowledged: (at: string) => void): HTMLElement {
    const host = h('div', { className: 'record-ack' });
    const done = (at: string) => {
      replaceChildren(
        host,
        h('p', { className: 'acknowledged', role: 'status' }, '✓ Acknowledged at ', h('time', { dateTime: at, title: formatDateTime(at) }, formatMoment(at))),
      );
    };
    if (r.acknowledgedAt) {
      done(r.acknowledgedAt);
      return host;
    }
    // Every record of the anomaly (its fallback copy too) is acknowledged with it.
    const listeners = acknowledgers.get(triggerId) ?? new Set();
    acknowledgers.set(triggerId, listeners);
    const finish = (at: string) => {
      listeners.delete(finish);
      done(at);
      onAcknowledged(at);
    };
    listeners.add(finish);
    const button = h('button', { type: 'button', className: 'primary', 'data-action': 'acknowledge' }, 'Acknowledge');
    const error = h('p', { className: 'form-error', role: 'alert', hidden: true });
    button.addEventListener(
      'click',
      () =>
        void busy(button, async () => {
          error.hidden = true;
          let at: string | undefined;
          try {
            at = (await api.acknowledge(triggerId)).acknowledgedAt;
          } catch (err) {
            // Acknowledged elsewhere meanwhile (on the card in Feishu): the same outcome for the user.
            const details = err instanceof ApiError && err.code === 'already_acknowledged' ? (err.details as { acknowledgedAt?: unknown } | null) : null;
            if (details) at = typeof details.acknowledgedAt === 'string' ? details.acknowledgedAt : new Date().toISOString();
            else {
              error.textContent = `Could not acknowledge: ${describeError(err)}`;
              error.hidden = false;
              return;
            }
          }
          for (const listener of [...listeners]) listener(at);
        }),
    );
    replaceChildren(
      host,
      h(
        'div',
        { className: 'actions' },
        button,
        h(
          'span',
          { className: 'hint' },
          r.severity === 'critical' ? 'Tell dueflow you have seen it: it stops reminding you and stops escalating.' : 'Tell dueflow you have seen it.',
        ),
      ),
      error,
    );
    return host;
  }

  return { element, load: () => fetchPage(true) };
}

function historyList(entries: HistoryEntry[]): HTMLElement {
  if (entries.length === 0) return h('p', { className: 'hint' }, 'Nothing happened yet.');
  return h(
    'ol',
    { className: 'history-list' },
    ...entries.map((e) => {
      const time = h('time', { dateTime: e.at }, formatDateTime(e.at));
      // Escalation and acknowledgement are said in words; their codes are not for people.
      if (e.event === 'escalated' || e.event === 'acknowledged') {
        const words = e.event === 'escalated' ? escalationWords(e) : (acknowledgedPlaces[e.code ?? ''] ?? 'Acknowledged');
        return h(
          'li',
          {
            'data-event': e.event,
            'data-code': e.code ?? null,
            'data-outcome': e.outcome ?? null,
            className: `history-${e.event}${e.outcome === 'failed' ? ' history-failed' : ''}`,
          },
          time,
          ' ',
          h('strong', {}, words),
        );
      }
      const facts = [
        e.attempt !== undefined ? `attempt ${e.attempt}` : null,
        e.outcome,
        e.code,
        e.httpStatus !== undefined ? `HTTP ${e.httpStatus}` : null,
        e.durationMs !== undefined ? `${e.durationMs} ms` : null,
        e.until ? `until ${formatDateTime(e.until)}` : null,
      ]
        .filter(Boolean)
        .join(' · ');
      return h(
        'li',
        { 'data-event': e.event },
        time,
        ' ',
        h('strong', {}, historyLabels[e.event] ?? e.event),
        facts ? h('span', { className: 'muted' }, ` ${facts}`) : null,
        e.detail ? h('span', { className: 'history-detail' }, e.detail) : null,
      );
    }),
  );
}
