/**
 * What every measurement of `npm run bench` shares: progress output, timing helpers, the stores
 * (FerretDB over SQLite, FerretDB over PostgreSQL, or MONGODB_URI), real dueflow worker processes
 * with their peak RSS, the Feishu-compatible server, a producer-side dueflow context, and cleanup.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config';
import { closeContext, createContext, type AppContext } from '../../src/context';
import { createModels, type Models } from '../../src/db/models';
import { createLogger } from '../../src/logger';
import { startFeishuServer, type AcceptedMessage, type FeishuServer } from '../../test/support/feishuServer';
import { freePort, projectRoot, startFerretDB } from '../services';
import type { ProbeReport } from './probe';

export const root = projectRoot();
export const benchDir = path.join(root, '.data/bench');

// ---------------------------------------------------------------- output and timing

const startedAt = Date.now();
export function log(msg: string): void {
  const s = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(7);
  process.stdout.write(`[bench ${s}s] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export const round = (v: number, digits = 1) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/** Runs fn over 0..n-1 with at most `limit` in flight. */
export async function lanes(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}

/** Polls `done` every `everyMs`, printing progress; throws when nothing moved for `stallMs`. */
export async function waitUntil(
  what: string,
  progress: () => number,
  target: number,
  opts: { everyMs?: number; stallMs?: number; printEveryMs?: number } = {},
): Promise<void> {
  const everyMs = opts.everyMs ?? 200;
  const stallMs = opts.stallMs ?? 180_000;
  const printEveryMs = opts.printEveryMs ?? 10_000;
  let last = -1;
  let lastMove = Date.now();
  let lastPrint = Date.now();
  const began = Date.now();
  for (;;) {
    const now = progress();
    if (now >= target) return;
    if (now !== last) {
      last = now;
      lastMove = Date.now();
    }
    if (Date.now() - lastMove > stallMs) throw new Error(`${what}: stalled at ${now}/${target} for ${stallMs / 1000} s`);
    if (Date.now() - lastPrint >= printEveryMs) {
      lastPrint = Date.now();
      const s = (Date.now() - began) / 1000;
      log(`  ${what}: ${now}/${target} after ${s.toFixed(0)} s (${(now / s).toFixed(1)}/s)`);
    }
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------- the machine

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  versions: Record<string, string>;
  /** The code measured: commit, and how many files under src/, processors/, queues/ differ from it */
  code?: string;
}

/** `abc1234`, or `abc1234 with 3 files changed in src/, processors/, queues/`; undefined outside a git checkout. */
function codeVersion(): string | undefined {
  try {
    const git = (args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    const commit = git(['rev-parse', '--short', 'HEAD']);
    const changed = git(['status', '--porcelain', '--', 'src', 'processors', 'queues']).split('\n').filter(Boolean).length;
    return changed ? `${commit} with ${changed} files changed in src/, processors/, queues/` : commit;
  } catch {
    return undefined;
  }
}

function pkgVersion(name: string): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

export async function machineInfo(redisUrl: string): Promise<MachineInfo> {
  const cpus = os.cpus();
  const versions: Record<string, string> = {};
  for (const p of ['bullmq', 'ioredis', 'mongoose', 'mongodb', 'express', 'undici', 'agenda', '@agendajs/mongo-backend']) versions[p] = pkgVersion(p);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('server');
    versions.redis = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  } catch {
    versions.redis = '?';
  } finally {
    redis.disconnect();
  }
  const ferret = /github\.com\/FerretDB\/FerretDB (v\S+)/.exec(fs.readFileSync(path.join(root, 'tools/ferretdb/go.mod'), 'utf8'))?.[1];
  if (ferret) versions.FerretDB = ferret;
  try {
    versions.PostgreSQL = execFileSync('psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-c', 'show server_version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    })
      .trim()
      .split(' ')[0];
  } catch {
    /* not there */
  }
  return {
    cpuModel: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    versions,
    code: codeVersion(),
  };
}

// ---------------------------------------------------------------- stores

export type StoreKind = 'sqlite' | 'postgresql' | 'mongodb';

export interface Store {
  kind: StoreKind;
  /** "FerretDB 1.24.2 / SQLite" etc. */
  label: string;
  uri: string;
  stop(): Promise<void>;
}

/** Every process the bench started, so an interrupted run leaves none behind. */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** SIGKILLs whatever the bench started and is still running (Ctrl-C). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The project's FerretDB (tools/ferretdb, built and cached by scripts/build-ferretdb.sh); it takes `-handler postgresql` too. */
function ferretdbBinary(): string {
  return execFileSync(path.join(root, 'scripts/build-ferretdb.sh'), { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
}

async function waitForMongo(uri: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const { MongoClient } = await import('mongodb');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited with ${child.exitCode}`);
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1000 });
    try {
      await client.connect();
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    } finally {
      await client.close().catch(() => undefined);
    }
  }
}

export async function startStore(kind: StoreKind): Promise<Store> {
  if (kind === 'mongodb') {
    const uri = process.env.MONGODB_URI!;
    return { kind, label: 'MongoDB (MONGODB_URI)', uri, stop: async () => undefined };
  }
  if (kind === 'sqlite') {
    const dir = path.join(benchDir, 'ferretdb-sqlite');
    fs.rmSync(dir, { recursive: true, force: true });
    const ferret = await startFerretDB(dir);
    track(ferret.child);
    return {
      kind,
      label: 'FerretDB v1.24.2 / SQLite',
      uri: ferret.uri,
      stop: () => stopChild(ferret.child).then(() => fs.rmSync(dir, { recursive: true, force: true })),
    };
  }
  const bin = ferretdbBinary();
  const pgBase = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
  const dbName = 'dueflow_bench';
  const psql = (sql: string) =>
    execFileSync('psql', ['-X', '-q', `${pgBase}/postgres`, '-c', sql], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
      env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' },
    });
  psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  psql(`CREATE DATABASE ${dbName}`);
  const port = await freePort();
  const child = track(
    spawn(bin, [`-listen-addr=127.0.0.1:${port}`, '-handler=postgresql', `-postgresql-url=${pgBase}/${dbName}`, '-log-level=error'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  // FerretDB logs every insert a unique index refused as an ERROR (the events' derived ids make
  // repeats of one event such inserts, by design): counted, not printed; anything else goes through.
  let duplicateKeys = 0;
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('duplicate key value violates unique constraint')) duplicateKeys += 1;
      else if (line) process.stderr.write(`${line}\n`);
    }
  });
  const uri = `mongodb://127.0.0.1:${port}/`;
  await waitForMongo(uri, child);
  return {
    kind,
    label: 'FerretDB v1.24.2 / PostgreSQL 15',
    uri,
    stop: async () => {
      await stopChild(child);
      if (duplicateKeys) log(`FerretDB/PostgreSQL logged ${duplicateKeys} inserts refused by a unique index (duplicate key), not printed`);
      try {
        psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      } catch {
        /* leave it */
      }
    },
  };
}

export function postgresAvailable(): boolean {
  try {
    execFileSync('psql', ['-X', '-q', `${process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432'}/postgres`, '-c', 'select 1'], {
      stdio: 'ignore',
      timeout: 5000,
    });
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- a run's database and queues

export interface RunSpace {
  /** MONGODB_DB of this run */
  db: string;
  /** QUEUE_PREFIX of this run */
  prefix: string;
  /** env of dueflow processes of this run */
  env: Record<string, string>;
  config: Config;
}

export function runSpace(bench: BenchEnv, store: Store, name: string, extraEnv: Record<string, string> = {}): RunSpace {
  const db = `bench_${name}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
  const prefix = `{bench-${name}}`;
  const env: Record<string, string> = {
    NODE_ENV: 'development',
    DUEFLOW_MODE: 'worker',
    REDIS_URL: bench.redisUrl,
    MONGODB_URI: store.uri,
    MONGODB_DB: db,
    QUEUE_PREFIX: prefix,
    WEBHOOK_ALLOW_LOOPBACK: 'true',
    LOG_LEVEL: 'info',
    SCAN_INTERVAL_MS: String(bench.scanIntervalMs),
    ...bench.workerEnv,
    ...extraEnv,
  };
  return { db, prefix, env, config: loadConfig(env) };
}

/** Deletes the run's Redis keys (by prefix) and drops its database. */
export async function clearSpace(bench: BenchEnv, store: Store, space: RunSpace): Promise<void> {
  const redis = new Redis(bench.redisUrl, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${space.prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(store.uri, { retryWrites: false });
  try {
    await client.connect();
    await client.db(space.db).dropDatabase();
  } finally {
    await client.close();
  }
}

/** A producer-side context (models, queues, secrets) on the run's database and prefix, as a service or the API would have. */
export function producerContext(space: RunSpace): Promise<AppContext> {
  return createContext({ ...space.config, LOG_LEVEL: 'silent' }, createLogger('silent'));
}
export { closeContext };

// ---------------------------------------------------------------- processes

export interface ProcStats {
  /** Peak resident set size (VmHWM), MiB */
  peakRssMiB: number;
  /** Largest VmRSS seen by sampling, MiB */
  sampledMaxRssMiB: number;
  cpuSeconds: number;
}

function procStatus(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

function procCpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return ticks / 100;
  } catch {
    return NaN;
  }
}

export interface BenchProcess {
  child: ChildProcess;
  /** Last lines of output (for errors). */
  tail: string[];
  warnings: number;
  /** Warning and error log lines by message, with counts. */
  warningSummary(): Record<string, number>;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Peak RSS so far. */
  stats(): ProcStats;
  /** CPU seconds (user + system) used so far, read from /proc now. */
  cpuNow(): number;
  /** SIGTERM, wait for exit; returns the stats read just before. */
  stop(): Promise<ProcStats>;
}

/** Spawns `node [nodeArgs] script` with env; samples RSS every 250 ms. */
export function spawnNode(script: string, env: Record<string, string>, nodeArgs: string[] = []): BenchProcess {
  const child = track(spawn(process.execPath, [...nodeArgs, script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const tail: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let warnings = 0;
  const warningMsgs = new Map<string, number>();
  let sampledMax = 0;
  let lastHwm = 0;
  let lastCpu = 0;
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > 200) tail.shift();
      if (/"level":(40|50|60)/.test(line) && !line.includes('WEBHOOK_ALLOW_LOOPBACK is on')) {
        warnings += 1;
        const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 80);
        warningMsgs.set(msg, (warningMsgs.get(msg) ?? 0) + 1);
      }
      for (const l of listeners) l(line);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const sample = () => {
    const s = procStatus(child.pid!);
    if (s) {
      sampledMax = Math.max(sampledMax, s.rss);
      lastHwm = Math.max(lastHwm, s.hwm);
    }
    const cpu = procCpuSeconds(child.pid!);
    if (Number.isFinite(cpu)) lastCpu = cpu;
  };
  const timer = setInterval(sample, 250);
  timer.unref();
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      clearInterval(timer);
      resolve();
    }),
  );
  const stats = (): ProcStats => {
    sample();
    return { peakRssMiB: round(lastHwm, 1), sampledMaxRssMiB: round(sampledMax, 1), cpuSeconds: round(lastCpu, 2) };
  };
  return {
    child,
    tail,
    get warnings() {
      return warnings;
    },
    warningSummary: () => Object.fromEntries(warningMsgs),
    waitForLine(re, timeoutMs = 60_000) {
      const hit = tail.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer2 = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no line ${re} within ${timeoutMs} ms; output:\n${tail.join('\n')}`));
        }, timeoutMs);
        const listener = (line: string) => {
          if (re.test(line)) {
            clearTimeout(timer2);
            listeners.delete(listener);
            resolve(line);
          }
        };
        listeners.add(listener);
        void exited.then(() => {
          if (listeners.has(listener)) {
            clearTimeout(timer2);
            listeners.delete(listener);
            reject(new Error(`process exited before ${re}; output:\n${tail.join('\n')}`));
          }
        });
      });
    },
    stats,
    cpuNow: () => procCpuSeconds(child.pid!),
    async stop() {
      const s = stats();
      if (child.exitCode === null && child.signalCode === null) {
        const kill = setTimeout(() => child.kill('SIGKILL'), 40_000);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(kill);
      }
      return s;
    },
  };
}

export interface WorkerOptions {
  /** Write a CPU profile into this folder (node --cpu-prof). */
  cpuProfDir?: string;
  /** Where the probe (probe.ts) writes its counts of MongoDB and Redis round trips at exit (and `<file>.snap` on SIGUSR2). */
  probeOut?: string;
}

/** A real dueflow worker process (the compiled build, `node dist/processors/main.js`), ready when it logs "dueflow started". */
export async function startDueflowWorker(space: RunSpace, opts: WorkerOptions = {}): Promise<BenchProcess> {
  const nodeArgs: string[] = [];
  const env = { ...space.env };
  if (opts.probeOut) {
    nodeArgs.push('-r', path.join(root, 'dist/scripts/bench/probe.js'));
    env.BENCH_PROBE_OUT = opts.probeOut;
  }
  if (opts.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  const proc = spawnNode(path.join(root, 'dist/processors/main.js'), env, nodeArgs);
  await proc.waitForLine(/"msg":"dueflow started"/, 60_000);
  return proc;
}

/**
 * The worker's probe counts so far (probe.ts writes them to `<probeOut>.snap` on SIGUSR2): taken
 * before the first request and after the last message, their difference is the run's own work,
 * without the process's start (index builds, first reads) or its stop.
 */
export async function probeSnapshot(proc: BenchProcess, probeOut: string | undefined, timeoutMs = 15_000): Promise<ProbeReport | undefined> {
  if (!probeOut || proc.child.exitCode !== null) return undefined;
  const file = `${probeOut}.snap`;
  fs.rmSync(file, { force: true });
  proc.child.kill('SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = readJson<ProbeReport>(file);
    if (r) return r;
    await sleep(50);
  }
  return undefined;
}

/** How long after a worker said it started a run takes its first snapshot: what the worker does once at start is over by then. */
export const WORKER_SETTLE_MS = 1500;

export interface CommandCounter {
  /** The run's models on a connection of their own with the driver's command monitoring on. */
  models: Models;
  /** Counts from now on (and forgets what was counted). */
  start(): void;
  /** Commands since start(), by `command collection`, and their total. */
  counts(): { total: number; byCommand: Record<string, number> };
  close(): Promise<void>;
}

/**
 * MongoDB commands of the bench process's own calls (requests, a preview's confirm), counted with
 * the driver's command monitoring on a second connection (as test/delivery.roundtrips.test.ts
 * does): give a context these models and count between start() and counts().
 */
export async function commandCounter(space: RunSpace): Promise<CommandCounter> {
  const mongoose = (await import('mongoose')).default;
  const conn = mongoose.createConnection(space.config.MONGODB_URI, { dbName: space.config.MONGODB_DB, monitorCommands: true });
  await conn.asPromise();
  let counting = false;
  let byCommand = new Map<string, number>();
  conn.getClient().on('commandStarted', (e: { commandName: string; command: Record<string, unknown> }) => {
    if (!counting || e.commandName === 'createIndexes') return;
    const coll = e.command[e.commandName];
    const key = typeof coll === 'string' ? `${e.commandName} ${coll}` : e.commandName;
    byCommand.set(key, (byCommand.get(key) ?? 0) + 1);
  });
  const models = createModels(conn);
  await Promise.all(Object.values(models).map((m) => m.init()));
  return {
    models,
    start() {
      byCommand = new Map();
      counting = true;
    },
    counts() {
      const out = Object.fromEntries(byCommand);
      return { total: Object.values(out).reduce((a, b) => a + b, 0), byCommand: out };
    },
    close: () => conn.close().catch(() => undefined),
  };
}

// ---------------------------------------------------------------- the Feishu-compatible server

export interface BenchFeishu {
  server: FeishuServer;
  /** Messages accepted for a token prefix since the last `expect`. */
  count(prefix: string): number;
  /** Starts counting messages of tokens with this prefix; onMessage sees each one. */
  expect(prefix: string, onMessage?: (m: AcceptedMessage) => void): void;
  lastReceivedAt(prefix: string): number;
  /** Requests answered with something other than code 0, per run. */
  refused(): number;
}

/**
 * The test suite's Feishu-compatible server (signatures, sizes and codes checked), with its own
 * rate limit off: dueflow's limiter (5/s, 100/min per webhook) stays on, and the bench spreads
 * messages over many webhooks. Only counts are kept, so 100,000 messages cost no memory.
 */
export async function startBenchFeishu(): Promise<BenchFeishu> {
  const runs = new Map<string, { n: number; last: number; on?: (m: AcceptedMessage) => void }>();
  const server = await startFeishuServer({
    rateLimit: false,
    onMessage: (m) => {
      const prefix = m.token.split('~')[0];
      const run = runs.get(prefix);
      if (!run) return;
      run.n += 1;
      run.last = Math.max(run.last, m.receivedAt);
      run.on?.(m);
    },
  });
  let refusedBefore = 0;
  // The server keeps every message and request; the bench reads them as they come, so drop them.
  const trim = setInterval(() => {
    refusedBefore += server.requests.filter((r) => r.code !== 0).length;
    server.messages.length = 0;
    server.requests.length = 0;
  }, 1000);
  trim.unref();
  return {
    server,
    count: (prefix) => runs.get(prefix)?.n ?? 0,
    expect: (prefix, on) => void runs.set(prefix, { n: 0, last: 0, on }),
    lastReceivedAt: (prefix) => runs.get(prefix)?.last ?? 0,
    refused: () => refusedBefore + server.requests.filter((r) => r.code !== 0).length,
  };
}

// ---------------------------------------------------------------- the bench's environment

export interface BenchEnv {
  redisUrl: string;
  feishu: BenchFeishu;
  scanIntervalMs: number;
  quick: boolean;
  /** Folder for this run's probes and profiles. */
  outDir: string;
  probe: boolean;
  cpuProf: boolean;
  /** Extra env of every dueflow worker (--env). */
  workerEnv: Record<string, string>;
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
