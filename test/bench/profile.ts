// Profiles the sidecar under load: `node test/bench/profile.ts [local|remote|mcp|ceiling] [json|sse] [connections] [seconds]`
// (after `npm run build`). Runs the built sidecar under `node --cpu-prof`
// on the proxy core with wrk driving it, then prints where the CPU went: by
// package and by function (self time). Add `--startup` to profile a start to
// /readyz instead, `--no-profile` for the rate alone, `--rate=N` to drive it at a fixed N req/s. The .cpuprofile stays in test/bench/results/profiles/ for
// Chrome DevTools or speedscope.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { LOAD_CORE, setUp, startCeiling, stop, watchdog } from './procs.ts';
import { fixedRate, throughput } from './load.ts';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const startup = process.argv.includes('--startup');
/** `--rate=N`: an open loop at N req/s instead of wrk's closed loop. */
const rate = Number(process.argv.find((a) => a.startsWith('--rate='))?.slice(7) ?? 0);
const [target = 'local', body = 'json', connections = '64', seconds = '5'] = args;
const dir = join(import.meta.dirname, 'results', 'profiles');
mkdirSync(dir, { recursive: true });
watchdog(120_000);

const bench = await setUp();
const since = Date.now();
const noProfile = process.argv.includes('--no-profile');
const flags = noProfile ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200'];
let requests = 0;
let proxied: { child: ChildProcess; port: number };
if (target === 'ceiling') {
  proxied = await startCeiling(bench.upstreamUrl, flags);
} else {
  proxied = await bench.startSidecar(target === 'local' ? bench.localEnv : bench.remoteEnv, flags);
}
if (!startup) {
  const url = `http://127.0.0.1:${proxied.port}${target === 'mcp' ? '/mcp/x' : '/llm/openai/v1/chat/completions'}`;
  const payload = target === 'mcp'
    ? '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
    : JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(500) }], ...(body === 'sse' ? { stream: true } : {}) });
  const req = { url, body: payload, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' } };
  const warm = await throughput(req, { connections: Number(connections), seconds: 1, core: LOAD_CORE, scratch: bench.scratch });
  if (rate) {
    const r = await fixedRate(req, { rate, seconds: Number(seconds) });
    process.stdout.write(`${target} ${body} at ${rate} req/s: ${r.total.length} requests, ${r.errors} errors\n`);
    requests = warm.requests + r.total.length;
  } else {
    const r = await throughput(req, { connections: Number(connections), seconds: Number(seconds), core: LOAD_CORE, scratch: bench.scratch });
    process.stdout.write(`${target} ${body} c${connections}: ${Math.round(r.rps)} req/s, ${r.errors} errors\n`);
    requests = warm.requests + r.requests;
  }
}
await stop(proxied.child);
await bench.close();
if (noProfile) process.exit(0);

const file = readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => join(dir, f))
  .filter((f) => statSync(f).mtimeMs >= since)
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
if (!file) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const total = [...self.values()].reduce((a, b) => a + b, 0);

function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.includes('/dist/')) return 'sidecar (dist)';
  return url;
}

const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
for (const [id, t] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  byPackage.set(packageOf(url, functionName), (byPackage.get(packageOf(url, functionName)) ?? 0) + t);
  const short = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'} ${short}`.trim();
  byFunction.set(key, (byFunction.get(key) ?? 0) + t);
}
const pct = (t: number): string =>
  `${((t / total) * 100).toFixed(1).padStart(5)}%${requests ? ` ${(t / requests).toFixed(1).padStart(6)} µs/req` : ''}`;
const top = (m: Map<string, number>, n: number): string =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) => `${pct(t)}  ${k}`).join('\n');
// Who calls the hottest functions (immediate caller chains, three frames up).
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const frame = (id: number): string => {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  return `${functionName || '(anonymous)'}${url ? ` ${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : ''}`;
};
const chains = new Map<string, number>();
for (const [id, t] of self) {
  const names = [frame(id)];
  for (let p = parent.get(id), i = 0; p !== undefined && i < 4; p = parent.get(p), i++) names.push(frame(p));
  const key = names.join('  <  ');
  chains.set(key, (chains.get(key) ?? 0) + t);
}

// Inclusive time of the sidecar's own functions (a sample counts once per function on its stack).
const inclusive = new Map<string, number>();
for (const [id, t] of self) {
  const seen = new Set<string>();
  for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
    const { url } = byId.get(p)!.callFrame;
    if (!url.includes('/dist/')) continue;
    const f = frame(p);
    if (seen.has(f)) continue;
    seen.add(f);
    inclusive.set(f, (inclusive.get(f) ?? 0) + t);
  }
}

process.stdout.write(`profile ${file} (${(total / 1e6).toFixed(2)} s sampled)\n\nby package (self time):\n${top(byPackage, 15)}\n\nhottest functions (self time):\n${top(byFunction, 30)}\n\nhottest call chains (self time, callee < caller):\n${top(chains, Number(process.env.PROFILE_CHAINS ?? 25))}\n\nsidecar functions, inclusive time:\n${top(inclusive, 25)}\n`);
