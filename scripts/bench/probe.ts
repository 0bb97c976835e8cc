/**
 * Where a process's time goes, without touching src/: preloaded into a bench worker with
 * `node -r dist/scripts/bench/probe.js` (BENCH_PROBE_OUT=<file>). Counts every MongoDB command
 * (by command and collection, with the driver's own round-trip duration; and by command,
 * collection and the field names of its filter, `shapes`) and every Redis command (by name, with
 * its time to answer), and writes them as JSON when the process exits, with the process's CPU
 * time. On SIGUSR2 it writes the counts so far to `<file>.snap` (the bench takes a snapshot
 * before the first request and after the last message, and counts what lies between).
 */
import fs from 'node:fs';

export interface CommandStat {
  n: number;
  ms: number;
}
export interface ProbeReport {
  mongo: Record<string, CommandStat>;
  /** The same commands keyed by command, collection and filter fields, e.g. `find notification_records {outboxCount}` */
  shapes?: Record<string, CommandStat>;
  redis: Record<string, CommandStat>;
  cpuUserS: number;
  cpuSystemS: number;
  wallS: number;
}

const mongo = new Map<string, CommandStat>();
const shapes = new Map<string, CommandStat>();
const redis = new Map<string, CommandStat>();
const began = Date.now();
let installed = false;

function add(map: Map<string, CommandStat>, key: string, ms: number): void {
  const s = map.get(key) ?? { n: 0, ms: 0 };
  s.n += 1;
  s.ms += ms;
  map.set(key, s);
}

/** Commands that wait on purpose (BullMQ's blocking fetch): counted, not timed. */
const blocking = new Set(['bzpopmin', 'bzpopmax', 'brpoplpush', 'blmove', 'xread', 'brpop', 'blpop']);

export function probeReport(): ProbeReport {
  const cpu = process.cpuUsage();
  const round = (m: Map<string, CommandStat>) => Object.fromEntries([...m].map(([k, v]) => [k, { n: v.n, ms: Math.round(v.ms) }]));
  return {
    mongo: round(mongo),
    shapes: round(shapes),
    redis: round(redis),
    cpuUserS: cpu.user / 1e6,
    cpuSystemS: cpu.system / 1e6,
    wallS: (Date.now() - began) / 1000,
  };
}

export function resetProbe(): void {
  mongo.clear();
  shapes.clear();
  redis.clear();
}

/** The field names a command filters on (top level, sorted): what tells the relay's read of records from a delivery's. */
function filterShape(name: string, command: Record<string, unknown>): string {
  const updates = command.updates as Array<{ q?: object }> | undefined;
  const filter = (command.filter ?? command.query ?? updates?.[0]?.q ?? (command.deletes as Array<{ q?: object }> | undefined)?.[0]?.q) as
    Record<string, unknown> | undefined;
  if (!filter || typeof filter !== 'object') return '';
  const keys = Object.keys(filter).sort().join(',');
  const many = updates && updates.length > 1 ? ` ×${updates.length}` : '';
  return ` {${keys}}${many}`;
}

export function installProbe(): void {
  if (installed) return;
  installed = true;

  // MongoDB: every connection mongoose opens gets command monitoring.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mongoose = require('mongoose');
  const createConnection = mongoose.createConnection.bind(mongoose);
  mongoose.createConnection = (uri: string, options: Record<string, unknown> = {}) => {
    const conn = createConnection(uri, { ...options, monitorCommands: true });
    const started = new Map<number, [string, string]>();
    const attach = () => {
      const client = conn.getClient();
      client.on('commandStarted', (e: { requestId: number; commandName: string; command: Record<string, unknown> }) => {
        const coll = e.command[e.commandName];
        const key = typeof coll === 'string' ? `${e.commandName} ${coll}` : e.commandName;
        started.set(e.requestId, [key, `${key}${filterShape(e.commandName, e.command)}`]);
      });
      const done = (e: { requestId: number; commandName: string; duration: number }) => {
        const [key, shape] = started.get(e.requestId) ?? [e.commandName, e.commandName];
        started.delete(e.requestId);
        add(mongo, key, e.duration);
        add(shapes, shape, e.duration);
      };
      client.on('commandSucceeded', done);
      client.on('commandFailed', done);
    };
    conn.asPromise().then(attach, () => undefined);
    return conn;
  };

  // Redis: every command of every ioredis client, BullMQ's included.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Redis } = require('ioredis');
  const sendCommand = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (command: { name: string; promise: Promise<unknown> }, stream?: unknown) {
    const t0 = performance.now();
    const name = command.name.toLowerCase();
    const result = sendCommand.call(this, command, stream);
    if (blocking.has(name)) add(redis, `${name} (blocking)`, 0);
    else
      command.promise.then(
        () => add(redis, name, performance.now() - t0),
        () => add(redis, name, performance.now() - t0),
      );
    return result;
  };
}

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  installProbe();
  const write = (file: string) => {
    try {
      // Written whole, then renamed: the bench never reads half a snapshot.
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(probeReport()));
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      /* the bench reports a missing probe */
    }
  };
  process.once('exit', () => write(out));
  process.on('SIGUSR2', () => write(`${out}.snap`));
}
