// `npm run bench:usage`: the cost of usage metering, as an A/B of two
// otherwise identical local-policy sidecars (FIRSTOPS_USAGE_METRICS=on and
// off) in one run. Each round measures both, in alternating order, back to
// back, so slow drift on a shared machine hits both sides alike; the figure
// is the median of the per-round ratios. Throughput (wrk) and the sidecar's
// CPU seconds per 1,000 requests, for the 1 KB JSON completion and the
// 20-chunk SSE stream (with `"usage":null` on every chunk and a final usage
// chunk, as OpenAI streams with include_usage). Knobs: BENCH_SECONDS (per
// measurement, default 2), BENCH_ROUNDS (default 7). Not part of the suite.
import { LOAD_CORE, cpuSeconds, setUp, stop, watchdog } from './procs.ts';
import { median, throughput, type Request } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
watchdog(10 * 60_000);

const bench = await setUp();
const on = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'on' });
const off = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'off' });

const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise: '.concat('Lorem ipsum dolor sit amet. '.repeat(20)) }] };
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const kinds: Record<string, { path: string; body: string }> = {
  json_c64: { path: '/llm/openai/v1/chat/completions', body: JSON.stringify(CHAT) },
  sse_c64: { path: '/llm/openai/v1/chat/completions?stream=1', body: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }) },
};
const sides = { on, off };
/** Non-2xx answers and socket errors (wrk timeouts on an overloaded machine): reported, not fatal. */
const errors = { on: 0, off: 0 };
const rps: Record<string, Record<string, number[]>> = {};
const cpu: Record<string, Record<string, number[]>> = {};

const measure = async (side: 'on' | 'off', kind: string): Promise<void> => {
  const s = sides[side];
  const req: Request = { url: `http://127.0.0.1:${s.port}${kinds[kind]!.path}`, body: kinds[kind]!.body, headers: HEADERS };
  const cpu0 = cpuSeconds(s.pid);
  const r = await throughput(req, { connections: 64, seconds: SECONDS, core: LOAD_CORE, scratch: bench.scratch });
  errors[side] += r.errors;
  ((rps[kind] ??= {})[side] ??= []).push(r.rps);
  ((cpu[kind] ??= {})[side] ??= []).push(((cpuSeconds(s.pid) - cpu0) / r.requests) * 1000);
};

// Warm-up: JIT and connection pools on both.
for (const kind of Object.keys(kinds)) for (const side of ['on', 'off'] as const) await throughput(
  { url: `http://127.0.0.1:${sides[side].port}${kinds[kind]!.path}`, body: kinds[kind]!.body, headers: HEADERS },
  { connections: 64, seconds: 1, core: LOAD_CORE, scratch: bench.scratch },
);
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of Object.keys(kinds)) {
    const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const side of order) await measure(side, kind);
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
}

// Metering really ran on one side only.
const scrape = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const counted = (text: string): number => [...text.matchAll(/^gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="output"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
const onText = await scrape(on.adminPort);
if (process.env.BENCH_DEBUG) process.stderr.write(onText.split("\n").filter((l) => l.startsWith("gen_ai") && l.includes("_count")).join("\n") + "\n");
const meteredOn = counted(onText);
const meteredOff = counted(await scrape(off.adminPort));
await Promise.all([stop(on.child), stop(off.child)]);
await bench.close();

const lines = ['| figure | metering on | metering off | on ÷ off (median of per-round ratios) |', '|---|---:|---:|---:|'];
const result: Record<string, unknown> = {};
for (const kind of Object.keys(kinds)) {
  const ratios = rps[kind]!.on!.map((v, i) => v / rps[kind]!.off![i]!);
  const cpuRatios = cpu[kind]!.on!.map((v, i) => v / cpu[kind]!.off![i]!);
  lines.push(`| ${kind} throughput (req/s) | ${median(rps[kind]!.on!).toFixed(0)} | ${median(rps[kind]!.off!).toFixed(0)} | ${(median(ratios) * 100).toFixed(1)}% |`);
  lines.push(`| ${kind} CPU s per 1,000 req | ${median(cpu[kind]!.on!).toFixed(4)} | ${median(cpu[kind]!.off!).toFixed(4)} | ${median(cpuRatios).toFixed(3)}× |`);
  result[kind] = { rps, cpu, throughputRatio: median(ratios), cpuRatio: median(cpuRatios), within5pct: median(ratios) >= 0.95 };
}
process.stdout.write(`${lines.join('\n')}\n\nresponses metered: on ${meteredOn}, off ${meteredOff}; load-tool errors: on ${errors.on}, off ${errors.off}\n${JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, result })}\n`);
process.exit(meteredOn > 0 && meteredOff === 0 ? 0 : 1);
