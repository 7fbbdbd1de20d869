// `BENCH_OTHER=<path to another build's dist/main.js> node test/bench/build-ab.ts`:
// this build against another one (e.g. a worktree of an older commit), same
// env (local allow-all policy, no identity), throughput of the 1 KB JSON
// completion and the 20-chunk SSE stream at c16 and c64, rounds alternating
// which build goes first. The figure is the median of per-round ratios
// (this ÷ other). Not part of the suite. Knobs: BENCH_SECONDS (default 3),
// BENCH_ROUNDS (default 5), BENCH_THIS_ENV (JSON of extra env for this build,
// e.g. '{"FIRSTOPS_USAGE_METRICS":"off"}' to isolate a feature's cost).
import { join } from 'node:path';
import { LOAD_CORE, ROOT, setUp, stop, watchdog } from './procs.ts';
import { median, throughput, type Request } from './load.ts';

const OTHER = process.env.BENCH_OTHER;
if (!OTHER) throw new Error('set BENCH_OTHER to the other build\'s dist/main.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
watchdog(10 * 60_000);

const bench = await setUp();
const builds = {
  this: await bench.startSidecar({ ...bench.localEnv, ...(JSON.parse(process.env.BENCH_THIS_ENV ?? '{}') as Record<string, string>) }, [], join(ROOT, 'dist/main.js')),
  other: await bench.startSidecar(bench.localEnv, [], OTHER),
};
const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise: '.concat('Lorem ipsum dolor sit amet. '.repeat(30)) }] };
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const kinds = {
  json: JSON.stringify(CHAT),
  sse: JSON.stringify({ ...CHAT, stream: true }),
};
const rps: Record<string, { this: number[]; other: number[] }> = {};
for (let round = 0; round < ROUNDS + 1; round++) {
  for (const [kind, body] of Object.entries(kinds)) {
    for (const connections of [16, 64]) {
      const key = `${kind} c${connections}`;
      const order = round % 2 === 0 ? (['this', 'other'] as const) : (['other', 'this'] as const);
      for (const side of order) {
        const req: Request = { url: `http://127.0.0.1:${builds[side].port}/llm/openai/v1/chat/completions`, body, headers: HEADERS };
        const r = await throughput(req, { connections, seconds: round === 0 ? 1 : SECONDS, core: LOAD_CORE, scratch: bench.scratch });
        if (r.errors > 0) throw new Error(`${key} ${side}: ${r.errors} errors`);
        // Round 0 warms both up and is not counted.
        if (round > 0) ((rps[key] ??= { this: [], other: [] })[side]).push(r.rps);
      }
    }
  }
  process.stderr.write(`round ${round}/${ROUNDS}\n`);
}
await Promise.all([stop(builds.this.child), stop(builds.other.child)]);
await bench.close();
console.log(`| figure | this (req/s) | other (req/s) | this ÷ other (median of per-round ratios) |\n|---|---:|---:|---:|`);
for (const [key, v] of Object.entries(rps)) {
  const ratios = v.this.map((x, i) => x / v.other[i]!);
  console.log(`| ${key} | ${median(v.this).toFixed(0)} | ${median(v.other).toFixed(0)} | ${(median(ratios) * 100).toFixed(1)}% |`);
}
