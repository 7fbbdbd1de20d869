// `npm run bench:ceiling` (issue 21): the sidecar with its defaults against
// the least a Node proxy can do, on the same Node, in interleaved rounds.
//
// Two pairs, each sidecar against its floor:
// - local:  the sidecar with its defaults (usage metering on, debug listener
//   on, info logs) and an allow-all local policy, against the minimal proxy
//   (test/bench/ceiling-proxy.ts: buffer the body, forward, relay);
// - remote: the same sidecar with an identity mounted, so every request is
//   also evaluated by the fake gateway (allow), against the two-exchange
//   floor: the minimal proxy plus one ES256 signature and one POST of the body
//   to the gateway per request (ceiling-proxy.ts with CEILING_GATEWAY). A
//   second floor signs with jose (WebCrypto) instead of node:crypto, for
//   reference.
// A third sidecar runs with the default features off (usage metering off, no
// debug listener, warn logs): not a target, but the same run's account of
// what those features cost (`bare/minimal` against `local/minimal`).
// Cases: JSON at c1 (wrk, one connection; p50 latency, added over the fake
// upstream reached directly), JSON at c16 and SSE (20 chunks) at c16. Each
// round measures every target once per case, in an order that rotates from
// round to round; a figure is the median over rounds, a ratio the median of
// the per-round ratios. Every remote figure checks that the fake gateway
// answered one evaluation per request wrk counted (up to one more per
// connection, what wrk leaves in flight when it stops); any error, any
// mismatch ends the run with exit 1. Prints a table; writes
// test/bench/results/ceiling-<timestamp>.json (gitignored).
// Knobs: BENCH_SECONDS (per measurement, default 5), BENCH_ROUNDS (default 3),
// BENCH_IMAGE (default 1: what the image runs, its bundle with its NODE_ENV
// and NODE_OPTIONS, the floors with the same NODE_OPTIONS, and the sidecars'
// stdout a pipe this process reads, as a container runtime does; 0:
// dist/main.js, V8's defaults, stdout to /dev/null, as in rounds one to
// three), BENCH_SIDECAR (another build's dist/main.js; implies BENCH_IMAGE=0).
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadTool, median } from './load.ts';
import { CEILING_CHAT, LOAD_CORE, PROXY_CORE, ROOT, buildImageBundle, cpuSeconds, firstLine, freePort, settled, setUp, start, stop, watchdog, writeResult, type SidecarProcess } from './procs.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESULTS = join(import.meta.dirname, 'results');
if (loadTool !== 'wrk') throw new Error('bench:ceiling needs wrk (apt-get install wrk)');
watchdog(30 * 60_000);
mkdirSync(RESULTS, { recursive: true });

const bench = await setUp();
const keyFile = join(bench.remoteEnv.FIRSTOPS_IDENTITY_DIR!, 'private-key.pem');
const imageRun = (process.env.BENCH_IMAGE ?? (process.env.BENCH_SIDECAR ? '0' : '1')) === '1';
const IMAGE = imageRun ? buildImageBundle(join(bench.scratch, 'image')) : undefined;
const floorOptions: Record<string, string> = IMAGE?.env.NODE_OPTIONS ? { NODE_OPTIONS: IMAGE.env.NODE_OPTIONS } : {};

async function startSidecar(env: Record<string, string>): Promise<SidecarProcess> {
  if (!IMAGE) return bench.startSidecar(env);
  const sidecar = await bench.startSidecar({ ...env, ...IMAGE.env }, [], IMAGE.main, 'pipe');
  sidecar.child.stdout!.resume();
  return sidecar;
}

/** ceiling-proxy.ts as plain JavaScript (no TypeScript loader in the measured process), on the proxy core. */
async function startProxy(env: Record<string, string>): Promise<{ pid: number; port: number; stop: () => Promise<void> }> {
  const js = join(RESULTS, 'ceiling-proxy.mjs');
  writeFileSync(js, stripTypeScriptTypes(readFileSync(join(ROOT, 'test/bench/ceiling-proxy.ts'), 'utf8')));
  const port = await freePort();
  const child = start(PROXY_CORE, [js], { CEILING_PORT: String(port), CEILING_UPSTREAM: bench.upstreamUrl, ...floorOptions, ...env }, 'pipe');
  await firstLine(child);
  return { pid: child.pid!, port, stop: () => stop(child) };
}

const floorEnv = { CEILING_GATEWAY: bench.gatewayUrl, CEILING_KEY: keyFile };
const minimal = await startProxy({});
const floor = await startProxy(floorEnv);
const floorJose = await startProxy({ ...floorEnv, CEILING_SIGNER: 'jose' });
const local = await startSidecar(bench.localEnv);
const bare = await startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'off', FIRSTOPS_DEBUG_PORT: 'off', FIRSTOPS_LOG_LEVEL: 'warn' });
const remote = await startSidecar({ ...bench.localEnv, ...bench.remoteEnv });

interface Target {
  readonly name: string;
  readonly label: string;
  readonly base: string;
  readonly pid?: number;
  /** Every request it serves is evaluated by the fake gateway. */
  readonly remote: boolean;
  /** The sidecar's admin port: its in-flight requests are waited for before the gateway is counted. */
  readonly adminPort?: number;
}
const PATH = '/llm/openai/v1/chat/completions';
const at = (port: number): string => `http://127.0.0.1:${port}${PATH}`;
const direct: Target = { name: 'direct', label: 'fake upstream, direct', base: bench.upstreamUrl + '/v1/chat/completions', remote: false };
const targets: Target[] = [
  { name: 'minimal', label: 'minimal proxy (buffer, forward, relay)', base: at(minimal.port), pid: minimal.pid, remote: false },
  { name: 'local', label: 'sidecar, defaults, allow-all local policy', base: at(local.port), pid: local.pid, remote: false },
  { name: 'bare', label: 'sidecar, allow-all local policy, features off (no usage metering, no debug listener, warn logs)', base: at(bare.port), pid: bare.pid, remote: false },
  { name: 'floor', label: 'two-exchange floor (minimal + ES256 node:crypto + POST to gateway)', base: at(floor.port), pid: floor.pid, remote: true },
  { name: 'remote', label: 'sidecar, defaults, allow-all + identity (every request evaluated remotely)', base: at(remote.port), pid: remote.pid, remote: true, adminPort: remote.adminPort },
  { name: 'floor_jose', label: 'two-exchange floor, signed with jose (WebCrypto)', base: at(floorJose.port), pid: floorJose.pid, remote: true },
];
const PAIRS = [['local', 'minimal'], ['bare', 'minimal'], ['remote', 'floor'], ['remote', 'floor_jose']] as const;

const CHAT = CEILING_CHAT;
const HEADERS: Record<string, string> = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
interface Case { readonly name: string; readonly connections: number; readonly body: string; readonly query: string }
const CASES: Case[] = [
  { name: 'json_c1', connections: 1, body: JSON.stringify(CHAT), query: '' },
  { name: 'json_c16', connections: 16, body: JSON.stringify(CHAT), query: '' },
  { name: 'sse_c16', connections: 16, body: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }), query: '?stream=1' },
];

// ---- wrk, with its latency distribution ----

const luaString = (text: string): string => {
  if (text.includes(']==]')) throw new Error('body not representable in the wrk script');
  return `[==[${text}]==]`;
};
const scripts = new Map<string, string>();
function scriptFor(body: string): string {
  let file = scripts.get(body);
  if (!file) {
    file = join(bench.scratch, `ceiling-${scripts.size}.lua`);
    // `wrk.headers[ [==[k]==] ]`: without the spaces `[[` opens a Lua long string and wrk sends bare GETs.
    const lines = ['wrk.method = "POST"', `wrk.body = ${luaString(body)}`];
    for (const [k, v] of Object.entries(HEADERS)) lines.push(`wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    scripts.set(body, file);
  }
  return file;
}
const UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
interface Load { readonly requests: number; readonly rps: number; readonly p50Ms: number; readonly errors: number }
function wrk(url: string, c: Case, seconds: number): Promise<Load> {
  const args = ['-c', String(LOAD_CORE), 'wrk', '-t1', `-c${c.connections}`, `-d${seconds}s`, '--latency', '-s', scriptFor(c.body), url];
  return new Promise((resolve, reject) => {
    execFile('taskset', args, { maxBuffer: 1 << 20 }, (err, out, stderr) => {
      if (err || stderr.trim()) return reject(new Error(`wrk failed: ${err?.message ?? ''}\n${stderr}`));
      const done = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out);
      const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
      if (!done || !p50) return reject(new Error(`unexpected wrk output:\n${out}`));
      const requests = Number(done[1]);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + (socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
      resolve({ requests, rps: requests / (Number(done[2]) * UNIT[done[3]!]! / 1000), p50Ms: Number(p50[1]) * UNIT[p50[2]!]!, errors });
    });
  });
}

// ---- the gateway check ----

const gatewayCheck: Record<string, { served: number; atGateway: number }> = {};
async function evaluations(): Promise<number> {
  return (await bench.gatewayCounts()).evaluations;
}
/** The gateway's count once it stops moving (the floor has no in-flight gauge to wait for). */
async function quietEvaluations(t: Target): Promise<number> {
  if (t.adminPort) await settled(t.adminPort);
  let last = await evaluations();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await evaluations();
    if (now === last) return now;
    last = now;
  }
}

// ---- the rounds ----

type Figures = { rps: number[]; p50Ms: number[]; cpuUsPerReq: number[] };
const figures: Record<string, Record<string, Figures>> = {};
const errors: Record<string, number> = {};
const fig = (t: string, c: string): Figures => ((figures[c] ??= {})[t] ??= { rps: [], p50Ms: [], cpuUsPerReq: [] });

async function measure(t: Target, c: Case, seconds: number, keep: boolean): Promise<void> {
  const before = t.remote ? await evaluations() : 0;
  const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
  const r = await wrk(t.base + c.query, c, seconds);
  const cpu = t.pid ? cpuSeconds(t.pid) - cpu0 : 0;
  if (r.errors) errors[t.name] = (errors[t.name] ?? 0) + r.errors;
  if (t.remote) {
    const atGateway = (await quietEvaluations(t)) - before;
    const sum = (gatewayCheck[t.name] ??= { served: 0, atGateway: 0 });
    sum.served += r.requests;
    sum.atGateway += atGateway;
    if (atGateway < r.requests || atGateway > r.requests + c.connections) {
      throw new Error(`${t.name} ${c.name}: wrk counted ${r.requests} served, the fake gateway ${atGateway} evaluations: the figure does not measure what it says`);
    }
  }
  if (!keep) return;
  const f = fig(t.name, c.name);
  f.rps.push(r.rps);
  f.p50Ms.push(r.p50Ms);
  if (t.pid) f.cpuUsPerReq.push((cpu / r.requests) * 1e6);
}

const loadBefore = loadavg();
const t0 = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
};
log(`${ROUNDS} rounds of ${SECONDS} s per figure; ${targets.length} targets, ${CASES.length} cases; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const c of CASES) for (const t of targets) await measure(t, c, 2, false);
for (let round = 0; round < ROUNDS; round++) {
  for (const c of CASES) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    if (c.connections === 1) await measure(direct, c, SECONDS, true);
    for (const t of order) await measure(t, c, SECONDS, true);
  }
  log(`round ${round + 1}/${ROUNDS}`);
}
const loadAfter = loadavg();

await Promise.all([local, bare, remote].map((s) => stop(s.child)));
await Promise.all([minimal, floor, floorJose].map((p) => p.stop()));
await bench.close();

// ---- the table ----

const med = (t: string, c: string, k: keyof Figures): number => median(figures[c]?.[t]?.[k] ?? []);
const perRound = (a: string, b: string, c: string): number[] => figures[c]![a]!.rps.map((v, i) => v / figures[c]![b]!.rps[i]!);
const added = (t: string): number[] => figures.json_c1![t]!.p50Ms.map((v, i) => v - figures.json_c1!.direct!.p50Ms[i]!);

const ratios: Record<string, Record<string, number>> = {};
const lines: string[] = [];
lines.push(`| target | ${CASES.map((c) => `${c.name} req/s`).join(' | ')} | ${CASES.map((c) => `${c.name} CPU µs/req`).join(' | ')} | c1 p50 added (ms) |`);
lines.push(`|---|${CASES.map(() => '---:').join('|')}|${CASES.map(() => '---:').join('|')}|---:|`);
lines.push(`| ${direct.label} | ${med('direct', 'json_c1', 'rps').toFixed(0)} | | | | | | (p50 ${med('direct', 'json_c1', 'p50Ms').toFixed(3)}) |`);
for (const t of targets) {
  lines.push(`| ${t.label} | ${CASES.map((c) => med(t.name, c.name, 'rps').toFixed(0)).join(' | ')} | ${CASES.map((c) => med(t.name, c.name, 'cpuUsPerReq').toFixed(0)).join(' | ')} | ${median(added(t.name)).toFixed(3)} |`);
}
lines.push('', `| ratio (median of per-round ratios) | ${CASES.map((c) => c.name).join(' | ')} | c1 p50 added over the floor's (ms) |`, `|---|${CASES.map(() => '---:').join('|')}|---:|`);
for (const [a, b] of PAIRS) {
  const key = `${a}/${b}`;
  ratios[key] = {};
  for (const c of CASES) ratios[key][c.name] = median(perRound(a, b, c.name));
  const extra = median(added(a).map((v, i) => v - added(b)[i]!));
  ratios[key].c1_p50_added_over_floor_ms = extra;
  lines.push(`| ${key} | ${CASES.map((c) => `**${ratios[key]![c.name]!.toFixed(2)}**`).join(' | ')} | ${extra.toFixed(3)} |`);
}
const checks = Object.entries(gatewayCheck).map(([k, v]) => `${k}: ${v.served} served, ${v.atGateway} evaluations at the gateway`).join('; ');
const errorText = Object.keys(errors).length ? JSON.stringify(errors) : 'none';
process.stdout.write(`\n${lines.join('\n')}\n\ngateway check: ${checks}\nload-generator errors: ${errorText}\n`);

const file = writeResult('ceiling', {
  image: IMAGE ? { main: IMAGE.main, env: IMAGE.env } : false,
  loadAverage: { before: loadBefore, after: loadAfter },
  seconds: SECONDS,
  rounds: ROUNDS,
  targets: Object.fromEntries([direct, ...targets].map((t) => [t.name, t.label])),
  figures,
  ratios,
  gatewayCheck,
  errors,
});
process.stdout.write(`wrote ${file}\n`);
process.exit(Object.keys(errors).length ? 1 : 0);
