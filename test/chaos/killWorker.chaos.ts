/**
 * Scenario 1: `kill -9` of a worker process mid-delivery; a new worker is started.
 * Its active jobs come back through BullMQ's stall check (lock 30 s) and the record's `sending`
 * lease (30 s): a message Feishu accepted just before the kill may arrive twice, nothing is lost.
 */
import { ChaosRun, expectDelivered } from './scenario';

let run: ChaosRun | undefined;
afterAll(async () => {
  await run?.cleanup();
});

test('kill -9 of a worker mid-delivery: all sent, duplicates within what was in flight', async () => {
  run = await ChaosRun.start({ scenario: '1 kill -9 worker' });
  await run.submitAll();
  const [victim] = await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  run.expectExit(victim);
  victim.kill('SIGKILL');
  expect(await victim.waitForExit(5_000)).toEqual({ code: null, signal: 'SIGKILL' });
  run.log(`killed worker ${victim.child.pid} at ${run.feishu.messages.length} received; in flight ${JSON.stringify(inFlight)}`);
  await run.startWorker(); // the dyno manager starts a new one

  const result = await run.finish('kill -9 of 1 of 2 workers, new worker started', inFlight);
  expectDelivered(result);
});
