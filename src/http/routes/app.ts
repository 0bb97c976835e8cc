/**
 * The user page: GET /app and /app/previews/:id (the same index.html; the script reads the path)
 * and its bundled assets under /app/assets, all from dist/web (built by scripts/build-web.ts).
 * The page calls the public API with the user's token; it is served under a strict CSP, since it
 * shows user text (messages) and holds a token.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { Router, type Response } from 'express';
import { errorBody } from '../errors';

export const appPath = '/app';

/**
 * Scripts and styles from this origin only, no inline code; the page talks to this origin only;
 * it may not be framed (it has Confirm buttons) and has no forms that post anywhere.
 */
export const appContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The project root from src/http/routes (ts-jest, tsx) and from dist/src/http/routes alike. */
function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export function defaultWebDir(): string {
  return path.join(projectRoot(), 'dist/web');
}

function securityHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', appContentSecurityPolicy);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

export function createWebAppRouter(webDir = defaultWebDir()): Router {
  const router = Router();
  const indexFile = path.join(webDir, 'index.html');
  const assetsDir = path.join(webDir, 'assets');

  const notBuilt = (res: Response) => {
    res.setHeader('Retry-After', '30');
    res
      .status(503)
      .json(
        errorBody(
          'web_app_not_built',
          `the user page is not built: ${path.relative(process.cwd(), indexFile) || indexFile} is missing; run \`npm run build\` (or \`node dist/scripts/build-web.js\`)`,
        ),
      );
  };

  const sendIndex = (res: Response) => {
    let html: Buffer;
    try {
      html = fs.readFileSync(indexFile);
    } catch {
      return notBuilt(res);
    }
    securityHeaders(res);
    // The page names hashed assets: it must be revalidated, they never need to be.
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  };

  router.get([appPath, `${appPath}/`], (_req, res) => sendIndex(res));
  router.get(`${appPath}/previews/:id`, (req, res, next) => {
    // The script validates the id too; anything else is not a page of ours.
    if (!/^[0-9a-f]{24}$/.test(req.params.id)) return next();
    sendIndex(res);
  });

  const assets = express.static(assetsDir, {
    index: false,
    redirect: false,
    dotfiles: 'deny',
    immutable: true,
    maxAge: '365d',
    setHeaders: (res) => securityHeaders(res),
  });
  router.use(`${appPath}/assets`, (req, res, next) => {
    if (!fs.existsSync(assetsDir)) return notBuilt(res);
    assets(req, res, next);
  });
  return router;
}
