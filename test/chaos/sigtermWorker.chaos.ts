/**
 * Scenario 2: SIGTERM of a worker mid-delivery, as a dyno restart sends it. The worker stops
 * taking jobs, lets its active ones finish (or hands them back after SHUTDOWN_TIMEOUT_MS) and
 * exits 0 well within Heroku's 30 s; the other worker delivers the rest.
 */
import { ChaosRun, expectDelivered } from './scenario';

let run: ChaosRun | undefined;
afterAll(async () => {
  await run?.cleanup();
});

test('SIGTERM of a worker mid-delivery: exits 0 within 25 s, nothing lost', async () => {
  run = await ChaosRun.start({ scenario: '2 SIGTERM worker' });
  await run.submitAll();
  const [victim] = await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  run.expectExit(victim);
  const signalled = Date.now();
  victim.kill('SIGTERM');
  const exit = await victim.waitForExit(25_000);
  const exitSeconds = (Date.now() - signalled) / 1000;
  run.log(
    `worker ${victim.child.pid} got SIGTERM at ${run.feishu.messages.length} received, exited ${JSON.stringify(exit)} after ${exitSeconds.toFixed(1)} s; in flight ${JSON.stringify(inFlight)}`,
  );
  const gaveUp = victim.output.find((l) => l.includes('did not finish in time'));
  if (gaveUp) run.log(`it left jobs to the stall check: ${gaveUp}`);
  if (exit.code !== 0)
    run.log(
      `its last lines:\n${victim.output
        .filter((l) => !l.includes('"delivery attempt"'))
        .slice(-25)
        .join('\n')}`,
    );
  expect(exit).toEqual({ code: 0, signal: null });
  expect(exitSeconds).toBeLessThan(25);
  expect(victim.output.some((l) => l.includes('"shut down"'))).toBe(true);

  const result = await run.finish(`SIGTERM of 1 of 2 workers, exit 0 after ${exitSeconds.toFixed(1)} s`, inFlight);
  expectDelivered(result);
});
