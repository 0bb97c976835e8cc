/** My recent notifications: status, when, the message, and each record's attempt history (loaded when opened). */
import { Api, ApiError } from '../api';
import { h, replaceChildren, safeHref } from '../dom';
import { busy, select } from '../forms';
import { channelLabels, formatDateTime, statusLabels } from '../format';
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
};

export function notificationsView(api: Api, onRecords: (records: NotificationRecord[]) => void): { element: HTMLElement; load(): Promise<void> } {
  const filter = select([['', 'All'], ...recordStatuses.map((s) => [s, s] as [string, string])], '', { name: 'status', id: 'records-status' });
  const refresh = h('button', { type: 'button' }, 'Refresh');
  const list = h('ol', { className: 'records', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older');
  const error = h('p', { className: 'form-error', role: 'alert', hidden: true });
  const element = h('section', { id: 'notifications', className: 'card', 'aria-labelledby': 'notifications-title' },
    h('div', { className: 'section-head' },
      h('h2', { id: 'notifications-title' }, 'My recent notifications'),
      h('div', { className: 'toolbar' }, h('label', { for: 'records-status' }, 'Status'), filter, refresh)),
    error, list, more);
  let cursor: string | null = null;

  const fetchPage = async (reset: boolean) => {
    error.hidden = true;
    try {
      const page = await api.records({ status: (filter.value || undefined) as RecordStatus | undefined, cursor: reset ? null : cursor });
      if (reset) replaceChildren(list);
      if (reset && page.items.length === 0) list.appendChild(h('li', { className: 'empty' }, filter.value ? `No ${filter.value} notifications.` : 'No notifications yet.'));
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
    const problem = r.status === 'skipped' ? `Skipped: ${r.statusReason ?? 'no reason given'}`
      : r.lastError || r.lastErrorCode ? `${r.status === 'dead' ? 'Gave up' : 'Last error'}: ${[r.lastErrorCode, r.lastError].filter(Boolean).join(' — ')}${r.status === 'failed' && r.nextRetryAt ? `; next try ${formatDateTime(r.nextRetryAt)}` : ''}`
      : r.deferredUntil && r.status === 'pending' ? `Held for quiet hours until ${formatDateTime(r.deferredUntil)}`
      : null;
    const digestNote = r.status === 'digested' && r.digestId ? `Sent inside digest ${r.digestId}, with other alerts of the same moment.`
      : r.digestOf?.length ? `A digest of ${r.digestOf.length} alerts.`
      : null;
    const history = h('details', { className: 'history' }, h('summary', {}, `Attempt history (${r.attemptCount} of ${r.maxAttempts} attempts)`));
    let loaded = false;
    history.addEventListener('toggle', () => {
      if (!history.open || loaded) return;
      loaded = true;
      const body = h('div', { className: 'history-body' }, h('p', { className: 'hint' }, 'Loading…'));
      history.appendChild(body);
      api.record(r.id).then(
        (detail) => replaceChildren(body, historyList(detail.history)),
        (err) => { loaded = false; replaceChildren(body, h('p', { className: 'form-error' }, err instanceof ApiError ? err.message : String(err))); },
      );
    });
    return h('li', { className: 'record', 'data-record-id': r.id, 'data-status': r.status },
      h('div', { className: 'record-head' },
        h('span', { className: `badge badge-${r.status}`, title: statusLabels[r.status] ?? r.status }, r.status),
        h('time', { dateTime: when }, formatDateTime(when)),
        h('span', { className: 'muted' }, channelLabels[r.channel] ?? r.channel)),
      h('h3', { className: 'record-title' }, r.message.title),
      h('p', { className: 'record-summary' }, r.message.summary),
      link ? h('p', {}, h('a', { href: link, rel: 'noopener noreferrer' }, r.message.actionText ?? 'Open')) : null,
      problem ? h('p', { className: 'record-problem' }, problem) : null,
      digestNote ? h('p', { className: 'muted record-digest' }, digestNote) : null,
      history);
  }

  return { element, load: () => fetchPage(true) };
}

function historyList(entries: HistoryEntry[]): HTMLElement {
  if (entries.length === 0) return h('p', { className: 'hint' }, 'Nothing happened yet.');
  return h('ol', { className: 'history-list' }, ...entries.map((e) => {
    const facts = [
      e.attempt !== undefined ? `attempt ${e.attempt}` : null,
      e.outcome,
      e.code,
      e.httpStatus !== undefined ? `HTTP ${e.httpStatus}` : null,
      e.durationMs !== undefined ? `${e.durationMs} ms` : null,
      e.until ? `until ${formatDateTime(e.until)}` : null,
    ].filter(Boolean).join(' · ');
    return h('li', { 'data-event': e.event },
      h('time', { dateTime: e.at }, formatDateTime(e.at)), ' ',
      h('strong', {}, historyLabels[e.event] ?? e.event),
      facts ? h('span', { className: 'muted' }, ` ${facts}`) : null,
      e.detail ? h('span', { className: 'history-detail' }, e.detail) : null);
  }));
}
