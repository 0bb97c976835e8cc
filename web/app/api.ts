/** The public API, called with the user's token. Errors keep the API's {code, message, details}. */
import type {
  AcknowledgeResult,
  Channel,
  ChannelKind,
  ChannelTestResult,
  ConfirmResult,
  NotificationRecord,
  Preview,
  RecordDetail,
  RecordPage,
  RecordStatus,
  RejectResult,
  Settings,
} from './types';

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }

  /** The fields the API named (`body.webhookUrl` → `webhookUrl`), when it named any. */
  fieldErrors(): FieldError[] {
    if (!Array.isArray(this.details)) return [];
    return this.details
      .filter((d): d is FieldError => typeof d?.field === 'string' && typeof d?.message === 'string')
      .map((d) => ({ field: d.field.replace(/^(body|query|params)\./, ''), message: d.message }));
  }
}

export class Api {
  constructor(
    private readonly token: string,
    private readonly onUnauthorized: (error: ApiError) => void,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    // x-dueflow-client: the API records where a user answered (an anomaly acknowledged "on the page").
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json', 'x-dueflow-client': 'app' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
    } catch {
      throw new ApiError(0, 'network_error', 'dueflow could not be reached; check your connection and try again');
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) return json as T;
    const error = json?.error;
    const apiError = new ApiError(
      res.status,
      typeof error?.code === 'string' ? error.code : `http_${res.status}`,
      typeof error?.message === 'string' ? error.message : `dueflow answered HTTP ${res.status}`,
      error?.details ?? null,
    );
    if (res.status === 429) {
      const wait = res.headers.get('retry-after');
      if (wait) (apiError as { message: string }).message = `${apiError.message} (try again in ${wait} s)`;
    }
    if (res.status === 401) this.onUnauthorized(apiError);
    throw apiError;
  }

  channels = () => this.request<{ items: Channel[] }>('GET', '/api/v1/notification/channels').then((r) => r.items);
  saveChannel = (kind: ChannelKind, body: Record<string, unknown>) => this.request<Channel>('PUT', `/api/v1/notification/channels/${kind}`, body);
  deleteChannel = (kind: ChannelKind) => this.request<void>('DELETE', `/api/v1/notification/channels/${kind}`);
  testChannel = (kind: ChannelKind) => this.request<ChannelTestResult>('POST', `/api/v1/notification/channels/${kind}/test`);

  settings = () => this.request<Settings>('GET', '/api/v1/me/settings');
  saveSettings = (body: Record<string, unknown>) => this.request<Settings>('PUT', '/api/v1/me/settings', body);

  records = (opts: { status?: RecordStatus; limit?: number; cursor?: string | null } = {}) => {
    const q = new URLSearchParams({ limit: String(opts.limit ?? 20) });
    if (opts.status) q.set('status', opts.status);
    if (opts.cursor) q.set('cursor', opts.cursor);
    return this.request<RecordPage>('GET', `/api/v1/notification/records?${q}`);
  };
  record = (id: string) => this.request<RecordDetail>('GET', `/api/v1/notification/records/${encodeURIComponent(id)}`);

  acknowledge = (triggerId: string) => this.request<AcknowledgeResult>('POST', `/api/v1/anomalies/${encodeURIComponent(triggerId)}/acknowledge`);

  preview = (id: string) => this.request<Preview>('GET', `/api/v1/active-schedule/previews/${encodeURIComponent(id)}`);
  confirmPreview = (id: string) => this.request<ConfirmResult>('POST', `/api/v1/active-schedule/previews/${encodeURIComponent(id)}/confirm`);
  rejectPreview = (id: string) => this.request<RejectResult>('POST', `/api/v1/active-schedule/previews/${encodeURIComponent(id)}/reject`);
}

/** Answers whose message is written for operators, said for the people who use the page. */
const plainWords: Record<string, string> = {
  feishu_app_off:
    'This dueflow has no Feishu app configured, so it cannot send you direct messages from an app bot. Use a group bot or a Flow webhook instead, or ask the people who run dueflow to set up the app.',
  channel_disabled: 'This channel is disabled: enable it and save it to send a test message.',
};

/** An error as the page shows it: in plain words when we have them, else the API's message and code. */
export function describeError(err: unknown): string {
  if (!(err instanceof ApiError)) return String(err);
  return plainWords[err.code] ?? `${err.message} (${err.code})`;
}

export type { NotificationRecord };
