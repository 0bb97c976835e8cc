import { ConfigError, loadConfig } from '../src/config';
import { testEnv } from './support/env';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('config was accepted');
}

describe('config', () => {
  test('a complete environment parses into typed values', () => {
    const config = loadConfig(
      testEnv({ PORT: '8080', REDIS_URL: 'rediss://:pw@redis.example.com:6380', WEBHOOK_ALLOWED_HOSTS: 'open.feishu.cn, Example.com' }),
    );
    expect(config.PORT).toBe(8080);
    expect(config.REDIS_URL).toBe('rediss://:pw@redis.example.com:6380');
    expect(config.WEBHOOK_ALLOWED_HOSTS).toEqual(['open.feishu.cn', 'example.com']);
    expect(config.WEBHOOK_ALLOW_LOOPBACK).toBe(true);
  });

  test('development fills in defaults; the dev secrets never reach production', () => {
    const dev = loadConfig({ NODE_ENV: 'development' });
    expect(dev.DUEFLOW_MODE).toBe('all');
    expect(dev.NOTIFY_ATTEMPTS).toBe(5);
    const missing = problems({ NODE_ENV: 'production' });
    for (const name of ['REDIS_URL', 'MONGODB_URI', 'JWT_SECRET', 'SERVICE_TOKEN', 'ADMIN_USER', 'ADMIN_PASSWORD', 'SECRETS_KEY', 'PUBLIC_BASE_URL']) {
      expect(missing).toContain(`${name}: required in production`);
    }
  });

  test.each([
    ['PORT', 'eighty', 'PORT:'],
    ['PORT', '70000', 'PORT:'],
    ['REDIS_URL', 'http://127.0.0.1:6379', 'REDIS_URL: must be a redis:// or rediss:// URL'],
    ['MONGODB_URI', 'postgres://x', 'MONGODB_URI: must be a mongodb:// or mongodb+srv:// URI'],
    ['DUEFLOW_MODE', 'both', 'DUEFLOW_MODE:'],
    ['JWT_SECRET', 'short', 'JWT_SECRET: must be at least 32 characters'],
    ['SERVICE_TOKEN', 'short', 'SERVICE_TOKEN: must be at least 24 characters'],
    ['ADMIN_PASSWORD', 'short', 'ADMIN_PASSWORD: must be at least 12 characters'],
    ['SECRETS_KEY', Buffer.alloc(16).toString('base64'), 'SECRETS_KEY: must be 32 random bytes, base64-encoded'],
    ['PUBLIC_BASE_URL', 'dueflow.example.com', 'PUBLIC_BASE_URL: must be an http(s) URL'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL:'],
    ['QUEUE_PREFIX', 'dueflow', 'QUEUE_PREFIX: must be hash-tagged'],
    ['WEBHOOK_ALLOW_LOOPBACK', 'maybe', 'WEBHOOK_ALLOW_LOOPBACK:'],
    ['NOTIFY_ATTEMPTS', '0', 'NOTIFY_ATTEMPTS:'],
  ])('%s=%s is rejected with a message naming it', (name, value, expected) => {
    const found = problems(testEnv({ [name]: value }));
    expect(found).toHaveLength(1);
    expect(found[0].startsWith(expected)).toBe(true);
  });

  test('every bad variable is reported at once, one line each', () => {
    const found = problems(testEnv({ PORT: 'x', REDIS_URL: 'nope', JWT_SECRET: 'short' }));
    expect(found.map((p) => p.split(':')[0]).sort()).toEqual(['JWT_SECRET', 'PORT', 'REDIS_URL']);
  });
});
