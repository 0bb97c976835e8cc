/** Reading what the probe and `node --cpu-prof` wrote: where a worker's time went, per message. */
import fs from 'node:fs';
import path from 'node:path';
import type { ProbeReport } from './probe';

export interface ProbeSummary {
  /** MongoDB commands per message */
  mongoPerMessage: number;
  /** Sum of MongoDB round-trip times per message (ms; they overlap under concurrency) */
  mongoMsPerMessage: number;
  /** Redis commands per message (pipelined ones counted one by one; blocking fetches excluded) */
  redisPerMessage: number;
  redisMsPerMessage: number;
  /** Worker CPU per message (ms) */
  cpuMsPerMessage: number;
  /** The heaviest MongoDB commands: per message count and mean ms */
  topMongo: Array<{ command: string; perMessage: number; meanMs: number; totalS: number }>;
  topRedis: Array<{ command: string; perMessage: number; meanMs: number }>;
  /** MongoDB commands per message by what they serve (groupOf), most first */
  groups?: Array<{ group: string; perMessage: number }>;
  /** The most frequent commands by command, collection and filter fields (per message) */
  topShapes?: Array<{ shape: string; perMessage: number }>;
}

/** What a MongoDB command serves, from its command, collection and filter fields (probe.ts `shapes`). */
export function groupOf(shape: string): string {
  const [, coll = '', filter = ''] = shape.split(' ');
  if (['events', 'event_deliveries', 'webhook_endpoints'].includes(coll) || (coll === 'notification_records' && filter.includes('outboxCount')))
    return 'events (relay, fan-out, webhooks)';
  if (['notification_records', 'user_settings', 'notification_channels'].includes(coll)) return 'records, settings, channels';
  if (coll === 'active_schedule_jobs') return 'due jobs (scanner)';
  if (['active_schedule_triggers', 'active_schedule_previews', 'tasks', 'schedule_blocks', 'idempotency_keys'].includes(coll)) return 'triggers, workflow';
  return 'other';
}

/** What `end` counted that `start` had not (a window of a run, between two probe snapshots). */
export function diffProbe(end: ProbeReport, start?: ProbeReport): ProbeReport {
  if (!start) return end;
  const sub = (a: Record<string, { n: number; ms: number }> = {}, b: Record<string, { n: number; ms: number }> = {}) =>
    Object.fromEntries(
      Object.entries(a)
        .map(([k, v]) => [k, { n: v.n - (b[k]?.n ?? 0), ms: Math.max(0, v.ms - (b[k]?.ms ?? 0)) }] as const)
        .filter(([, v]) => v.n > 0),
    );
  return {
    mongo: sub(end.mongo, start.mongo),
    shapes: sub(end.shapes, start.shapes),
    redis: sub(end.redis, start.redis),
    cpuUserS: end.cpuUserS - start.cpuUserS,
    cpuSystemS: end.cpuSystemS - start.cpuSystemS,
    wallS: end.wallS - start.wallS,
  };
}

export function summarizeProbe(p: ProbeReport, messages: number): ProbeSummary {
  const entries = (o: Record<string, { n: number; ms: number }>) => Object.entries(o);
  const mongo = entries(p.mongo);
  const redis = entries(p.redis).filter(([k]) => !k.includes('(blocking)'));
  const sum = (xs: Array<[string, { n: number; ms: number }]>, f: (s: { n: number; ms: number }) => number) => xs.reduce((a, [, s]) => a + f(s), 0);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    mongoPerMessage: r2(sum(mongo, (s) => s.n) / messages),
    mongoMsPerMessage: r2(sum(mongo, (s) => s.ms) / messages),
    redisPerMessage: r2(sum(redis, (s) => s.n) / messages),
    redisMsPerMessage: r2(sum(redis, (s) => s.ms) / messages),
    cpuMsPerMessage: r2(((p.cpuUserS + p.cpuSystemS) * 1000) / messages),
    topMongo: mongo
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 10)
      .map(([command, s]) => ({ command, perMessage: r2(s.n / messages), meanMs: r2(s.ms / s.n), totalS: r2(s.ms / 1000) })),
    topRedis: redis
      .sort((a, b) => b[1].n - a[1].n)
      .slice(0, 6)
      .map(([command, s]) => ({ command, perMessage: r2(s.n / messages), meanMs: r2(s.ms / s.n) })),
    ...(p.shapes
      ? {
          groups: [...entries(p.shapes).reduce((m, [shape, s]) => m.set(groupOf(shape), (m.get(groupOf(shape)) ?? 0) + s.n), new Map<string, number>())]
            .sort((a, b) => b[1] - a[1])
            .map(([group, n]) => ({ group, perMessage: r2(n / messages) })),
          topShapes: entries(p.shapes)
            .sort((a, b) => b[1].n - a[1].n)
            .slice(0, 10)
            .map(([shape, s]) => ({ shape, perMessage: r2(s.n / messages) })),
        }
      : {}),
  };
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  samples: number[];
  timeDeltas: number[];
}

export interface CpuSummary {
  file: string;
  totalS: number;
  /** Self time by area: (idle), (garbage collector), node internals, one entry per package, dueflow's own code */
  byArea: Array<{ area: string; pct: number }>;
  topFunctions: Array<{ fn: string; pct: number }>;
}

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.includes('/dist/')) return 'dueflow';
  return 'other';
}

/** The first profile in `dir` (one per process), summarized by self time. */
export function summarizeCpuProfile(dir: string): CpuSummary | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const file = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))[0];
  if (!file) return undefined;
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  let total = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    total += us;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const short = url
      ? `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${lineNumber + 1}`
      : functionName;
    fns.set(short, (fns.get(short) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((1000 * us) / total) / 10;
  return {
    file,
    totalS: Math.round(total / 1e4) / 100,
    byArea: [...areas]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([area, us]) => ({ area, pct: pct(us) })),
    topFunctions: [...fns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([fn, us]) => ({ fn, pct: pct(us) })),
  };
}
