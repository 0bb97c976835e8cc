/** Structured JSON logs (pino). Secrets are redacted by key wherever they appear. */
import type { Logger } from 'pino';
import pino from 'pino';

export type { Logger };

export const redactedKeys = [
  'authorization',
  'password',
  'token',
  'bearerToken',
  'signingSecret',
  'secret',
  'sign',
  'webhookUrl',
  'SECRETS_KEY',
  'JWT_SECRET',
  'SERVICE_TOKEN',
  'ADMIN_PASSWORD',
  'app_secret',
  'appSecret',
  'tenant_access_token',
  'tenantAccessToken',
  'encrypt',
  'encryptKey',
  'FEISHU_APP_SECRET',
  'FEISHU_ENCRYPT_KEY',
  'FEISHU_VERIFICATION_TOKEN',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const paths = redactedKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]).concat(['req.headers.authorization', 'req.headers.cookie']);
  return pino(
    {
      level,
      base: { pid: process.pid, service: 'dueflow' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths, censor: '[redacted]' },
    },
    destination,
  );
}
