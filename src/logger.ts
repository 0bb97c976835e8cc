/** Structured JSON logs (pino). Secrets are redacted by key wherever they appear. */
import pino, { Logger } from 'pino';

export type { Logger };

export const redactedKeys = [
  'authorization', 'password', 'token', 'bearerToken', 'signingSecret', 'secret', 'sign',
  'webhookUrl', 'SECRETS_KEY', 'JWT_SECRET', 'SERVICE_TOKEN', 'ADMIN_PASSWORD',
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
