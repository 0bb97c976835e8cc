/**
 * Events: what dueflow tells the host product, pushed to one local endpoint.
 *
 * 1. The delivery of `delivery.ts`, N notifications, twice with one worker each: without any
 *    webhook endpoint, then with one endpoint subscribed to `notification.sent` (created with
 *    createEndpoint, what POST /api/v1/webhook-endpoints calls, in the bench's producer context)
 *    at a URL of a small HTTP server in the bench process that checks each request's Standard
 *    Webhooks signature, counts the events by webhook-id and answers 200. Notifications per second
 *    (first request → last message accepted), events per second (first request → last event
 *    received), and the worker's probe in both runs: their difference per message is the worker's
 *    cost of one delivered event (the fan-out, the job, the delivery's ledger).
 * 2. The added cost of a confirmed preview: previews made the way test/previews.test.ts makes
 *    them (a task, working hours all day, a trigger through createTrigger; the worker's workflow
 *    writes the preview), each confirmed with confirmPreview (POST /api/v1/previews/:id/confirm)
 *    while the driver's command monitoring counts its MongoDB commands: with no endpoint, then with
 *    one endpoint subscribed to `preview.confirmed`.
 * The worker runs with the defaults (EVENT_RELAY_INTERVAL_MS 1 s, EVENT_ENDPOINT_CONCURRENCY 4…)
 * and WEBHOOK_ALLOW_LOOPBACK=true, which an endpoint on 127.0.0.1 needs.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { AppContext } from '../../src/context';
import { createEndpoint } from '../../src/events/endpoints';
import { endpointBodySchemas } from '../../src/events/schemas';
import type { EventType } from '../../src/events/types';
import { confirmPreview } from '../../src/previews/answer';
import { createTrigger } from '../../src/triggers/create';
import type { BenchEnv, ProcStats, RunSpace, Store } from './common';
import { commandCounter, log, round, runSpace, sleep, waitUntil } from './common';
import { benchDelivery, type DueflowDelivery } from './delivery';

interface EventsDelivery {
  perSecond: number;
  mongoPerMessage?: number;
  redisPerMessage?: number;
  proc: ProcStats;
}

export interface EventsRun {
  store: string;
  n: number;
  /** The delivery without any endpoint */
  without?: EventsDelivery;
  /** The delivery with one endpoint subscribed to notification.sent */
  with?: EventsDelivery & {
    /** Events received (unique webhook-ids), from the first request to the last one */
    events: number;
    eventsSeconds?: number;
    eventsPerSecond?: number;
    /** The same webhook-id received again */
    duplicates: number;
    badSignatures: number;
  };
  /** The worker's added cost of one delivered event: (with − without) / N */
  perEvent?: { mongo?: number; redis?: number; topShapes?: Array<{ shape: string; perMessage: number }> };
  preview?: {
    /** MongoDB commands of each confirm */
    without: number[];
    with: number[];
    /** The commands of the last confirm of each kind, by command */
    byCommandWithout: Record<string, number>;
    byCommandWith: Record<string, number>;
    /** preview.confirmed events the endpoint received */
    delivered: number;
  };
  previewError?: string;
  settings: Record<string, string | number>;
  error?: string;
}

/** The bench's webhook receiver: one path per endpoint, signatures checked, events counted by webhook-id. */
interface Receiver {
  url(path: string): string;
  /** Starts counting requests to `path`, verified with `secret` */
  expect(path: string, secret: string): void;
  stats(path: string): { unique: number; duplicates: number; badSignatures: number; lastAt: number; byType: Record<string, number> };
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const paths = new Map<string, { hook: Webhook; ids: Set<string>; duplicates: number; badSignatures: number; lastAt: number; byType: Map<string, number> }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = paths.get(req.url ?? '');
      if (p) {
        const body = Buffer.concat(chunks).toString();
        try {
          const event = p.hook.verify(body, req.headers as Record<string, string>) as { type?: string };
          const id = String(req.headers['webhook-id']);
          if (p.ids.has(id)) p.duplicates += 1;
          else {
            p.ids.add(id);
            p.lastAt = Date.now();
            p.byType.set(event.type ?? '?', (p.byType.get(event.type ?? '?') ?? 0) + 1);
          }
        } catch {
          p.badSignatures += 1;
        }
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    expect: (path, secret) =>
      void paths.set(path, { hook: new Webhook(secret), ids: new Set(), duplicates: 0, badSignatures: 0, lastAt: 0, byType: new Map() }),
    stats: (path) => {
      const p = paths.get(path);
      return {
        unique: p?.ids.size ?? 0,
        duplicates: p?.duplicates ?? 0,
        badSignatures: p?.badSignatures ?? 0,
        lastAt: p?.lastAt ?? 0,
        byType: Object.fromEntries(p?.byType ?? []),
      };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An endpoint as POST /api/v1/webhook-endpoints creates it (its body checked by the route's schema), counted by the receiver. */
async function addEndpoint(ctx: AppContext, receiver: Receiver, path: string, events: EventType[]): Promise<void> {
  const body = endpointBodySchemas(ctx.config).create.parse({ url: receiver.url(path), events, description: `bench ${path}` });
  const created = await createEndpoint(ctx, body);
  receiver.expect(path, created.secret);
}

const summary = (d: DueflowDelivery): EventsDelivery => ({
  perSecond: d.perSecond,
  mongoPerMessage: d.probe?.mongoPerMessage,
  redisPerMessage: d.probe?.redisPerMessage,
  proc: d.proc,
});

export async function benchEvents(bench: BenchEnv, store: Store, n: number, opts: { previews?: number } = {}): Promise<EventsRun> {
  const config = runSpace(bench, store, 'x').config;
  const run: EventsRun = {
    store: store.label,
    n,
    settings: {
      EVENT_RELAY_INTERVAL_MS: config.EVENT_RELAY_INTERVAL_MS,
      EVENT_ENDPOINT_CONCURRENCY: config.EVENT_ENDPOINT_CONCURRENCY,
      EVENT_WORKER_CONCURRENCY: config.EVENT_WORKER_CONCURRENCY,
    },
  };
  const receiver = await startReceiver();
  const tag = `/hooks/${store.kind}-${Date.now() % 1_000_000}`;
  const previews = opts.previews ?? 3;
  try {
    // 1a. Without an endpoint; then, the worker still running, the previews' confirms.
    const a = await benchDelivery(bench, store, n, {
      baseline: false,
      writesAlone: false,
      variant: 'events: no endpoint',
      hooks: {
        beforeStop: async (ctx, space) => {
          try {
            run.preview = await measurePreviews(ctx, space, receiver, `${tag}/previews`, previews);
          } catch (err) {
            run.previewError = (err as Error).message.split('\n')[0];
            log(`events [preview]: ${run.previewError}`);
          }
        },
      },
    });
    if (a.dueflow) run.without = summary(a.dueflow);
    // 1b. With one endpoint subscribed to notification.sent; the window waits for every event.
    const path = `${tag}/sent`;
    let t0 = 0;
    const b = await benchDelivery(bench, store, n, {
      baseline: false,
      writesAlone: false,
      variant: 'events: one endpoint',
      hooks: {
        beforeWorker: (ctx) => addEndpoint(ctx, receiver, path, ['notification.sent']),
        afterSent: async (_ctx, started) => {
          t0 = started;
          log(`events [${store.label}]: waiting for ${n} notification.sent events at the endpoint`);
          await waitUntil('events received', () => receiver.stats(path).unique, n, { stallMs: 120_000 });
        },
      },
    });
    const got = receiver.stats(path);
    if (b.dueflow) {
      const eventsSeconds = got.lastAt && t0 ? (got.lastAt - t0) / 1000 : undefined;
      run.with = {
        ...summary(b.dueflow),
        events: got.unique,
        eventsSeconds: eventsSeconds === undefined ? undefined : round(eventsSeconds, 2),
        eventsPerSecond: eventsSeconds ? round(got.unique / eventsSeconds, 1) : undefined,
        duplicates: got.duplicates,
        badSignatures: got.badSignatures,
      };
      const pa = a.dueflow?.probe;
      const pb = b.dueflow.probe;
      if (pa && pb) {
        const events = (p: typeof pb) => p.groups?.find((g) => g.group.startsWith('events'))?.perMessage ?? 0;
        run.perEvent = {
          mongo: round(pb.mongoPerMessage - pa.mongoPerMessage, 2),
          redis: round(pb.redisPerMessage - pa.redisPerMessage, 2),
          topShapes: pb.topShapes?.filter((s) => /^\S+ (events|event_deliveries|webhook_endpoints)\b/.test(s.shape)).slice(0, 6),
        };
        log(
          `events [${store.label}]: ${got.unique} events in ${run.with.eventsSeconds} s = ${run.with.eventsPerSecond}/s; worker per event +${run.perEvent.mongo} MongoDB (events commands ${events(pa)} → ${events(pb)} per message), +${run.perEvent.redis} Redis`,
        );
      }
    }
    const errors = [a.error, b.error].filter(Boolean);
    if (errors.length) run.error = errors.join('; ');
  } catch (err) {
    run.error = (err as Error).message.split('\n')[0];
    log(`events [${store.label}]: ${run.error}`);
  } finally {
    await receiver.close();
  }
  return run;
}

/**
 * `k` ready previews (one user each, no channel: their notifications are skipped), confirmed one by
 * one with their MongoDB commands counted; then an endpoint subscribed to preview.confirmed and `k` more.
 */
async function measurePreviews(ctx: AppContext, space: RunSpace, receiver: Receiver, path: string, k: number): Promise<NonNullable<EventsRun['preview']>> {
  log(`events [preview]: ${2 * k} previews through the workflow`);
  const ready = await Promise.all(Array.from({ length: 2 * k }, (_, i) => readyPreview(ctx, `bench-preview-user-${i}`)));
  const counter = await commandCounter(space);
  const monitored = { ...ctx, models: counter.models };
  const confirm = async (p: { userId: string; previewId: string }) => {
    counter.start();
    const outcome = await confirmPreview(monitored, { userId: p.userId, previewId: p.previewId, via: 'api' });
    const counts = counter.counts();
    if (outcome.kind !== 'confirmed' || outcome.replayed)
      throw new Error(`preview ${p.previewId}: ${outcome.kind}${'replayed' in outcome && outcome.replayed ? ' (replayed)' : ''}`);
    return counts;
  };
  try {
    const without: Array<ReturnType<typeof counter.counts>> = [];
    for (const p of ready.slice(0, k)) without.push(await confirm(p));
    await addEndpoint(ctx, receiver, path, ['preview.confirmed']);
    const withOne: Array<ReturnType<typeof counter.counts>> = [];
    for (const p of ready.slice(k)) withOne.push(await confirm(p));
    const delivered = await waitFor(30_000, () => receiver.stats(path).unique >= k);
    const out = {
      without: without.map((c) => c.total),
      with: withOne.map((c) => c.total),
      byCommandWithout: without[without.length - 1]?.byCommand ?? {},
      byCommandWith: withOne[withOne.length - 1]?.byCommand ?? {},
      delivered: receiver.stats(path).unique,
    };
    log(
      `events [preview]: a confirm costs ${out.without.join(', ')} MongoDB commands without an endpoint, ${out.with.join(', ')} with one subscribed (${out.delivered}/${k} preview.confirmed received${delivered ? '' : ' within 30 s'})`,
    );
    return out;
  } finally {
    await counter.close();
  }
}

async function waitFor(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

/** A ready preview as test/previews.test.ts gets one: a task, working hours all day, a trigger; the worker's workflow writes the preview. */
async function readyPreview(ctx: AppContext, userId: string): Promise<{ userId: string; previewId: string }> {
  const task = await ctx.models.tasks.create({
    userId,
    title: 'Draft the proposal',
    priority: 1,
    estimatedMinutes: 60,
    deadline: new Date(Date.now() + 30 * 3600_000),
  });
  await ctx.models.userSettings.create({ userId, timeZone: 'UTC', workingHours: { start: '00:00', end: '23:59' }, language: 'en' });
  const { trigger } = await createTrigger(ctx, {
    userId,
    type: 'important_urgent_task',
    source: 'api_trigger',
    target: { type: 'task', id: String(task._id) },
    at: new Date(),
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const t = await ctx.models.triggers.findById(trigger._id).lean<{ status: string; previewId?: string }>();
    if (t && t.status !== 'pending' && t.status !== 'processing') {
      if (t.status !== 'preview_generated' || !t.previewId) throw new Error(`trigger of ${userId} ended ${t.status}, no preview`);
      return { userId, previewId: t.previewId };
    }
    if (Date.now() > deadline) throw new Error(`trigger of ${userId}: no preview within 120 s`);
    await sleep(250);
  }
}
