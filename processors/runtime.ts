/**
 * What each mode starts: `api` the HTTP server, `worker` the processors and job schedulers,
 * `all` both. `stop()` is the graceful shutdown: no new requests or jobs, active jobs finish
 * (or are handed back to the queue when time runs out), connections closed.
 */
import http from 'node:http';
import type { Worker } from 'bullmq';
import type { AppContext } from '../src/context';
import { closeContext } from '../src/context';
import { createApp } from '../src/http/app';
import { startWorkers, type StartedWorkers } from './index';
import { upsertJobSchedulers } from '../queues/schedulers';

export interface Running {
  /** The HTTP port, in api and all modes. */
  port?: number;
  workers: Worker[];
  stop(): Promise<void>;
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve((server.address() as { port: number }).port));
  });
}

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

export async function startDueflow(ctx: AppContext, mode: AppContext['config']['DUEFLOW_MODE']): Promise<Running> {
  const { config, logger } = ctx;
  let server: http.Server | undefined;
  let port: number | undefined;
  let workers: Worker[] = [];
  let relay: StartedWorkers['relay'] | undefined;

  let schedulerRefresh: NodeJS.Timeout | undefined;
  if (mode === 'worker' || mode === 'all') {
    ({ workers, relay } = await startWorkers(ctx));
    // Job schedulers live in Redis: if Redis loses them (a flush, a restart without persistence),
    // putting them back here keeps the scanner and the reconciler running. Upserting is idempotent.
    schedulerRefresh = setInterval(() => {
      upsertJobSchedulers(ctx).catch((err) => logger.warn({ err: (err as Error).message }, 'could not refresh job schedulers'));
    }, config.RECONCILE_INTERVAL_MS);
    schedulerRefresh.unref();
  }
  if (mode === 'api' || mode === 'all') {
    server = http.createServer(createApp(ctx));
    port = await listen(server, config.PORT);
  }
  logger.info({ mode, port, workers: workers.map((w) => w.name) }, 'dueflow started');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const started = Date.now();
      logger.info('shutting down: no new requests or jobs');
      clearInterval(schedulerRefresh);
      const httpClosed = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve();
      server?.closeIdleConnections();

      const stillOpen = new Set(workers.map((w) => w.name));
      const workersClosed = Promise.all(
        workers.map((w) =>
          w.close().then(() => {
            stillOpen.delete(w.name);
          }),
        ),
      );
      if ((await Promise.race([workersClosed, timeout(config.SHUTDOWN_TIMEOUT_MS)])) === 'timeout') {
        // Out of time: drop the workers' connections and leave. Their unfinished jobs keep a lock that
        // expires, and BullMQ's stall check hands them to another worker. (`close(true)` cannot do
        // this: after `close()` it returns the same promise, which waits for the jobs.)
        logger.warn({ workers: [...stillOpen] }, 'active jobs did not finish in time; leaving them to the stall check');
        await Promise.race([Promise.all(workers.map((w) => w.disconnect().catch(() => undefined))), timeout(2000)]);
      }
      // After the workers: their last deliveries' ends are relayed (or left to the reconcile) before the connections close.
      await relay?.stop();
      server?.closeAllConnections();
      await httpClosed;
      await closeContext(ctx);
      logger.info({ ms: Date.now() - started }, 'shut down');
    })());

  return { port, workers, stop };
}
