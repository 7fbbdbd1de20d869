// `npm run bench`: the sidecar against the upstream reached directly and
// against a minimal Node proxy, on this machine, interleaved over several
// rounds. Prints a table and writes test/bench/results/<timestamp>.json.
// Not part of the test suite. Knobs: BENCH_SECONDS (per measurement, default
// 2), BENCH_ROUNDS (default 3), BENCH_PROFILE=1 (the local-policy sidecar runs
// under --cpu-prof; profiles land in test/bench/results/profiles/),
// BENCH_SIDECAR=<path to main.js> (measure another build). docs/performance.md
// describes the method.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { LOAD_CORE, PROXY_CORE, buildImageBundle, cpuSeconds, memory, settled, setUp, startCeiling, stop, watchdog } from './procs.ts';
import { concurrentStreams, fixedRate, loadTool, median, percentile, sequential, throughput, type Request } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PROFILE = process.env.BENCH_PROFILE === '1';
const RATE = 1000;
const RESULTS = join(import.meta.dirname, 'results');
const STARTUP_RUNS = 5;
const WATCHDOG_MS = 12 * 60_000;
/** The image-runtime peak: this long at c64 JSON on a fresh bundle process. */
const HWM_SECONDS = Number(process.env.BENCH_HWM_SECONDS ?? 60);

// ---- the setup ----

watchdog(WATCHDOG_MS);
mkdirSync(RESULTS, { recursive: true });
const bench = await setUp();
const { upstreamUrl, gatewayUrl, scratch } = bench;

const { child: ceiling, port: ceilingPort } = await startCeiling(upstreamUrl);

// Time to ready: fresh processes, nothing else running on the proxy core;
// then the same with a warm V8 compile cache (NODE_COMPILE_CACHE), which a
// container image can ship.
const startupMs: number[] = [];
const startupCachedMs: number[] = [];
const compileCache = join(bench.scratch, 'compile-cache');
for (const [into, env] of [[startupMs, {}], [startupCachedMs, { NODE_COMPILE_CACHE: compileCache }]] as const) {
  for (let i = 0; i < STARTUP_RUNS + (into === startupCachedMs ? 1 : 0); i++) {
    const s = await bench.startSidecar({ ...bench.localEnv, ...env });
    // The first cached start only fills the cache.
    if (into === startupMs || i > 0) into.push(s.readyMs);
    await stop(s.child);
  }
}

const profileDir = join(RESULTS, 'profiles');
const local = await bench.startSidecar(bench.localEnv, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
const localWarn = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_LOG_LEVEL: 'warn' });
// The usage-metering A/B: the same local-policy sidecar with FIRSTOPS_USAGE_METRICS=off.
const meterOff = await bench.startSidecar({ ...bench.localEnv, FIRSTOPS_USAGE_METRICS: 'off' });
const remote = await bench.startSidecar(bench.remoteEnv);

// ---- what is measured ----

const CHAT = {
  model: 'gpt-4o-mini',
  temperature: 0.2,
  messages: [
    { role: 'system', content: 'You are a helpful assistant that answers briefly and precisely. '.repeat(4).trim() },
    { role: 'user', content: 'Summarise the following text in one sentence: '.concat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(5).trim()) },
  ],
};
const JSON_BODY = JSON.stringify(CHAT);
const STREAM_BODY = JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } });
const HEADERS: Record<string, string> = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const MCP_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

interface Target {
  readonly name: string;
  readonly label: string;
  readonly url: string;
  readonly pid: number | undefined;
  /** A sidecar's admin port, to wait for its in-flight requests to finish. */
  readonly adminPort?: number;
}

const CHAT_PATH = '/v1/chat/completions';
const PROXY_PATH = `/llm/openai${CHAT_PATH}`;
const targets: Target[] = [
  { name: 'direct', label: 'direct', url: upstreamUrl + CHAT_PATH, pid: undefined },
  { name: 'ceiling', label: 'Node ceiling', url: `http://127.0.0.1:${ceilingPort}${PROXY_PATH}`, pid: ceiling.pid },
  { name: 'local', label: 'sidecar, local policy', url: `http://127.0.0.1:${local.port}${PROXY_PATH}`, pid: local.pid },
  { name: 'remote', label: 'sidecar, remote eval', url: `http://127.0.0.1:${remote.port}${PROXY_PATH}`, pid: remote.pid, adminPort: remote.adminPort },
  { name: 'local_warn', label: 'sidecar, local, log warn', url: `http://127.0.0.1:${localWarn.port}${PROXY_PATH}`, pid: localWarn.pid },
  { name: 'meter_off', label: 'sidecar, local, usage metering off', url: `http://127.0.0.1:${meterOff.port}${PROXY_PATH}`, pid: meterOff.pid },
];
const mcpTargets: Target[] = [
  { name: 'direct', label: 'direct to gateway', url: `${gatewayUrl}/mcp/x`, pid: undefined },
  { name: 'remote', label: 'sidecar (DPoP-signed)', url: `http://127.0.0.1:${remote.port}/mcp/x`, pid: remote.pid, adminPort: remote.adminPort },
];

const req = (url: string, body: string, headers = HEADERS): Request => ({ url, body, headers });
const streamUrl = (url: string, extra = ''): string => `${url}?stream=1${extra}`;

type Series = Record<string, Record<string, number[]>>;
const rps: Series = {};
const cpuPer1k: Series = {};
const latency: Series = {};
const errors: Record<string, number> = {};
const push = (series: Series, target: string, key: string, value: number): void => {
  ((series[target] ??= {})[key] ??= []).push(value);
};
const countErrors = (target: string, n: number): void => {
  errors[target] = (errors[target] ?? 0) + n;
};

function cpuBefore(pid: number | undefined): number {
  return pid ? cpuSeconds(pid) : 0;
}

/**
 * A remote figure counts only if the fake gateway answered one evaluation
 * (or, for MCP, one forwarded call) per request the load generator saw
 * served. wrk stops with up to `inFlight` requests unanswered that may
 * still reach the gateway, hence the slack; the count is read once the
 * sidecar has finished them. Totals land in the result file; a mismatch
 * ends the bench.
 */
const gatewayCheck: Record<string, { served: number; atGateway: number }> = {};
async function checkGateway<T>(t: Target, run: () => Promise<T>, served: (r: T) => number, inFlight = 0): Promise<T> {
  const kind = t.name === 'remote' ? 'evaluations' : t.name === 'mcp_remote' || t.name === 'mcp_direct' ? 'mcp' : undefined;
  if (!kind) return run();
  const before = (await bench.gatewayCounts())[kind];
  const result = await run();
  if (t.adminPort) await settled(t.adminPort);
  const atGateway = (await bench.gatewayCounts())[kind] - before;
  const n = served(result);
  const sum = (gatewayCheck[t.name] ??= { served: 0, atGateway: 0 });
  sum.served += n;
  sum.atGateway += atGateway;
  if (atGateway < n || atGateway > n + inFlight) {
    throw new Error(`${t.name}: the load generator counted ${n} requests served, the fake gateway ${atGateway} ${kind}: the figure does not measure what it says`);
  }
  return result;
}

async function measureThroughput(t: Target, key: string, r: Request, connections: number): Promise<void> {
  const cpu0 = cpuBefore(t.pid);
  const result = await checkGateway(t, () => throughput(r, { connections, seconds: SECONDS, core: LOAD_CORE, scratch }), (x) => x.requests, connections);
  countErrors(t.name, result.errors);
  push(rps, t.name, key, result.rps);
  if (t.pid) push(cpuPer1k, t.name, key, ((cpuSeconds(t.pid) - cpu0) / result.requests) * 1000);
}

const t0 = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
};
log(`load tool ${loadTool}; ${ROUNDS} rounds of ${SECONDS} s per figure; sidecar ready in ${startupMs.map((m) => m.toFixed(0)).join(', ')} ms`);

// Warm-up: JIT, connection pools, the gateway key import.
for (const t of targets) {
  await throughput(req(t.url, JSON_BODY), { connections: 16, seconds: 1, core: LOAD_CORE, scratch });
  await throughput(req(streamUrl(t.url), STREAM_BODY), { connections: 16, seconds: 1, core: LOAD_CORE, scratch });
}
for (const t of mcpTargets) await throughput(req(t.url, MCP_BODY, MCP_HEADERS), { connections: 16, seconds: 1, core: LOAD_CORE, scratch });

const pooledC1: Record<string, number[]> = {};
const pooledRate: Record<string, number[]> = {};
const pooledTtfb: Record<string, number[]> = {};
const pooledMcpC1: Record<string, number[]> = {};

for (let round = 1; round <= ROUNDS; round++) {
  log(`round ${round}/${ROUNDS}`);
  for (const t of targets) {
    for (const connections of [16, 64]) {
      await measureThroughput(t, `json_c${connections}`, req(t.url, JSON_BODY), connections);
      await measureThroughput(t, `sse_c${connections}`, req(streamUrl(t.url), STREAM_BODY), connections);
    }
  }
  for (const t of targets) {
    const c1 = await checkGateway(t, () => sequential(req(t.url, JSON_BODY), { seconds: SECONDS }), (x) => x.total.length);
    countErrors(t.name, c1.errors);
    (pooledC1[t.name] ??= []).push(...c1.total);

    const cpu0 = cpuBefore(t.pid);
    const rated = await checkGateway(t, () => fixedRate(req(t.url, JSON_BODY), { rate: RATE, seconds: SECONDS }), (x) => x.total.length, 0);
    countErrors(t.name, rated.errors);
    (pooledRate[t.name] ??= []).push(...rated.total);
    push(latency, t.name, 'achieved_rate', rated.achievedRate);
    if (t.pid) push(cpuPer1k, t.name, `json_${RATE}rps`, ((cpuSeconds(t.pid) - cpu0) / rated.total.length) * 1000);

    const ttfb = await checkGateway(t, () => sequential(req(streamUrl(t.url), STREAM_BODY), { count: 300 }), (x) => x.total.length);
    countErrors(t.name, ttfb.errors);
    (pooledTtfb[t.name] ??= []).push(...ttfb.firstByte);
  }
  for (const t of mcpTargets) {
    await measureThroughput({ ...t, name: `mcp_${t.name}` }, 'mcp_c16', req(t.url, MCP_BODY, MCP_HEADERS), 16);
    const c1 = await checkGateway({ ...t, name: `mcp_${t.name}` }, () => sequential(req(t.url, MCP_BODY, MCP_HEADERS), { seconds: SECONDS }), (x) => x.total.length);
    countErrors(`mcp_${t.name}`, c1.errors);
    (pooledMcpC1[t.name] ??= []).push(...c1.total);
  }
}

// Memory with 64 slow streams held open (20 chunks 50 ms apart), on fresh
// processes (the long-lived ones carry the heap growth of the throughput runs).
const streamRss: Record<string, { maxRssMb: number; hwmMb: number; idleMb: number }> = {};
for (const name of ['ceiling', 'local']) {
  let child: ChildProcess;
  let url: string;
  if (name === 'ceiling') {
    const c = await startCeiling(upstreamUrl);
    child = c.child;
    url = `http://127.0.0.1:${c.port}${PROXY_PATH}`;
  } else {
    const s = await bench.startSidecar(bench.localEnv);
    child = s.child;
    url = `http://127.0.0.1:${s.port}${PROXY_PATH}`;
  }
  const pid = child.pid!;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const idleMb = memory(pid).rssMb;
  let max = 0;
  const r = await concurrentStreams(req(streamUrl(url, '&interval_ms=50'), STREAM_BODY), {
    streams: 64,
    seconds: Math.max(SECONDS, 3),
    onTick: () => {
      max = Math.max(max, memory(pid).rssMb);
    },
  });
  countErrors(name, r.errors);
  streamRss[name] = { maxRssMb: max, hwmMb: memory(pid).hwmMb, idleMb };
  await stop(child);
}
// The image's runtime: the bundle with the Dockerfile's NODE_ENV and
// NODE_OPTIONS, fresh processes: idle, 64 open streams, then the high-water
// mark after HWM_SECONDS of c64 JSON (no memory limit here; the container
// test runs it under the chart's limit).
const image = buildImageBundle(join(scratch, 'bundle'));
const imageMemory = await (async () => {
  const s = await bench.startSidecar({ ...bench.localEnv, ...image.env }, [], image.main);
  const url = `http://127.0.0.1:${s.port}${PROXY_PATH}`;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const idleMb = memory(s.pid).rssMb;
  const r = await concurrentStreams(req(streamUrl(url, '&interval_ms=50'), STREAM_BODY), { streams: 64, seconds: Math.max(SECONDS, 3) });
  countErrors('image', r.errors);
  const streamsHwmMb = memory(s.pid).hwmMb;
  const load = await throughput(req(url, JSON_BODY), { connections: 64, seconds: HWM_SECONDS, core: LOAD_CORE, scratch });
  countErrors('image', load.errors);
  const loadHwmMb = memory(s.pid).hwmMb;
  await stop(s.child);
  return { idleMb, streamsHwmMb, loadHwmMb, loadRps: load.rps, nodeOptions: image.env.NODE_OPTIONS ?? '' };
})();
log(`image bundle: idle ${imageMemory.idleMb.toFixed(1)} MB, 64 streams ${imageMemory.streamsHwmMb.toFixed(1)} MB, ${HWM_SECONDS} s c64 ${imageMemory.loadHwmMb.toFixed(1)} MB`);

const peakRss: Record<string, number> = {};
for (const t of targets) if (t.pid) peakRss[t.name] = memory(t.pid).hwmMb;
log('measurements done');

await Promise.all([local, localWarn, meterOff, remote].map((s) => stop(s.child)));
await stop(ceiling);
await bench.close();

// ---- the table ----

const med = (series: Series, target: string, key: string): number => median(series[target]?.[key] ?? []);
const p = (samples: Record<string, number[]>, target: string, q: number): number => percentile(samples[target] ?? [], q);

interface Row {
  figure: string;
  unit: string;
  values: Record<string, number>;
  /** How the ratio columns read: throughput is a share, the rest are multiples. */
  better: 'higher' | 'lower';
}
const rows: Row[] = [];
const row = (figure: string, unit: string, better: Row['better'], value: (target: string) => number, names = targets.map((t) => t.name)): void => {
  const values: Record<string, number> = {};
  for (const n of names) {
    const v = value(n);
    if (Number.isFinite(v)) values[n] = v;
  }
  rows.push({ figure, unit, better, values });
};
for (const key of ['json_c16', 'json_c64', 'sse_c16', 'sse_c64']) {
  row(`${key.startsWith('sse') ? 'SSE (20 chunks)' : 'JSON (1 KB)'} throughput, c${key.split('_c')[1]}`, 'req/s', 'higher', (n) => med(rps, n, key));
}
row('latency c1 p50', 'ms', 'lower', (n) => p(pooledC1, n, 50));
row('latency c1 p99', 'ms', 'lower', (n) => p(pooledC1, n, 99));
row('added latency c1 p50', 'ms', 'lower', (n) => p(pooledC1, n, 50) - p(pooledC1, 'direct', 50));
row('added latency c1 p99', 'ms', 'lower', (n) => p(pooledC1, n, 99) - p(pooledC1, 'direct', 99));
row(`latency at ${RATE} req/s p50`, 'ms', 'lower', (n) => p(pooledRate, n, 50));
row(`latency at ${RATE} req/s p99`, 'ms', 'lower', (n) => p(pooledRate, n, 99));
row(`added latency at ${RATE} req/s p50`, 'ms', 'lower', (n) => p(pooledRate, n, 50) - p(pooledRate, 'direct', 50));
row(`added latency at ${RATE} req/s p99`, 'ms', 'lower', (n) => p(pooledRate, n, 99) - p(pooledRate, 'direct', 99));
row('time to first SSE byte p50', 'ms', 'lower', (n) => p(pooledTtfb, n, 50));
row('time to first SSE byte p99', 'ms', 'lower', (n) => p(pooledTtfb, n, 99));
row('CPU per 1,000 req, JSON c16', 'CPU s', 'lower', (n) => med(cpuPer1k, n, 'json_c16'));
row(`CPU per 1,000 req at ${RATE} req/s`, 'CPU s', 'lower', (n) => med(cpuPer1k, n, `json_${RATE}rps`));
row('CPU per 1,000 req, JSON c64', 'CPU s', 'lower', (n) => med(cpuPer1k, n, 'json_c64'));
row('CPU per 1,000 req, SSE c64', 'CPU s', 'lower', (n) => med(cpuPer1k, n, 'sse_c64'));
row('RSS idle, fresh process', 'MB', 'lower', (n) => streamRss[n]?.idleMb ?? Number.NaN);
row('peak RSS with 64 open streams (VmHWM), fresh process', 'MB', 'lower', (n) => streamRss[n]?.hwmMb ?? Number.NaN);
row('peak RSS over the whole run (VmHWM)', 'MB', 'lower', (n) => peakRss[n] ?? Number.NaN);
const imageRow = (figure: string, mb: number): void => {
  rows.push({ figure: `image runtime (bundle, ${imageMemory.nodeOptions || 'no NODE_OPTIONS'}): ${figure}`, unit: 'MB', better: 'lower', values: { local: mb } });
};
imageRow('RSS idle', imageMemory.idleMb);
imageRow('VmHWM with 64 open streams', imageMemory.streamsHwmMb);
imageRow(`VmHWM after ${HWM_SECONDS} s of c64 JSON`, imageMemory.loadHwmMb);
row('MCP POST round trips, c16', 'req/s', 'higher', (n) => med(rps, `mcp_${n}`, 'mcp_c16'), ['direct', 'remote']);
row('MCP POST round trip c1 p50', 'ms', 'lower', (n) => p(pooledMcpC1, n, 50), ['direct', 'remote']);
row('MCP POST round trip c1 p99', 'ms', 'lower', (n) => p(pooledMcpC1, n, 99), ['direct', 'remote']);
rows.push({ figure: `ready after process start (median of ${STARTUP_RUNS})`, unit: 'ms', better: 'lower', values: { local: median(startupMs) } });
rows.push({ figure: 'ready after process start, warm NODE_COMPILE_CACHE', unit: 'ms', better: 'lower', values: { local: median(startupCachedMs) } });

const fmt = (v: number | undefined, unit: string): string => {
  if (v === undefined || !Number.isFinite(v)) return '';
  if (unit === 'req/s') return Math.round(v).toLocaleString('en-US');
  if (unit === 'CPU s') return v.toFixed(3);
  if (unit === 'MB') return v.toFixed(1);
  return v.toFixed(unit === 'ms' && Math.abs(v) < 10 ? 3 : 1);
};
const ratio = (r: Row, of: string, to: string): string => {
  const a = r.values[of];
  const b = r.values[to];
  if (a === undefined || b === undefined || b === 0 || r.figure.startsWith('added') || r.figure.startsWith('MCP')) return '';
  return r.unit === 'req/s' ? `${((a / b) * 100).toFixed(0)}%` : `${(a / b).toFixed(2)}×`;
};
const header = ['figure', 'unit', ...targets.map((t) => t.label), 'local ÷ direct', 'local ÷ ceiling', 'remote ÷ ceiling', 'remote ÷ local', 'metering on ÷ off'];
const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
for (const r of rows) {
  // MCP rows: the "direct" column is the gateway itself and the "remote" column the sidecar.
  const cells = targets.map((t) => fmt(r.values[t.name], r.unit));
  const mcpRatio = r.figure.startsWith('MCP') && r.values.direct && r.values.remote
    ? (r.unit === 'req/s' ? `${((r.values.remote / r.values.direct) * 100).toFixed(0)}% (sidecar ÷ direct)` : `${(r.values.remote / r.values.direct).toFixed(2)}× (sidecar ÷ direct)`)
    : '';
  lines.push(`| ${[r.figure, r.unit, ...cells, ratio(r, 'local', 'direct') || mcpRatio, ratio(r, 'local', 'ceiling'), ratio(r, 'remote', 'ceiling'), ratio(r, 'remote', 'local'), ratio(r, 'local', 'meter_off')].join(' | ')} |`);
}
const markdown = lines.join('\n');

// Usage metering must cost under 5% of throughput, JSON and SSE alike (the
// fake stream carries `"usage":null` in every chunk and a final usage chunk,
// as OpenAI sends with stream_options.include_usage).
const metering = ['json_c16', 'json_c64', 'sse_c16', 'sse_c64'].map((key) => {
  const on = med(rps, 'local', key);
  const off = med(rps, 'meter_off', key);
  return { key, on, off, ratio: on / off, within5pct: on / off >= 0.95 };
});

const machine = {
  nproc: cpus().length,
  cpu: /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown',
  node: process.version,
  kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  load_tool: loadTool === 'wrk' ? execFileSync('sh', ['-c', 'wrk --version 2>&1 | head -1 || true']).toString().split(' [')[0]!.trim() : 'autocannon',
};
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const result = {
  timestamp: new Date().toISOString(),
  machine,
  settings: {
    seconds_per_figure: SECONDS,
    rounds: ROUNDS,
    fixed_rate: RATE,
    pinning: `load generator, fake upstream and fake gateway on core ${LOAD_CORE}; each proxy on core ${PROXY_CORE}`,
    sidecar_log_level: 'info (stdout to /dev/null); local_warn: warn',
    profile: PROFILE,
  },
  errors,
  /** Requests the load generator saw served vs requests the fake gateway answered, per gateway-backed target. */
  gateway_check: gatewayCheck,
  targets: Object.fromEntries(targets.map((t) => [t.name, t.label])),
  rows,
  raw: { rps, cpuPer1k, latency, startupMs, startupCachedMs, streamRss, peakRss, imageMemory },
  metering,
  markdown,
};
const file = join(RESULTS, `${stamp}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

process.stdout.write(`\n${machine.cpu}, ${machine.nproc} cores, node ${machine.node}, ${machine.load_tool}\n\n${markdown}\n\n`);
process.stdout.write(`usage metering on ÷ off (throughput, must stay ≥ 95%): ${metering.map((m) => `${m.key} ${(m.ratio * 100).toFixed(1)}%${m.within5pct ? '' : ' OVER BUDGET'}`).join(', ')}\n`);
const bad = Object.entries(errors).filter(([, n]) => n > 0);
process.stdout.write(`gateway check (served by the load generator / answered by the fake gateway): ${Object.entries(gatewayCheck).map(([t, c]) => `${t} ${c.served}/${c.atGateway}`).join(', ')}\n`);
if (bad.length) process.stdout.write(`errors (non-2xx or socket): ${bad.map(([t, n]) => `${t} ${n}`).join(', ')}\n`);
process.stdout.write(`written to ${file}\n`);
log('done');
process.exit(0);
