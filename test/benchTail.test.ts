/** The bench's account of a paced run's lateness tail (scripts/bench/firing.ts latenessTail): pure, no services. */
import { latenessTail } from '../scripts/bench/firing';

test('names the slowest second after the warm-up, the background jobs that overlapped it, and the warm p99', () => {
  const t0 = 1_000_000;
  // 10 jobs a second for 10 s: 50 ms late, but 400 ms in the first second and 300–390 ms in second 6.
  const due = Array.from({ length: 100 }, (_, i) => t0 + i * 100);
  const lateS = due.map((_, i) => (i < 10 ? 0.4 : i >= 60 && i < 70 ? 0.3 + (i - 60) / 100 : 0.05));
  const jobs = [
    { job: 'scan', start: t0 + 1000, end: t0 + 1300 },
    { job: 'reconcile', start: t0 + 5900, end: t0 + 7200 },
    { job: 'scan', start: t0 + 6000, end: t0 + 6900 },
    { job: 'scan', start: t0 + 9000, end: t0 + 9100 },
  ];
  const tail = latenessTail({ due, lateS, jobs, warmupS: 1 })!;
  expect(tail.cold).toEqual({ n: 10, p50: 0.4, max: 0.4 });
  expect(tail.worst).toMatchObject({ fromS: 6, n: 10, max: 0.39 });
  expect(tail.during.map((d) => [d.job, d.atS, d.tookS])).toEqual([
    ['reconcile', 5.9, 1.3],
    ['scan', 6, 0.9],
  ]);
  expect(tail.warmP99).toBeCloseTo(0.39, 5);
});
