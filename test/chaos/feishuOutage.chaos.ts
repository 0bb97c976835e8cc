/**
 * Scenario 6: Feishu unreachable for 20 s (the Feishu-compatible server stops listening), then
 * answering 11232 ("frequency limited") for a while. Every message must arrive after, none dead.
 *
 * Why these tunables: a refused connection is a temporary failure that spends an attempt, so the
 * attempts must outlast the outage. With NOTIFY_ATTEMPTS 8 and a backoff of 1 s doubling to at
 * most 8 s (jitter -20%..+20%), the 8th attempt comes at least 0.8+1.6+3.2+6.4*4 = 31.2 s after
 * the first failed one: past the 20 s outage with margin. 11232 spends no attempt (the webhook
 * pauses 1-2 s and the job is delayed), so the rate-limited phase cannot exhaust anything.
 */
import { ChaosRun, expectDelivered, sleep } from './scenario';

let run: ChaosRun | undefined;
afterAll(async () => {
  await run?.cleanup();
});

const outageMs = 20_000;
const rateLimitedAnswers = 150;

test('Feishu down 20 s, then answering 11232: all delivered after, none dead', async () => {
  run = await ChaosRun.start({
    scenario: '6 Feishu down 20 s + 11232',
    env: { NOTIFY_ATTEMPTS: '8', NOTIFY_BACKOFF_MS: '1000', NOTIFY_BACKOFF_MAX_MS: '8000' },
  });
  await run.submitAll();
  await Promise.all([run.startWorker(), run.startWorker()]);

  await run.waitForReceived(0.3);
  const inFlight = await run.inFlight();
  await run.feishu.down();
  const receivedAtDown = run.feishu.messages.length;
  run.log(`Feishu down at ${receivedAtDown} received; in flight ${JSON.stringify(inFlight)}`);
  await sleep(outageMs);
  const refusedDuring = run.workerLogs().filter((l) => l.msg === 'delivery attempt' && l.code === 'network_error').length;
  run.feishu.failNext(rateLimitedAnswers, { code: 11232 });
  await run.feishu.up();
  run.log(
    `Feishu up after ${outageMs / 1000} s (${refusedDuring} attempts met a refused connection), answering 11232 to the next ${rateLimitedAnswers} requests`,
  );
  expect(run.feishu.messages.length).toBe(receivedAtDown);
  expect(refusedDuring).toBeGreaterThan(0);

  const result = await run.finish(`Feishu down ${outageMs / 1000} s, then ${rateLimitedAnswers} answers 11232`, inFlight);
  run.log(`11232 / 429 answers: ${run.feishu.rateLimitedCount}`);
  expect(run.feishu.rateLimitedCount).toBeGreaterThanOrEqual(rateLimitedAnswers);
  expectDelivered(result);
});
