/**
 * Agenda's side of measurement 4, as its own process: Agenda 6 with @agendajs/mongo-backend on
 * the same MongoDB-compatible server, one job type whose handler POSTs one message (undici,
 * keep-alive) to the Feishu-compatible server. Env: MONGODB_URI (with the database),
 * PROCESS_EVERY_MS, CONCURRENCY (also its lock limit). Prints "ready" once it polls.
 */
import { Agenda } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { Agent, fetch } from 'undici';

const agent = new Agent({ keepAliveTimeout: 30_000 });
const concurrency = Number(process.env.CONCURRENCY ?? 50);

async function main(): Promise<void> {
  const agenda = new Agenda({
    backend: new MongoBackend({ address: process.env.MONGODB_URI!, options: { retryWrites: false } }),
    processEvery: Number(process.env.PROCESS_EVERY_MS ?? 1000),
    maxConcurrency: concurrency,
    defaultConcurrency: concurrency,
    // Without a lock limit Agenda locks the whole backlog, one findOneAndUpdate at a time, before it
    // runs any (2,000 due jobs on FerretDB: nothing ran within 3 minutes).
    lockLimit: concurrency,
    defaultLockLimit: concurrency,
  });
  agenda.define('post-message', async (job) => {
    const { url, body } = job.attrs.data as { url: string; body: string };
    const res = await fetch(url, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body,
      signal: AbortSignal.timeout(5000),
    });
    const answer = (await res.json()) as { code?: number };
    if (answer.code !== 0) throw new Error(`Feishu answered ${res.status} code ${answer.code}`);
  });
  agenda.on('error', (err: Error) => process.stderr.write(`agenda error: ${err.message}\n`));
  await agenda.start();
  process.stdout.write('ready\n');
  const stop = () =>
    void agenda.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`agenda worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
