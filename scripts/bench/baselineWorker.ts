/**
 * The raw BullMQ baseline's worker process: one queue, one Worker, each job POSTs its body to its
 * URL (the same Feishu-compatible server, the same bodies as dueflow's, no signature) with
 * undici's keep-alive agent. No records, no dedupe, no rate limiter, no locks.
 * Env: REDIS_URL, QUEUE_PREFIX, WORKER_CONCURRENCY. Prints "ready" once it takes jobs.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, fetch } from 'undici';

const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const agent = new Agent({ keepAliveTimeout: 30_000 });

const worker = new Worker(
  'baseline',
  async (job) => {
    const { url, body } = job.data as { url: string; body: string };
    const res = await fetch(url, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body,
      signal: AbortSignal.timeout(5000),
    });
    const answer = (await res.json()) as { code?: number };
    if (answer.code !== 0) throw new Error(`Feishu answered ${res.status} code ${answer.code}`);
    return { code: 0 };
  },
  { connection, prefix: process.env.QUEUE_PREFIX, concurrency: Number(process.env.WORKER_CONCURRENCY ?? 50) },
);

void worker.waitUntilReady().then(() => process.stdout.write('ready\n'));
const stop = () =>
  void worker.close().then(() => {
    connection.disconnect();
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
