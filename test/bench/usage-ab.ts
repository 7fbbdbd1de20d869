// `npm run bench:usage`: the cost of usage metering, as an A/B of two
// otherwise identical local-policy sidecars (FIRSTOPS_USAGE_METRICS=on and
// off) in one run. Each round measures both, in alternating order, back to
// back, so slow drift on a shared machine hits both sides alike; the figure
// is the median of the per-round ratios. Throughput (wrk) and the sidecar's
// CPU seconds per 1,000 requests, for the 1 KB JSON completion and the
// 20-chunk SSE stream (with `"usage":null` on every chunk and a final usage
// chunk, as OpenAI streams with include_usage). A third sidecar, metering
// off as well, is measured the same way: its ratio to the first off side is
// the run's noise floor, printed beside the figure. Then on and off are
// loaded side by side, at the same time, as a second view that the VM's
// drift cannot skew. Knobs: BENCH_SECONDS
// (per measurement, default 2), BENCH_ROUNDS (default 9). Not part of the
// suite.
import { LOAD_CORE, cpuSeconds, setUp, stop, watchdog } from './procs.ts';
import { median, throughput, type Request } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
watchdog(10 * 60_000);

const bench = await setUp();
const on = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'on' });
const off = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'off' });
const control = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'off' });

const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise: '.concat('Lorem ipsum dolor sit amet. '.repeat(20)) }] };
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const kinds: Record<string, { path: string; body: string }> = {
  json_c64: { path: '/llm/openai/v1/chat/completions', body: JSON.stringify(CHAT) },
  sse_c64: { path: '/llm/openai/v1/chat/completions?stream=1', body: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }) },
};
const sides = { on, off, control };
type Side = keyof typeof sides;
/** Non-2xx answers and socket errors (wrk timeouts on an overloaded machine): reported, not fatal. */
const errors = { on: 0, off: 0, control: 0 };
/** Every answered request per side, warm-up included: the metered side must have metered each one. */
const answered = { on: 0, off: 0, control: 0 };
const rps: Record<string, Record<string, number[]>> = {};
const cpu: Record<string, Record<string, number[]>> = {};

const measure = async (side: Side, kind: string): Promise<void> => {
  const s = sides[side];
  const req: Request = { url: `http://127.0.0.1:${s.port}${kinds[kind]!.path}`, body: kinds[kind]!.body, headers: HEADERS };
  const cpu0 = cpuSeconds(s.pid);
  const r = await throughput(req, { connections: 64, seconds: SECONDS, core: LOAD_CORE, scratch: bench.scratch });
  errors[side] += r.errors;
  answered[side] += r.requests;
  ((rps[kind] ??= {})[side] ??= []).push(r.rps);
  ((cpu[kind] ??= {})[side] ??= []).push(((cpuSeconds(s.pid) - cpu0) / r.requests) * 1000);
};

// Warm-up: JIT and connection pools on all three.
for (const kind of Object.keys(kinds)) {
  for (const side of ['on', 'off', 'control'] as const) {
    const r = await throughput(
      { url: `http://127.0.0.1:${sides[side].port}${kinds[kind]!.path}`, body: kinds[kind]!.body, headers: HEADERS },
      { connections: 64, seconds: 1, core: LOAD_CORE, scratch: bench.scratch },
    );
    answered[side] += r.requests;
  }
}
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of Object.keys(kinds)) {
    // Every side goes first, second and third in turn.
    const orders = [['on', 'off', 'control'], ['off', 'control', 'on'], ['control', 'on', 'off']] as const;
    const order = orders[round % 3]!;
    for (const side of order) await measure(side, kind);
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS}\n`);
}

// Side by side: on and off loaded at the same time (c32 each), sharing the
// proxy core, so whatever the VM does meanwhile happens to both. The figure
// is each one's CPU per request, and its throughput, against the other's.
const sideBySide: Record<string, { rps: number[]; cpu: number[] }> = {};
for (let round = 0; round < Math.ceil(ROUNDS / 2); round++) {
  for (const kind of Object.keys(kinds)) {
    const cpu0 = { on: cpuSeconds(on.pid), off: cpuSeconds(off.pid) };
    const [a, b] = await Promise.all((['on', 'off'] as const).map((side) => throughput(
      { url: `http://127.0.0.1:${sides[side].port}${kinds[kind]!.path}`, body: kinds[kind]!.body, headers: HEADERS },
      { connections: 32, seconds: SECONDS + 1, core: LOAD_CORE, scratch: bench.scratch },
    )));
    errors.on += a!.errors;
    errors.off += b!.errors;
    answered.on += a!.requests;
    answered.off += b!.requests;
    const perReq = (side: 'on' | 'off', requests: number): number => (cpuSeconds(sides[side].pid) - cpu0[side]) / requests;
    const entry = (sideBySide[kind] ??= { rps: [], cpu: [] });
    entry.rps.push(a!.rps / b!.rps);
    entry.cpu.push(perReq('on', a!.requests) / perReq('off', b!.requests));
  }
}

// Metering really ran on one side only.
const scrape = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const counted = (text: string): number => [...text.matchAll(/^gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="output"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
const onText = await scrape(on.adminPort);
if (process.env.BENCH_DEBUG) process.stderr.write(onText.split("\n").filter((l) => l.startsWith("gen_ai") && l.includes("_count")).join("\n") + "\n");
const meteredOn = counted(onText);
const meteredOff = counted(await scrape(off.adminPort));
await Promise.all([stop(on.child), stop(off.child), stop(control.child)]);
await bench.close();

const lines = ['| figure | metering on | metering off | on ÷ off (median of per-round ratios) | control ÷ off (noise floor) |', '|---|---:|---:|---:|---:|'];
const result: Record<string, unknown> = {};
const ratiosOf = (m: Record<string, number[]>, a: Side): number[] => m[a]!.map((v, i) => v / m.off![i]!);
for (const kind of Object.keys(kinds)) {
  const ratio = median(ratiosOf(rps[kind]!, 'on'));
  const cpuRatio = median(ratiosOf(cpu[kind]!, 'on'));
  const floor = median(ratiosOf(rps[kind]!, 'control'));
  const cpuFloor = median(ratiosOf(cpu[kind]!, 'control'));
  lines.push(`| ${kind} throughput (req/s) | ${median(rps[kind]!.on!).toFixed(0)} | ${median(rps[kind]!.off!).toFixed(0)} | ${(ratio * 100).toFixed(1)}% | ${(floor * 100).toFixed(1)}% |`);
  lines.push(`| ${kind} CPU s per 1,000 req | ${median(cpu[kind]!.on!).toFixed(4)} | ${median(cpu[kind]!.off!).toFixed(4)} | ${cpuRatio.toFixed(3)}× | ${cpuFloor.toFixed(3)}× |`);
  result[kind] = { rps: rps[kind], cpu: cpu[kind], throughputRatio: ratio, cpuRatio, noiseFloor: { throughput: floor, cpu: cpuFloor }, within5pct: ratio >= 0.95 };
}
lines.push('', '| side by side (both loaded at once) | on ÷ off throughput | on ÷ off CPU per request |', '|---|---:|---:|');
for (const kind of Object.keys(kinds)) {
  const entry = sideBySide[kind]!;
  lines.push(`| ${kind} | ${(median(entry.rps) * 100).toFixed(1)}% | ${median(entry.cpu).toFixed(3)}× |`);
  (result[kind] as Record<string, unknown>).sideBySide = { throughputRatio: median(entry.rps), cpuRatio: median(entry.cpu), rounds: entry };
}
process.stdout.write(`${lines.join('\n')}\n\nresponses metered: on ${meteredOn} of ${answered.on} answered, off ${meteredOff}; load-tool errors: on ${errors.on}, off ${errors.off}, control ${errors.control}\n${JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, result })}\n`);
// wrk counts completed responses; a response cut off at the end of a run can be metered without being counted.
process.exit(meteredOn >= answered.on && meteredOn <= answered.on + 64 * 40 && meteredOff === 0 ? 0 : 1);
