/**
 * `npm run bench`: dueflow's benchmarks, side by side in one run on one machine, against the same
 * Redis, the same MongoDB-compatible server(s) and the same Feishu-compatible server; results go
 * into BENCHMARKS.md (between its bench markers; text around them is kept).
 *
 *   npm run bench                 full run (see BENCHMARKS.md for its duration)
 *   npm run bench -- --quick      smoke run with small N (a few minutes); writes .data/bench/BENCHMARKS.quick.md
 *   npm run build && node dist/scripts/bench/index.js --quick --only=priority    one step (or `--only priority`)
 *
 * Options: --only=delivery,events,priority,firing,scan,agenda,profile (the steps to run; default all)
 *          --stores=sqlite,postgresql  --out=FILE
 *          --events-n=N (notifications of the events step; default 500, 200 with --quick; on SQLite 300, 100 unless given)
 *          --atomic-n=N (the delivery run with STORE_GUARDED_UPDATES=atomic; default min(N, 2000))
 *          --heap-cap (run the firing again with the worker's V8 heap capped, even when no worker came near 300 MB)
 *          --priority-n=N (reminders of the priority step, N/10 app users; default 5000, 1500 with --quick)
 *          --sqlite-max=N (cap of every N on FerretDB/SQLite, default 1000)  --sqlite-full
 *          --agenda-max=N (Agenda's N on FerretDB, default 1000)
 *          --n=N (delivery and Agenda N)  --firing=N1,N2  --scan-sizes=S1,S2  --scan-due=D
 *          --scan-interval-ms=MS (default 5000, the production default)  --max-run-s=S (skip a firing size projected longer)
 *          --scan-budget-s=S (skip a scanner pass projected longer; the projection is reported)
 *          --env=K=V,... (extra env of the dueflow workers, e.g. WORKER_CONCURRENCY=4)
 *          --no-probe  --cpu-prof (profile every dueflow worker, not only the profile step)
 *
 * Stores: MONGODB_URI set → that server only (real MongoDB wins). Otherwise FerretDB v1.24.2 over
 * SQLite (the tests' store) and, when PostgreSQL answers on 127.0.0.1:5432 (BENCH_POSTGRES_URL)
 * and Go is there, FerretDB v1.24.2 over PostgreSQL, to show what the store bounds.
 * Redis: REDIS_URL, else 127.0.0.1:6379, else a redis-server of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startServices } from '../services';
import { benchAgenda } from './agenda';
import type { BenchEnv, Store, StoreKind } from './common';
import { benchDir, killChildren, log, machineInfo, postgresAvailable, root, startBenchFeishu, startStore } from './common';
import { benchDelivery } from './delivery';
import { benchEvents } from './events';
import { benchFiring, type FiringRun } from './firing';
import { benchPriority } from './priority';
import { summarizeCpuProfile } from './profile';
import { ATOMIC, peakRssMiB, RSS_LIMIT_MIB, writeReport } from './report';
import { benchScan } from './scan';

export type { BenchResults, ProfileRun } from './results';
import type { BenchResults } from './results';

const knownFlags = new Set([
  'quick',
  'only',
  'stores',
  'out',
  'events-n',
  'atomic-n',
  'heap-cap',
  'priority-n',
  'sqlite-max',
  'sqlite-full',
  'agenda-max',
  'n',
  'firing',
  'scan-sizes',
  'scan-due',
  'scan-interval-ms',
  'max-run-s',
  'scan-budget-s',
  'env',
  'no-probe',
  'cpu-prof',
]);

/** What a mistyped flag (or --help) gets instead of a full run that overwrites BENCHMARKS.md. */
function usage(problem?: string): never {
  const doc = fs.readFileSync(__filename, 'utf8').match(/\/\*\*([\s\S]*?)\*\//)?.[1] ?? '';
  process.stderr.write(`${problem ? `${problem}\n\n` : ''}${doc.replace(/^ \* ?/gm, '').trim()}\n`);
  process.exit(problem ? 2 : 0);
}

function parseArgs(argv: string[]) {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(argv[i]);
    if (argv[i] === '--help' || argv[i] === '-h') usage();
    if (!m) usage(`unexpected argument: ${argv[i]}`);
    if (!knownFlags.has(m[1])) usage(`unknown flag: --${m[1]}`);
    // `--only=priority` or `--only priority`
    if (m[2] === undefined && argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) flags.set(m[1], argv[++i]);
    else flags.set(m[1], m[2] ?? 'true');
  }
  const list = (k: string) =>
    flags
      .get(k)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const nums = (k: string) => list(k)?.map(Number);
  const quick = flags.has('quick');
  return {
    quick,
    only: new Set(list('only') ?? ['delivery', 'events', 'priority', 'firing', 'scan', 'agenda', 'profile']),
    eventsN: Number(flags.get('events-n') ?? (quick ? 200 : 500)),
    eventsNGiven: flags.has('events-n'),
    atomicN: flags.has('atomic-n') ? Number(flags.get('atomic-n')) : undefined,
    heapCap: flags.has('heap-cap'),
    priorityN: Number(flags.get('priority-n') ?? (quick ? 1500 : 5000)),
    sqliteMax: Number(flags.get('sqlite-max') ?? (quick ? 200 : 1000)),
    sqliteFull: flags.has('sqlite-full'),
    agendaMax: Number(flags.get('agenda-max') ?? 1000),
    stores: list('stores') as StoreKind[] | undefined,
    out: flags.get('out') ?? (quick ? path.join(benchDir, 'BENCHMARKS.quick.md') : path.join(root, 'BENCHMARKS.md')),
    n: Number(flags.get('n') ?? (quick ? 200 : 10_000)),
    firing: nums('firing') ?? (quick ? [200] : [10_000, 100_000]),
    scanSizes: nums('scan-sizes') ?? (quick ? [1_000, 5_000] : [10_000, 100_000, 1_000_000]),
    scanDue: Number(flags.get('scan-due') ?? (quick ? 100 : 1_000)),
    scanBudgetS: Number(flags.get('scan-budget-s') ?? (quick ? 60 : 300)),
    scanIntervalMs: Number(flags.get('scan-interval-ms') ?? 5000),
    maxRunS: Number(flags.get('max-run-s') ?? (quick ? 300 : 2400)),
    probe: !flags.has('no-probe'),
    /** Extra env of every dueflow worker, e.g. --env=WORKER_CONCURRENCY=4 */
    workerEnv: Object.fromEntries((list('env') ?? []).map((kv) => [kv.split('=')[0], kv.split('=').slice(1).join('=')])),
    cpuProf: flags.has('cpu-prof'),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping what the bench started`);
      killChildren();
      process.exit(130);
    });
  }
  const began = Date.now();
  const outDir = path.join(benchDir, `run-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(outDir, { recursive: true });
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  log(`${command}: results in ${path.relative(root, args.out)}, probes and profiles in ${path.relative(root, outDir)}`);

  const services = await startServices({
    dataDir: path.join(benchDir, 'services'),
    env: { ...process.env, MONGODB_URI: 'unused://' },
    log: (m) => {
      if (m.startsWith('redis')) log(m);
    },
  });
  // (The stores are started per measurement below; startServices is used for Redis only.)
  const feishu = await startBenchFeishu();
  const bench: BenchEnv = {
    redisUrl: services.redisUrl,
    feishu,
    scanIntervalMs: args.scanIntervalMs,
    quick: args.quick,
    outDir,
    probe: args.probe,
    cpuProf: args.cpuProf,
    workerEnv: args.workerEnv,
  };
  const kinds: StoreKind[] = process.env.MONGODB_URI ? ['mongodb'] : (args.stores ?? (postgresAvailable() ? ['sqlite', 'postgresql'] : ['sqlite']));
  if (!process.env.MONGODB_URI && !args.stores && !kinds.includes('postgresql')) log('PostgreSQL (or Go) not found: FerretDB over SQLite only');

  const results: BenchResults = {
    command,
    quick: args.quick,
    startedAt: new Date(began).toISOString(),
    machine: await machineInfo(services.redisUrl),
    settings: {
      'delivery N': args.n,
      ...(args.only.has('events') ? { 'events N': args.eventsN } : {}),
      ...(args.only.has('priority') ? { 'priority N': args.priorityN } : {}),
      'firing N': args.firing.join(', '),
      'scan sizes': args.scanSizes.join(', '),
      'scan due': args.scanDue,
      SCAN_INTERVAL_MS: args.scanIntervalMs,
      ...args.workerEnv,
      'other dueflow settings': 'defaults (WORKER_CONCURRENCY 50, SCAN_BATCH_SIZE 500, FEISHU_RATE_PER_SECOND 5, FEISHU_RATE_PER_MINUTE 100, LOG_LEVEL info)',
    },
    stores: [],
    delivery: [],
    firing: [],
    firingSkipped: [],
    scan: [],
    agenda: [],
    profiles: [],
    priority: [],
    memory: [],
    events: [],
    plans: {},
  };
  const save = () => {
    results.durationS = Math.round((Date.now() - began) / 1000);
    fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2));
    writeReport(args.out, results);
  };

  try {
    for (const kind of kinds) {
      let store: Store;
      try {
        store = await startStore(kind);
      } catch (err) {
        log(`store ${kind} did not start: ${(err as Error).message}`);
        continue;
      }
      results.stores.push(store.label);
      const plan = planFor(args, kind);
      results.plans[store.label] = plan.note;
      log(`=== ${store.label} === ${plan.note}`);
      try {
        await runStore(bench, store, args, plan, results, save);
      } finally {
        await store.stop();
      }
    }
  } finally {
    save();
    await feishu.server.close();
    await services.stop();
  }
  log(`done in ${Math.round((Date.now() - began) / 1000)} s: ${path.relative(root, args.out)}`);
}

type Args = ReturnType<typeof parseArgs>;
const flagEventsN = (args: Args) => (args.eventsNGiven ? args.eventsN : undefined);

interface StorePlan {
  deliveryN: number;
  /** The delivery again with STORE_GUARDED_UPDATES=atomic (Redis commands without the guard locks); 0: not run */
  atomicN: number;
  eventsN: number;
  writesN: number;
  firing: number[];
  pacedN: number;
  agendaN: number;
  profileN: number;
  /** Runs again with these worker settings (delivery and burst firing) */
  tuned?: Record<string, string>;
  note: string;
}

/**
 * The sizes each store can finish in time. FerretDB over SQLite answers every query but a lone _id
 * lookup with a full scan and serializes its writes, so its runs are smaller (the report says so and
 * projects the rest); it is also run with WORKER_CONCURRENCY 4, which it serves better than 50.
 */
function planFor(args: Args, kind: StoreKind): StorePlan {
  const full: StorePlan = {
    deliveryN: args.n,
    // On MongoDB 'auto' is atomic already: the delivery run is that figure.
    atomicN: kind === 'mongodb' ? 0 : (args.atomicN ?? Math.min(args.n, 2000)),
    eventsN: args.eventsN,
    writesN: Math.min(args.n, 5000),
    firing: args.firing,
    pacedN: args.quick ? 200 : 3000,
    // Agenda locks one job at a time with a query that reads the whole collection on FerretDB: 10,000 take hours there.
    agendaN: kind === 'mongodb' ? Math.min(args.n, args.firing[0] ?? args.n) : Math.min(args.n, args.firing[0] ?? args.n, args.agendaMax),
    profileN: Math.min(args.n, args.quick ? 200 : 2000),
    note: args.quick ? 'quick sizes' : 'full sizes',
  };
  if (kind !== 'sqlite' || args.sqliteFull) return full;
  const cap = args.sqliteMax;
  const capped = (v: number) => Math.min(v, cap);
  return {
    deliveryN: capped(args.n),
    atomicN: capped(args.atomicN ?? Math.min(args.n, 2000)),
    // Events on SQLite: 200 take ~3 min (each event's fan-out and delivery are more full scans).
    eventsN: capped(flagEventsN(args) ?? Math.min(args.eventsN, args.quick ? 100 : 300)),
    writesN: capped(Math.min(args.n, 500)),
    firing: [...new Set(args.firing.map(capped))],
    pacedN: capped(args.quick ? 200 : 500),
    agendaN: capped(Math.min(args.n, args.firing[0] ?? args.n)),
    profileN: Math.min(args.quick ? 200 : 300, cap),
    tuned: { WORKER_CONCURRENCY: '4' },
    note: args.quick
      ? 'quick sizes'
      : `delivery, firing and Agenda N capped at ${cap} (--sqlite-max; --sqlite-full runs the full sizes): larger runs take hours on this store`,
  };
}

async function runStore(bench: BenchEnv, store: Store, args: Args, plan: StorePlan, results: BenchResults, save: () => void): Promise<void> {
  const tunedBench = plan.tuned ? { ...bench, workerEnv: { ...bench.workerEnv, ...plan.tuned } } : undefined;
  const tunedLabel = plan.tuned
    ? Object.entries(plan.tuned)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')
    : undefined;
  if (args.only.has('delivery')) {
    results.delivery.push(await benchDelivery(bench, store, plan.deliveryN, { writesN: plan.writesN }));
    save();
    if (tunedBench) {
      results.delivery.push(await benchDelivery(tunedBench, store, plan.deliveryN, { baseline: false, writesAlone: false, variant: tunedLabel }));
      save();
    }
    if (plan.atomicN) {
      // One worker: FerretDB's non-atomic guarded updates race only between processes, so this is safe here; it shows the Redis cost of the guard locks.
      const atomicBench = { ...bench, workerEnv: { ...bench.workerEnv, STORE_GUARDED_UPDATES: 'atomic' } };
      results.delivery.push(await benchDelivery(atomicBench, store, plan.atomicN, { baseline: false, writesAlone: false, variant: ATOMIC }));
      save();
    }
  }
  if (args.only.has('events')) {
    results.events.push(await benchEvents(bench, store, plan.eventsN));
    save();
  }
  if (args.only.has('priority')) {
    // Critical anomalies during a burst of reminders on the app channel, under the app's real limits.
    results.priority.push(await benchPriority(bench, store, args.priorityN));
    save();
    if (tunedBench) {
      results.priority.push(await benchPriority(tunedBench, store, args.priorityN, { variant: tunedLabel }));
      save();
    }
  }
  if (args.only.has('firing')) {
    let last: FiringRun | undefined;
    for (const n of plan.firing) {
      // On FerretDB each operation reads its whole collection: a run costs up to ~n². Skip what would not finish in time.
      if (last?.seconds && store.kind !== 'mongodb') {
        const projected = last.seconds * (n / last.n) ** 2;
        if (projected > args.maxRunS) {
          const reason = `projected ${Math.round((last.seconds * (n / last.n)) / 60)}–${Math.round(projected / 60)} min from the ${last.n.toLocaleString('en-US')} run (${last.seconds} s): × ${n / last.n} if the cost per job stayed flat, × ${(n / last.n) ** 2} as every FerretDB v1 query but a lone _id lookup reads the whole collection; over --max-run-s=${args.maxRunS}`;
          results.firingSkipped.push({ store: store.label, n, reason });
          log(`firing [${store.label}]: ${n} skipped: ${reason}`);
          continue;
        }
      }
      const r = await benchFiring(bench, store, n, { kind: 'burst' });
      results.firing.push(r);
      save();
      if (r.error) break;
      last = r;
    }
    if (tunedBench && plan.firing[0]) {
      results.firing.push(await benchFiring(tunedBench, store, plan.firing[0], { kind: 'burst' }, tunedLabel));
      save();
    }
    // The target's condition: due jobs arriving at 1,000 per second; and, for contrast, at half what a burst showed.
    results.firing.push(await benchFiring(bench, store, plan.pacedN, { kind: 'paced', rate: 1000 }));
    save();
    const burst = results.firing.find((f) => f.store === store.label && f.kind === 'burst' && !f.variant && f.jobsPerSecond);
    if (burst?.jobsPerSecond) {
      const rate = Math.max(1, Math.floor(burst.jobsPerSecond / 2));
      const n = Math.max(30, Math.min(plan.pacedN, rate * (args.quick ? 20 : 60)));
      results.firing.push(await benchFiring(bench, store, n, { kind: 'paced', rate }));
      save();
    }
  }
  if (args.only.has('scan')) {
    results.scan.push(await benchScan(bench, store, args.scanSizes, args.scanDue, args.scanBudgetS));
    save();
  }
  if (args.only.has('agenda')) {
    const a = await benchAgenda(bench, store, plan.agendaN);
    results.agenda.push(a);
    save();
    if (
      !results.firing.some((f) => f.store === store.label && f.kind === 'burst' && !f.variant && f.n === plan.agendaN && f.seconds) &&
      args.only.has('firing')
    ) {
      results.firing.push(await benchFiring(bench, store, plan.agendaN, { kind: 'burst' }));
      save();
    }
  }
  if (args.only.has('profile') && !args.cpuProf) {
    // Where the worker's CPU goes: the same runs, smaller, under --cpu-prof.
    const n = plan.profileN;
    const profBench = { ...bench, cpuProf: true };
    const d = await benchDelivery(profBench, store, n, { baseline: false, writesAlone: false, variant: 'cpu-prof' });
    results.profiles.push({
      store: store.label,
      what: 'delivery',
      n,
      perSecond: d.dueflow?.perSecond,
      cpu: d.dueflow?.cpuProfile ? summarizeCpuProfile(d.dueflow.cpuProfile) : undefined,
      probe: d.dueflow?.probe,
      error: d.error,
    });
    const f = await benchFiring(profBench, store, n, { kind: 'burst' }, 'cpu-prof');
    results.profiles.push({
      store: store.label,
      what: 'firing (burst)',
      n,
      perSecond: f.jobsPerSecond,
      cpu: f.cpuProfile ? summarizeCpuProfile(f.cpuProfile) : undefined,
      probe: f.probe,
      error: f.error,
    });
    save();
  }
  if (args.only.has('profile') && (args.heapCap || peakRssMiB(results, store.label) >= RSS_LIMIT_MIB * 0.95)) {
    // Peak RSS near the limit: mostly V8's heap headroom (it collects lazily on a 24 GB machine)? The same firing with the old space capped.
    const n = plan.profileN;
    const heap = '--max-old-space-size=128';
    const before = await benchFiring(bench, store, n, { kind: 'burst' }, 'heap before');
    const capped = await benchFiring({ ...bench, workerEnv: { ...bench.workerEnv, NODE_OPTIONS: heap } }, store, n, { kind: 'burst' }, `NODE_OPTIONS=${heap}`);
    results.memory.push({
      store: store.label,
      n,
      setting: `NODE_OPTIONS=${heap}`,
      peakBefore: before.proc?.peakRssMiB,
      peakAfter: capped.proc?.peakRssMiB,
      rateBefore: before.jobsPerSecond,
      rateAfter: capped.jobsPerSecond,
      error: capped.error ?? before.error,
    });
    save();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
