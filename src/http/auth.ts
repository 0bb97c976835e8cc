/**
 * Four kinds of caller:
 * - users: `Authorization: Bearer <JWT>` (HS256, JWT_SECRET); `sub` is the user id;
 * - services: `Authorization: Bearer <SERVICE_TOKEN>`;
 * - operators (Bull Board): HTTP Basic with ADMIN_USER / ADMIN_PASSWORD;
 * - Feishu (card callbacks): its signature over the raw body, checked by routes/feishuCallback.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { jwtVerify } from 'jose';
import type { Config } from '../config';
import { errorBody, unauthorized } from './errors';
import type { Limiter } from './rateLimit';
import { tooManyRequests } from './rateLimit';

export type AuthKind = 'none' | 'user' | 'service' | 'feishu';

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export function userAuth(config: Pick<Config, 'JWT_SECRET'>): RequestHandler {
  const key = new TextEncoder().encode(config.JWT_SECRET);
  return async (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) return next(unauthorized('missing bearer token'));
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 128) {
        return next(unauthorized('token has no subject'));
      }
      req.userId = payload.sub;
      next();
    } catch {
      next(unauthorized('invalid or expired token'));
    }
  };
}

export function serviceAuth(config: Pick<Config, 'SERVICE_TOKEN'>): RequestHandler {
  return (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) return next(unauthorized('missing bearer token'));
    if (!safeEqual(token, config.SERVICE_TOKEN)) return next(unauthorized('invalid service token'));
    next();
  };
}

/**
 * HTTP Basic for operators; the browser shows its login prompt on the 401. Failed logins are
 * counted per client address: past the limit, the address is locked out (429) for a while.
 */
export function adminAuth(config: Pick<Config, 'ADMIN_USER' | 'ADMIN_PASSWORD'>, failedLogins: Limiter): RequestHandler {
  return async (req, res, next) => {
    const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    const sep = decoded.indexOf(':');
    const ok = sep > 0 && safeEqual(decoded.slice(0, sep), config.ADMIN_USER) && safeEqual(decoded.slice(sep + 1), config.ADMIN_PASSWORD);
    const client = `admin:${req.ip}`;
    // A locked-out address is refused even with the right password, or guessing could go on.
    const lockedMs = await failedLogins.waitFor(client).catch(() => 0);
    if (lockedMs > 0) return tooManyRequests(res, lockedMs, 'failed logins');
    if (ok) return next();
    if (match) {
      // Only a wrong attempt counts; the browser's first request without credentials does not.
      const waitMs = await failedLogins.hit(client).catch(() => 0);
      if (waitMs > 0) return tooManyRequests(res, waitMs, 'failed logins');
    }
    res.setHeader('WWW-Authenticate', 'Basic realm="dueflow admin", charset="UTF-8"');
    res.status(401).json(errorBody('unauthorized', 'admin credentials required'));
  };
}

declare module 'express-serve-static-core' {
  interface Request {
    userId?: string;
  }
}
