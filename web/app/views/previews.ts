/**
 * Suggestions waiting for an answer (Confirm puts the slot in my schedule, Reject changes nothing).
 * There is no list of previews in the API: they are found through my recent notifications, plus the
 * one a message linked to (/app/previews/<id>), which is shown first whatever its state.
 */
import type { Api } from '../api';
import { ApiError } from '../api';
import { h, replaceChildren } from '../dom';
import { busy } from '../forms';
import { formatDateTime, formatSlot, statusLabels } from '../format';
import type { NotificationRecord, Preview } from '../types';

/** How many recent previews are looked up: each is one request. */
const MAX_LOOKUPS = 10;

export function previewsView(api: Api, focusId: string | null): { element: HTMLElement; load(records: NotificationRecord[]): Promise<void> } {
  const list = h('div', { className: 'preview-list', 'aria-live': 'polite' });
  const element = h(
    'section',
    { id: 'previews', className: 'card', 'aria-labelledby': 'previews-title' },
    h('h2', { id: 'previews-title' }, 'Suggestions waiting for me'),
    list,
  );

  const load = async (records: NotificationRecord[]) => {
    const ids = [...new Set(records.map((r) => r.previewId).filter((id): id is string => !!id && id !== focusId))].slice(0, MAX_LOOKUPS);
    const [focused, ...others] = await Promise.all([
      focusId ? api.preview(focusId).catch((err: unknown) => err) : Promise.resolve(null),
      ...ids.map((id) => api.preview(id).catch(() => null)),
    ]);
    const cards: HTMLElement[] = [];
    if (focusId) cards.push(focused instanceof Error || !focused ? missingCard(focusId, focused) : previewCard(focused as Preview, true));
    for (const p of others) if (p && p.status === 'ready') cards.push(previewCard(p, false));
    replaceChildren(
      list,
      ...(cards.length ? cards : [h('p', { className: 'empty' }, 'Nothing waiting: when dueflow suggests a slot for a task, it shows up here.')]),
    );
    const target = list.querySelector<HTMLElement>('.preview.focused');
    if (target) {
      target.scrollIntoView({ block: 'start' });
      target.focus({ preventScroll: true });
    }
  };

  function missingCard(id: string, err: unknown): HTMLElement {
    const text =
      err instanceof ApiError && err.status === 404
        ? 'This suggestion was not found: it belongs to another account, or the link is wrong.'
        : `This suggestion could not be loaded: ${err instanceof ApiError ? err.message : String(err)}`;
    return h('article', { className: 'preview focused', tabindex: '-1', 'data-preview-id': id }, h('p', { className: 'form-error' }, text));
  }

  function previewCard(p: Preview, focused: boolean): HTMLElement {
    const status = h('span', { className: `badge badge-preview-${p.status}` }, statusLabels[p.status] ?? p.status);
    const result = h('p', { className: 'preview-result', role: 'status' });
    const error = h('p', { className: 'form-error', role: 'alert', hidden: true });
    const actions = h('div', { className: 'actions' });
    const zone = p.timeZone ?? undefined;
    const setStatus = (s: string) => {
      status.className = `badge badge-preview-${s}`;
      status.textContent = statusLabels[s] ?? s;
    };

    if (p.status === 'ready') {
      const confirmButton = h('button', { type: 'button', className: 'primary', 'data-action': 'confirm' }, 'Confirm');
      const rejectButton = h('button', { type: 'button', 'data-action': 'reject' }, 'Reject');
      const answer = (button: HTMLButtonElement, run: () => Promise<void>) =>
        busy(button, async () => {
          error.hidden = true;
          try {
            await run();
            actions.remove();
          } catch (err) {
            error.textContent = err instanceof ApiError ? describe(err, zone) : String(err);
            error.hidden = false;
          }
        });
      confirmButton.addEventListener(
        'click',
        () =>
          void answer(confirmButton, async () => {
            const r = await api.confirmPreview(p.id);
            setStatus(r.preview.status);
            result.textContent = r.block ? `Added to your schedule: ${r.block.title}, ${formatSlot(r.block.start, r.block.end, zone)}.` : 'Confirmed.';
            if (r.block) result.dataset.blockId = r.block.id;
          }),
      );
      rejectButton.addEventListener(
        'click',
        () =>
          void answer(rejectButton, async () => {
            const r = await api.rejectPreview(p.id);
            setStatus(r.preview.status);
            result.textContent = 'Rejected: nothing changes in your schedule.';
          }),
      );
      actions.append(confirmButton, rejectButton);
    } else if (p.status === 'confirmed') {
      result.textContent = p.confirmedAt ? `Confirmed ${formatDateTime(p.confirmedAt, zone)}.` : 'Confirmed.';
    }

    const slot = p.candidate.start ? formatSlot(p.candidate.start, p.candidate.end, zone) : null;
    return h(
      'article',
      { className: `preview${focused ? ' focused' : ''}`, tabindex: '-1', 'data-preview-id': p.id, 'data-status': p.status },
      h('header', {}, h('h3', {}, p.message?.title ?? p.candidate.title ?? 'A suggestion'), status),
      h('p', { className: 'preview-summary' }, p.message?.summary ?? p.summaryText),
      slot ? h('p', { className: 'preview-slot' }, h('strong', {}, 'Slot: '), slot) : null,
      p.candidate.reason ? h('p', { className: 'muted' }, p.candidate.reason) : null,
      p.status === 'ready' ? h('p', { className: 'muted' }, `Answer before ${formatDateTime(p.expiresAt, zone)}.`) : null,
      actions,
      error,
      result,
    );
  }

  return { element, load };
}

/** The API's 409s, in words; a conflict names the blocks in the way. */
function describe(err: ApiError, zone?: string): string {
  if (err.code === 'schedule_conflict' && err.details && typeof err.details === 'object') {
    const blocks = (err.details as { blocks?: Array<{ title: string; start: string; end: string }> }).blocks ?? [];
    const names = blocks.map((b) => `${b.title} (${formatSlot(b.start, b.end, zone)})`).join(', ');
    return `${err.message}${names ? `: ${names}` : ''}`;
  }
  return err.message;
}
