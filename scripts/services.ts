/**
 * Starts (or finds) the services dueflow needs: Redis and a MongoDB-compatible server.
 * Used by the demo and by the test suite's global setup, so both run on the same real services.
 *
 * - Redis: REDIS_URL when set; else the local server on 127.0.0.1:6379 when it answers;
 *   else a redis-server of our own (AOF on) on a free port, data under the given folder.
 * - MongoDB: MONGODB_URI when set; else FerretDB (built by scripts/build-ferretdb.sh) with
 *   its SQLite backend on a free port, data under the given folder.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface Services {
  redisUrl: string;
  mongodbUri: string;
  /** Stops what this call started; leaves services it only found alone. */
  stop(): Promise<void>;
}

/** The project's root, whether this file runs from scripts/ (tsx, jest) or dist/scripts/ (built). */
export function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') dir = path.dirname(dir);
  return dir;
}

const root = projectRoot();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Sends PING over raw RESP so this script needs no Redis client. */
function redisAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function waitForPort(port: number, child: ChildProcess, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before listening`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port} within ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function ensureRedisServerBinary(): string {
  const found = which('redis-server');
  if (found) return found;
  if (process.getuid?.() === 0) {
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server'], { stdio: 'inherit' });
    const installed = which('redis-server');
    if (installed) return installed;
  }
  throw new Error('no Redis answers on 127.0.0.1:6379 and redis-server is not installed (install it, or set REDIS_URL)');
}

export async function startRedisServer(dataDir: string, port?: number): Promise<{ url: string; port: number; child: ChildProcess }> {
  const bin = ensureRedisServerBinary();
  const usePort = port ?? (await freePort());
  fs.mkdirSync(dataDir, { recursive: true });
  const child = spawn(
    bin,
    [
      '--port',
      String(usePort),
      '--bind',
      '127.0.0.1',
      '--dir',
      dataDir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(usePort, child, 'redis-server');
  return { url: `redis://127.0.0.1:${usePort}`, port: usePort, child };
}

export async function startFerretDB(dataDir: string, port?: number): Promise<{ uri: string; port: number; child: ChildProcess }> {
  const bin = execFileSync(path.join(root, 'scripts/build-ferretdb.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const usePort = port ?? (await freePort());
  fs.mkdirSync(dataDir, { recursive: true });
  const child = spawn(bin, [`-listen-addr=127.0.0.1:${usePort}`, `-sqlite-url=file:${dataDir.replace(/\/?$/, '/')}`, '-log-level=error'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(usePort, child, 'ferretdb');
  return { uri: `mongodb://127.0.0.1:${usePort}/`, port: usePort, child };
}

export async function startServices(opts: { dataDir: string; env?: NodeJS.ProcessEnv; log?: (msg: string) => void }): Promise<Services> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const started: ChildProcess[] = [];

  let redisUrl = env.REDIS_URL;
  if (redisUrl) log(`redis: using REDIS_URL`);
  else if (await redisAnswers(6379)) {
    redisUrl = 'redis://127.0.0.1:6379';
    log(`redis: using the local server at ${redisUrl}`);
  } else {
    const redis = await startRedisServer(path.join(opts.dataDir, 'redis'));
    started.push(redis.child);
    redisUrl = redis.url;
    log(`redis: started redis-server at ${redisUrl}`);
  }

  let mongodbUri = env.MONGODB_URI;
  if (mongodbUri) log('mongodb: using MONGODB_URI');
  else {
    const ferret = await startFerretDB(path.join(opts.dataDir, 'ferretdb'));
    started.push(ferret.child);
    mongodbUri = ferret.uri;
    log(`mongodb: started FerretDB at ${mongodbUri}`);
  }

  return {
    redisUrl,
    mongodbUri,
    stop: async () => {
      await Promise.all(started.map(stopChild));
    },
  };
}
