/**
 * Each test file gets its own database and its own queue prefix, so files run in parallel on the
 * same services and leave nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from '../../src/config';
import { loadConfig } from '../../src/config';

export const testSecrets = {
  JWT_SECRET: 'test-jwt-secret-0123456789abcdef0123456789',
  SERVICE_TOKEN: 'test-service-token-0123456789abcdef',
  ADMIN_USER: 'operator',
  ADMIN_PASSWORD: 'test-admin-password',
  SECRETS_KEY: Buffer.alloc(32, 42).toString('base64'),
};

/** Environment variables for a dueflow under test (in this process or a child process). */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const id = randomBytes(4).toString('hex');
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    MONGODB_URI: process.env.TEST_MONGODB_URI ?? 'mongodb://127.0.0.1:27017/',
    MONGODB_DB: `t_${id}`,
    QUEUE_PREFIX: `{t-${id}}`,
    PUBLIC_BASE_URL: 'http://dueflow.test',
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    // Anomalies go out at once, one message each; test/digest.test.ts turns grouping on.
    DIGEST_THRESHOLD: '0',
    DIGEST_HOLD_MS: '0',
    // The detectors run after every scan (the default spaces them 30 s apart, across processes);
    // test/detectors.interval.test.ts checks the interval.
    DETECTOR_INTERVAL_MS: '0',
    ...testSecrets,
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}

export function userToken(userId: string, secret = testSecrets.JWT_SECRET, expiresIn = '1h'): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** Resolves when check() returns a truthy value; polls briefly, fails with the last value. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs = 15_000, what = 'condition'): Promise<Exclude<T, undefined | null | false | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last as Exclude<T, undefined | null | false | 0 | ''>;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
}
