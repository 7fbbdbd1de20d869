// npm run soak: several minutes of sustained mixed load against the built
// sidecar. SOAK_MINUTES (default 5), SOAK_RATE requests/s (default 100),
// SOAK_SSE_SHARE (0.4), SOAK_ABORT_SHARE (0.1). Exits 1 on any error beyond
// the injected aborts, a memory or fd growth trend, or an unclean exit.
import { runSoak } from './soak.ts';
import { judge } from './judge.ts';

const minutes = Number(process.env.SOAK_MINUTES ?? 5);
const report = await runSoak({
  durationMs: minutes * 60_000,
  rate: Number(process.env.SOAK_RATE ?? 100),
  sseShare: Number(process.env.SOAK_SSE_SHARE ?? 0.4),
  abortShare: Number(process.env.SOAK_ABORT_SHARE ?? 0.1),
  warmupMs: Math.min(30_000, minutes * 60_000 / 5),
  sampleEveryMs: 5_000,
  log: (line) => console.log(line),
});
const verdict = judge(report);
console.log(JSON.stringify({ ...report, samples: report.samples.length, errors: report.errors.slice(0, 20), sidecarErrors: report.sidecarErrors.slice(0, 20) }, null, 2));
for (const problem of verdict) console.error(`FAIL: ${problem}`);
console.log(verdict.length ? 'soak failed' : 'soak passed');
process.exit(verdict.length ? 1 : 0);
