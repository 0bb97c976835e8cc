/**
 * The demo: real services, dueflow in all mode (the compiled build, as `npm start` runs it),
 * and a walk through the chain. Ctrl-C stops everything.
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { loadConfig } from '../src/config';
import { freePort, projectRoot, startServices } from './services';

const root = projectRoot();
const log = (msg: string) => process.stdout.write(`[demo] ${msg}\n`);

async function waitReady(url: string, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return await res.json();
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`dueflow not ready at ${url} within ${timeoutMs} ms`);
}

async function main() {
  const services = await startServices({ dataDir: path.join(root, '.data/demo'), log });
  const port = Number(process.env.PORT ?? (await freePort()));
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    NODE_ENV: 'development',
    DUEFLOW_MODE: 'all',
    PORT: String(port),
    REDIS_URL: services.redisUrl,
    MONGODB_URI: services.mongodbUri,
    MONGODB_DB: process.env.MONGODB_DB ?? 'dueflow_demo',
    PUBLIC_BASE_URL: baseUrl,
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  const dueflow = spawn(process.execPath, [path.join(root, 'dist/src/main.js')], { env, stdio: 'inherit' });
  const stopAll = async () => {
    dueflow.kill('SIGTERM');
    await new Promise((r) => dueflow.once('exit', r));
    await services.stop();
    process.exit(0);
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  dueflow.once('exit', (code) => { if (code) { log(`dueflow exited with ${code}`); void services.stop().then(() => process.exit(1)); } });

  const ready = await waitReady(baseUrl);
  log(`readyz: ${JSON.stringify(ready)}`);
  log(`API:        ${baseUrl}`);
  log(`API docs:   ${baseUrl}/docs`);
  const config = loadConfig(env);
  log(`Bull Board: ${baseUrl}/admin/queues  (user ${config.ADMIN_USER}, password ${config.ADMIN_PASSWORD})`);
  log('Ctrl-C stops dueflow and the services it started.');
}

main().catch((err) => {
  process.stderr.write(`[demo] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
