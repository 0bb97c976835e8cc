/**
 * The one place dueflow reads its environment. Parsed once with zod at start; a missing or bad
 * variable stops the process with one line per variable. Development defaults fill the gaps
 * only outside production, so a production dyno never starts half-configured.
 */
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const secretsKey = z.string().refine((v) => Buffer.from(v, 'base64').length === 32 && /^[A-Za-z0-9+/]+=*$/.test(v), {
  message: 'must be 32 random bytes, base64-encoded (make one with: openssl rand -base64 32)',
});

const redisUrl = z.string().refine((v) => /^rediss?:\/\/.+/.test(v), { message: 'must be a redis:// or rediss:// URL' });
const mongoUri = z.string().refine((v) => /^mongodb(\+srv)?:\/\/.+/.test(v), { message: 'must be a mongodb:// or mongodb+srv:// URI' });
const httpUrl = z.string().refine((v) => /^https?:\/\/[^/]+/.test(v), { message: 'must be an http(s) URL' });

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']),
  DUEFLOW_MODE: z.enum(['api', 'worker', 'all']),
  PORT: int(0, 65535),
  REDIS_URL: redisUrl,
  /** Key prefix of every queue; hash-tagged so all of dueflow's keys live in one Redis Cluster slot. */
  QUEUE_PREFIX: z.string().regex(/^\{[^{}]+\}$/, 'must be hash-tagged, like {dueflow}'),
  /** Accept self-signed certificates on rediss:// (Heroku Redis uses them). */
  REDIS_TLS_REJECT_UNAUTHORIZED: bool,
  MONGODB_URI: mongoUri,
  /** Whether the store applies a guarded update atomically (MongoDB) or needs a Redis lock around it (FerretDB v1); auto asks the server. */
  STORE_GUARDED_UPDATES: z.enum(['auto', 'atomic', 'locked']),
  /** Database name; overrides the one in MONGODB_URI (tests give each file its own). */
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,63}$/, 'letters, digits, _ and - only')
    .optional(),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters'),
  SERVICE_TOKEN: z.string().min(24, 'must be at least 24 characters'),
  ADMIN_USER: z.string().min(1),
  ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters'),
  SECRETS_KEY: secretsKey,
  PUBLIC_BASE_URL: httpUrl,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** Largest JSON body the API accepts. */
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/, 'like 100kb'),
  /** Largest body of POST /api/v1/sync (up to 500 items). */
  SYNC_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/, 'like 2mb'),
  /** Time a SIGTERM gives active jobs and requests before the process exits anyway (Heroku kills at 30 s). */
  SHUTDOWN_TIMEOUT_MS: int(1000, 28_000),
  WORKER_CONCURRENCY: int(1, 1000),
  NOTIFY_ATTEMPTS: int(1, 50),
  NOTIFY_BACKOFF_MS: int(1, 86_400_000),
  NOTIFY_BACKOFF_MAX_MS: int(1, 86_400_000),
  /** Finished notification jobs stay this long, so Bull Board can show and replay them. */
  JOB_RETENTION_SECONDS: int(60, 90 * 86_400),
  FEISHU_TIMEOUT_MS: int(100, 60_000),
  FEISHU_RATE_PER_SECOND: int(1, 1000),
  FEISHU_RATE_PER_MINUTE: int(1, 60_000),
  WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[a-z0-9.-]+$/, 'comma-separated host names')).min(1)),
  WEBHOOK_ALLOW_LOOPBACK: bool,
  /** How often the reconciler compares MongoDB (the truth) with Redis (the transport) and repairs. */
  RECONCILE_INTERVAL_MS: int(1000, 3_600_000),
  /** Requests per minute one user may make to the API (all web dynos together). */
  USER_RATE_LIMIT_PER_MINUTE: int(1, 1_000_000),
  /** Requests per minute one service token may make. */
  SERVICE_RATE_LIMIT_PER_MINUTE: int(1, 10_000_000),
  /** Failed Bull Board logins per client address per 15 minutes before it is locked out for 15 minutes. */
  ADMIN_LOGIN_ATTEMPTS: int(1, 1000),
  /** How often the due-job scanner runs (a BullMQ Job Scheduler in worker mode). */
  SCAN_INTERVAL_MS: int(50, 3_600_000),
  /** Due jobs one scan claims per batch (a run takes a few batches at most). */
  SCAN_BATCH_SIZE: int(1, 10_000),
  /** A claimed due job not finished within this is taken back by the next scan. */
  DUE_JOB_LEASE_MS: int(1000, 86_400_000),
  /** How long a schedule preview waits for the user's confirmation. */
  PREVIEW_TTL_MS: int(1000, 7 * 86_400_000),
  /** An unconfirmed important_urgent_task preview is re-notified once when it expires within this; 0 disables. */
  PREVIEW_RENOTIFY_BEFORE_MS: int(0, 7 * 86_400_000),
  /** A planned block whose end passed more than this ago, not marked done, is a missed block (detectors/missedBlock.ts). */
  MISSED_BLOCK_GRACE_MS: int(0, 86_400_000),
  /**
   * The detectors (detectors/index.ts) run at most once per this interval across all worker
   * processes (a Redis key), after a scan; 0 runs them after every scan.
   */
  DETECTOR_INTERVAL_MS: int(0, 3_600_000),
  /** A reminder occurrence claimed later than this after its time is skipped (missed_beyond_catchup), not sent (reminders/fire.ts). */
  REMINDER_CATCHUP_MS: int(1000, 30 * 86_400_000),
  /** The shortest time a recurring reminder's cron may leave between two occurrences. */
  REMINDER_MIN_INTERVAL_MS: int(1000, 86_400_000),
  /** A todo task whose deadline is within this is checked for enough free working time before it (detectors/deadlineRisk.ts). */
  DEADLINE_RISK_HORIZON_MS: int(3_600_000, 31 * 86_400_000),
  /** Anomaly messages one user gets within DIGEST_WINDOW_MS before the rest are grouped into digests (notifications/digest.ts); 0 disables. */
  DIGEST_THRESHOLD: int(0, 1000),
  DIGEST_WINDOW_MS: int(1000, 86_400_000),
  /** How long a non-critical anomaly waits before it is sent, so a burst arriving together becomes one digest. */
  DIGEST_HOLD_MS: int(0, 3_600_000),
  /** In a flood, at most one digest per this interval. */
  DIGEST_INTERVAL_MS: int(1000, 86_400_000),
  /** The host product's Feishu/Lark app (feishu_app channels and card callbacks); unset: the app channel is off. */
  FEISHU_APP_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - (like cli_a1b2c3d4e5f6)')
    .optional(),
  FEISHU_APP_SECRET: z.string().min(8, 'must be at least 8 characters').max(256).optional(),
  /** Card callbacks are refused without it: it keys their signature and their encryption. */
  FEISHU_ENCRYPT_KEY: z.string().min(8, 'must be at least 8 characters').max(256).optional(),
  /** When set, a callback's `token` must equal it (Feishu's older check, beside the signature). */
  FEISHU_VERIFICATION_TOKEN: z.string().min(8, 'must be at least 8 characters').max(256).optional(),
  /** https://open.feishu.cn (Feishu) or https://open.larksuite.com (Lark). */
  FEISHU_API_BASE: z.string().regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be a base URL without a path, like https://open.feishu.cn'),
  /** Feishu's limits of one app: 50 requests per second, 1000 per minute; 5 per second to one user or chat. */
  FEISHU_APP_RATE_PER_SECOND: int(1, 1000),
  FEISHU_APP_RATE_PER_MINUTE: int(1, 60_000),
  FEISHU_APP_RECIPIENT_RATE_PER_SECOND: int(1, 100),
  /** Of the app's per-second limit, what urgent sends (critical anomalies, test sends) keep to themselves, so a burst of reminders never holds them up. */
  FEISHU_APP_URGENT_PER_SECOND: int(1, 999),
  /** Users whose settings and channels each process keeps in memory (settings/cache.ts; dropped on every change, announced over Redis); 0: read them every time. */
  USER_CACHE_SIZE: int(0, 1_000_000),
  /** The least time between two runs of a worker's relay of records' end events (notification.sent, ...) while its deliveries keep ending; idle, it runs none. */
  EVENT_RELAY_INTERVAL_MS: int(100, 60_000),
  /** Webhook events to the host product (events/): attempts per delivery before it is dead, and the backoff between them (doubling, with jitter). */
  EVENT_ATTEMPTS: int(1, 50),
  EVENT_BACKOFF_MS: int(1, 86_400_000),
  EVENT_BACKOFF_MAX_MS: int(1, 86_400_000),
  /** An endpoint must answer 2xx within this, or the attempt failed. */
  EVENT_TIMEOUT_MS: int(100, 60_000),
  /** Hosts webhook endpoints may use (exact names, or *.example.com); empty: any public host. */
  EVENT_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^(\*\.)?[a-z0-9.-]+$/, 'comma-separated host names (or *.example.com)'))),
  /** Requests in flight to one endpoint, across all workers; a slow endpoint holds at most this many worker slots. */
  EVENT_ENDPOINT_CONCURRENCY: int(1, 100),
  EVENT_WORKER_CONCURRENCY: int(1, 1000),
  /** Events, and their deliveries, are purged after this many days. */
  EVENT_RETENTION_DAYS: int(1, 3650),
  /**
   * GET /api/v1/events holds back events younger than this: ObjectIds made by two processes in one
   * second are not ordered by time, so a cursor could otherwise step over an event written a moment late.
   */
  EVENT_PULL_SETTLE_MS: int(0, 60_000),
});

export type Config = z.infer<typeof configSchema>;

/** Rules between variables: each issue names the variable to fix. */
function crossFieldRules(c: Config, ctx: z.RefinementCtx): void {
  if (c.FEISHU_APP_ID && !c.FEISHU_APP_SECRET) ctx.addIssue({ code: 'custom', path: ['FEISHU_APP_SECRET'], message: 'required when FEISHU_APP_ID is set' });
  if (c.FEISHU_APP_URGENT_PER_SECOND >= c.FEISHU_APP_RATE_PER_SECOND)
    ctx.addIssue({ code: 'custom', path: ['FEISHU_APP_URGENT_PER_SECOND'], message: 'must be below FEISHU_APP_RATE_PER_SECOND' });
  const base = new URL(c.FEISHU_API_BASE);
  const loopback = base.protocol === 'http:' && base.hostname === '127.0.0.1';
  if (base.protocol !== 'https:' && !(loopback && c.WEBHOOK_ALLOW_LOOPBACK)) {
    ctx.addIssue({ code: 'custom', path: ['FEISHU_API_BASE'], message: 'must use https (http://127.0.0.1:<port> only with WEBHOOK_ALLOW_LOOPBACK=true)' });
  }
}

/** Whether the app channel is on: the app id and secret are set. */
export const feishuAppEnabled = (c: Pick<Config, 'FEISHU_APP_ID' | 'FEISHU_APP_SECRET'>): boolean => Boolean(c.FEISHU_APP_ID && c.FEISHU_APP_SECRET);

/** Values that are safe everywhere. */
const defaults: Record<string, string> = {
  NODE_ENV: 'development',
  DUEFLOW_MODE: 'all',
  PORT: '3000',
  STORE_GUARDED_UPDATES: 'auto',
  QUEUE_PREFIX: '{dueflow}',
  REDIS_TLS_REJECT_UNAUTHORIZED: 'false',
  LOG_LEVEL: 'info',
  BODY_LIMIT: '100kb',
  SYNC_BODY_LIMIT: '2mb',
  SHUTDOWN_TIMEOUT_MS: '20000',
  WORKER_CONCURRENCY: '50',
  NOTIFY_ATTEMPTS: '5',
  NOTIFY_BACKOFF_MS: '30000',
  NOTIFY_BACKOFF_MAX_MS: '1800000',
  JOB_RETENTION_SECONDS: String(7 * 86_400),
  FEISHU_TIMEOUT_MS: '5000',
  FEISHU_RATE_PER_SECOND: '5',
  FEISHU_RATE_PER_MINUTE: '100',
  WEBHOOK_ALLOWED_HOSTS: 'open.feishu.cn,open.larksuite.com,www.feishu.cn,feishu.cn',
  WEBHOOK_ALLOW_LOOPBACK: 'false',
  RECONCILE_INTERVAL_MS: '30000',
  USER_RATE_LIMIT_PER_MINUTE: '600',
  SERVICE_RATE_LIMIT_PER_MINUTE: '60000',
  ADMIN_LOGIN_ATTEMPTS: '10',
  SCAN_INTERVAL_MS: '5000',
  SCAN_BATCH_SIZE: '500',
  DUE_JOB_LEASE_MS: '60000',
  PREVIEW_TTL_MS: '3600000',
  PREVIEW_RENOTIFY_BEFORE_MS: '900000',
  MISSED_BLOCK_GRACE_MS: '900000',
  DETECTOR_INTERVAL_MS: '30000',
  REMINDER_CATCHUP_MS: String(24 * 3_600_000),
  REMINDER_MIN_INTERVAL_MS: '60000',
  DEADLINE_RISK_HORIZON_MS: String(7 * 86_400_000),
  DIGEST_THRESHOLD: '5',
  DIGEST_WINDOW_MS: '600000',
  DIGEST_HOLD_MS: '30000',
  DIGEST_INTERVAL_MS: '300000',
  FEISHU_API_BASE: 'https://open.feishu.cn',
  FEISHU_APP_RATE_PER_SECOND: '50',
  FEISHU_APP_RATE_PER_MINUTE: '1000',
  FEISHU_APP_RECIPIENT_RATE_PER_SECOND: '5',
  FEISHU_APP_URGENT_PER_SECOND: '10',
  USER_CACHE_SIZE: '10000',
  EVENT_RELAY_INTERVAL_MS: '1000',
  EVENT_ATTEMPTS: '12',
  EVENT_BACKOFF_MS: '5000',
  EVENT_BACKOFF_MAX_MS: '3600000',
  EVENT_TIMEOUT_MS: '10000',
  EVENT_ALLOWED_HOSTS: '',
  EVENT_ENDPOINT_CONCURRENCY: '4',
  EVENT_WORKER_CONCURRENCY: '50',
  EVENT_RETENTION_DAYS: '30',
  EVENT_PULL_SETTLE_MS: '2000',
};

/** Values for local use only: never applied when NODE_ENV=production. */
const developmentDefaults: Record<string, string> = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  MONGODB_URI: 'mongodb://127.0.0.1:27017/dueflow',
  JWT_SECRET: 'dev-only-jwt-secret-change-me-0123456789',
  SERVICE_TOKEN: 'dev-only-service-token-0123456789',
  ADMIN_USER: 'admin',
  ADMIN_PASSWORD: 'dev-only-admin-password',
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  PUBLIC_BASE_URL: 'http://localhost:3000',
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const input: Record<string, string | undefined> = { ...defaults, ...(production ? {} : developmentDefaults) };
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = configSchema.superRefine(crossFieldRules).safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const missing = input[name] === undefined;
      return missing ? `${name}: required${production ? ' in production' : ''}` : `${name}: ${issue.message}`;
    });
    throw new ConfigError([...new Set(problems)]);
  }
  return parsed.data;
}
