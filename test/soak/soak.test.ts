// The soak, shortened for CI (SOAK_CI_SECONDS, default 25): the built sidecar
// under a sustained mix of JSON and SSE with random client aborts. No error
// beyond the injected aborts, a flat post-GC heap floor, flat descriptors,
// bounded RSS, nothing of the requests in its log, exit 0 on SIGTERM.
// The long run is `npm run soak` (SOAK_MINUTES, default 5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from './soak.ts';
import { heapFloorSlope, judge } from './judge.ts';

const seconds = Number(process.env.SOAK_CI_SECONDS ?? 25);

test(`soak for ${seconds} s: no errors beyond the injected, memory and descriptors flat`, { timeout: (seconds + 60) * 1000 }, async () => {
  const report = await runSoak({ durationMs: seconds * 1000, rate: 80, sseShare: 0.4, abortShare: 0.1, warmupMs: 5_000, sampleEveryMs: 1_000 });
  // 25 s holds one or two major GCs at most, so the heap floor is compared
  // between the two halves with a coarse bound (a gross leak only); the
  // leak-sensitive verdict is the long `npm run soak` (30 s windows).
  const half = Math.floor(report.samples.length / 2);
  const problems = judge(report, { heapFloorBytesPerMin: Number.POSITIVE_INFINITY, rssMaxBytes: 512 * 2 ** 20, fdsPerMin: 120, floorWindow: half });
  const floor = (part: typeof report.samples): number => Math.min(...part.map((s) => s.heap));
  const growth = floor(report.samples.slice(half)) - floor(report.samples.slice(0, half));
  if (growth > 24 * 2 ** 20) problems.push(`post-GC heap floor grew ${(growth / 2 ** 20).toFixed(1)} MiB between the halves`);
  console.log(`# soak: ${report.started} started, ${report.ok} ok, ${report.injectedAborts} aborted on purpose; heap floor ${(growth / 2 ** 20).toFixed(1)} MiB between halves (${(heapFloorSlope(report, half) / 2 ** 20).toFixed(1)} MiB/min), RSS ${(report.slopes.rssBytesPerMin / 2 ** 20).toFixed(1)} MiB/min, fds ${report.slopes.fdsPerMin.toFixed(1)}/min`);
  assert.deepEqual(problems, []);
  assert.ok(report.samples.length >= 10);
});
