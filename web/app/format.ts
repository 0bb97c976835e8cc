/** Dates in the user's time zone (from their settings; the browser's until they are loaded) and the page's labels. */

export const prefs = {
  timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
};

function formatter(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone });
  } catch {
    return new Intl.DateTimeFormat(undefined, { ...options, timeZone: 'UTC' });
  }
}

export function formatDateTime(iso: string | null | undefined, timeZone = prefs.timeZone): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return formatter(timeZone, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
}

/** "Tue, 14 May, 14:00 – 15:00" (the end's date only when it differs). */
export function formatSlot(start: string | null, end: string | null, timeZone = prefs.timeZone): string {
  if (!start) return '';
  const s = new Date(start);
  const e = end ? new Date(end) : null;
  const day = formatter(timeZone, { weekday: 'short', month: 'short', day: 'numeric' });
  const time = formatter(timeZone, { hour: '2-digit', minute: '2-digit' });
  if (!e) return `${day.format(s)}, ${time.format(s)}`;
  const sameDay = day.format(s) === day.format(e);
  return `${day.format(s)}, ${time.format(s)} – ${sameDay ? '' : `${day.format(e)}, `}${time.format(e)}`;
}

/** "09:12" when it is today on the user's clock, else "14 May, 09:12": for moments the user just made. */
export function formatMoment(iso: string | null | undefined, timeZone = prefs.timeZone): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const day = formatter(timeZone, { year: 'numeric', month: 'short', day: 'numeric' });
  const time = formatter(timeZone, { hour: '2-digit', minute: '2-digit' }).format(date);
  if (day.format(date) === day.format(new Date())) return time;
  return `${formatter(timeZone, { month: 'short', day: 'numeric' }).format(date)}, ${time}`;
}

export const triggerTypeLabels: Record<string, string> = {
  important_urgent_task: 'Important and urgent tasks not in my schedule',
  unfinished_feedback: 'Blocks I reported unfinished',
  missed_block: 'Schedule blocks I missed',
};

/** In the order the page offers them. */
export const channelLabels: Record<string, string> = {
  feishu_bot: 'Feishu / Lark group bot',
  feishu_app: 'Feishu / Lark app (direct messages)',
  feishu: 'Feishu Flow webhook',
};

export const receiveIdTypeLabels: Record<string, string> = {
  open_id: 'Open ID (ou_…)',
  union_id: 'Union ID (on_…)',
  user_id: 'User ID',
  email: 'Email',
};

export const statusLabels: Record<string, string> = {
  pending: 'pending',
  sending: 'sending',
  sent: 'sent',
  skipped: 'skipped',
  failed: 'failed (will retry)',
  dead: 'dead',
  digested: 'sent inside a digest',
  ready: 'waiting for you',
  confirming: 'confirming',
  confirmed: 'confirmed',
  rejected: 'rejected',
  expired: 'expired',
};
