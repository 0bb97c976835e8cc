/**
 * Scenario 5: the MongoDB-compatible server (a FerretDB of this test's own) killed mid-delivery,
 * down for 10 s, started again on the same port and data directory. Processes must ride it out
 * (the driver reconnects; jobs that fail meanwhile are retried), and nothing may be lost.
 */
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { freePort, startFerretDB } from '../../scripts/services';
import { ChaosRun, expectDelivered, sleep, tempDir } from './scenario';

let run: ChaosRun | undefined;
let ferret: { uri: string; port: number; child: ChildProcess } | undefined;
let dir: string | undefined;

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

afterAll(async () => {
  if (dir && ferret && (ferret.child.exitCode !== null || ferret.child.signalCode !== null)) ferret = await startFerretDB(dir, ferret.port); // so cleanup can drop the database
  await run?.cleanup();
  if (ferret) await stop(ferret.child, 'SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('MongoDB-compatible server down for 10 s mid-delivery: processes stay up, all sent', async () => {
  dir = tempDir('ferretdb');
  ferret = await startFerretDB(dir, await freePort());
  run = await ChaosRun.start({ scenario: '5 MongoDB down 10 s', env: { MONGODB_URI: ferret.uri } });
  await run.submitAll();
  await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  await stop(ferret.child, 'SIGKILL');
  run.log(`FerretDB killed at ${run.feishu.messages.length} received; in flight ${JSON.stringify(inFlight)}`);
  await sleep(10_000);
  expect(run.crashed()).toHaveLength(0);
  ferret = await startFerretDB(dir, ferret.port);
  run.log(`FerretDB back at ${run.feishu.messages.length} received`);

  const result = await run.finish('FerretDB killed (SIGKILL), down 10 s, restarted on the same port and data', inFlight);
  expect(run.runningWorkers()).toHaveLength(2);
  expectDelivered(result);
});
