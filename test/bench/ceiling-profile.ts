// Where the sidecar's time goes beyond its floor (issue 21):
// `node test/bench/ceiling-profile.ts [local|remote] [json_c16|sse_c16|json_c1] [seconds]`
// (after `npm run build`). Runs the sidecar (defaults, allow-all local policy;
// `remote` adds an identity, so every request is evaluated by the fake
// gateway) and its floor (the minimal proxy; for `remote` the two-exchange
// floor) one after the other under `--cpu-prof`, each driven by wrk, and
// prints self time per request grouped by module (hono, undici, pino,
// prom-client, each src file, node's internals, GC) for both, the
// difference, and the sidecar's hottest functions and inclusive time of its
// own functions. `PROFILE_FILES=a.cpuprofile:requests,b.cpuprofile:requests`
// analyses existing profiles instead. Profiles stay in test/bench/results/profiles/.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { CEILING_CHAT, LOAD_CORE, PROXY_CORE, ROOT, firstLine, freePort, setUp, start, stop, watchdog } from './procs.ts';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const [kind = 'local', caseName = 'json_c16', secondsArg = '8'] = process.argv.slice(2);
const SECONDS = Number(secondsArg);
const DIR = join(import.meta.dirname, 'results', 'profiles');
mkdirSync(DIR, { recursive: true });

/** The module a frame belongs to, at the grain issue 21 asks for. */
export function groupOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : `(native) ${name}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return `src/${url.slice(dist + 6).replace(/\.js$/, '.ts')}`;
  if (url.startsWith('node:internal/deps/undici')) return "node's bundled undici";
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' ? parts.slice(1, parts.length > 2 ? 2 : 1).join('/') : parts[0]}`;
  }
  if (url.includes('ceiling-proxy')) return 'ceiling-proxy';
  return url;
}

const frameName = (n: Node): string => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? ` ${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${where}`;
};

interface Analysis { groups: Map<string, number>; functions: Map<string, number>; inclusive: Map<string, number>; cpuUs: number }
function analyse(file: string): Analysis {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let cpuUs = 0;
  const add = (m: Map<string, number>, k: string, t: number): void => void m.set(k, (m.get(k) ?? 0) + t);
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    cpuUs += t;
    const g = groupOf(n.callFrame.url, n.callFrame.functionName);
    add(groups, g, t);
    add(functions, `${frameName(n)}  [${g}]`, t);
    const seen = new Set<string>();
    for (let q: number | undefined = id; q !== undefined; q = parent.get(q)) {
      const f = byId.get(q)!;
      if (!f.callFrame.url.includes('/dist/')) continue;
      const k = frameName(f);
      if (!seen.has(k)) {
        seen.add(k);
        add(inclusive, k, t);
      }
    }
  }
  return { groups, functions, inclusive, cpuUs };
}

const us = (t: number, requests: number): string => (t / requests).toFixed(2).padStart(7);
function report(label: string, a: Analysis, requests: number): string {
  const top = (m: Map<string, number>, n: number): string => [...m].sort((x, y) => y[1] - x[1]).slice(0, n)
    .map(([k, t]) => `${us(t, requests)} µs/req ${((t / a.cpuUs) * 100).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  return `== ${label}: ${requests} requests, ${(a.cpuUs / requests).toFixed(1)} µs of sampled CPU per request ==\n\nby module (self):\n${top(a.groups, 40)}\n\nhottest functions (self):\n${top(a.functions, Number(process.env.PROFILE_TOP ?? 50))}\n\nsrc functions (inclusive):\n${top(a.inclusive, 30)}\n`;
}
function compare(labels: [string, string], [a, b]: [Analysis, Analysis], [ra, rb]: [number, number]): string {
  const keys = new Set([...a.groups.keys(), ...b.groups.keys()]);
  const rows = [...keys].map((k) => ({ k, a: (a.groups.get(k) ?? 0) / ra, b: (b.groups.get(k) ?? 0) / rb }))
    .sort((x, y) => (y.a - y.b) - (x.a - x.b));
  const lines = [`| module | ${labels[0]} µs/req | ${labels[1]} µs/req | difference |`, '|---|---:|---:|---:|'];
  for (const r of rows) if (Math.abs(r.a - r.b) >= 0.5 || r.a >= 2) lines.push(`| ${r.k} | ${r.a.toFixed(1)} | ${r.b.toFixed(1)} | ${(r.a - r.b).toFixed(1)} |`);
  lines.push(`| **total sampled CPU** | ${(a.cpuUs / ra).toFixed(1)} | ${(b.cpuUs / rb).toFixed(1)} | ${(a.cpuUs / ra - b.cpuUs / rb).toFixed(1)} |`);
  return lines.join('\n');
}

if (process.env.PROFILE_FILES) {
  const files = process.env.PROFILE_FILES.split(',').map((s) => s.split(':') as [string, string]);
  const an = files.map(([f]) => analyse(f));
  for (let i = 0; i < files.length; i++) process.stdout.write(`${report(files[i]![0], an[i]!, Number(files[i]![1]))}\n`);
  if (files.length === 2) process.stdout.write(`${compare([files[0]![0], files[1]![0]], [an[0]!, an[1]!], [Number(files[0]![1]), Number(files[1]![1])])}\n`);
  process.exit(0);
}

watchdog(10 * 60_000);
const CASES: Record<string, { connections: number; stream: boolean }> = {
  json_c1: { connections: 1, stream: false },
  json_c16: { connections: 16, stream: false },
  sse_c16: { connections: 16, stream: true },
};
const c = CASES[caseName];
if (!c) throw new Error(`unknown case ${caseName}`);
const bench = await setUp();
const CHAT = CEILING_CHAT;
const body = JSON.stringify(c.stream ? { ...CHAT, stream: true, stream_options: { include_usage: true } } : CHAT);
const script = join(bench.scratch, 'profile.lua');
writeFileSync(script, `wrk.method = "POST"\nwrk.body = [==[${body}]==]\nwrk.headers[ "content-type" ] = "application/json"\nwrk.headers[ "authorization" ] = "Bearer sk-bench-0123456789abcdef"\n`);
const wrk = (url: string, seconds: number): Promise<number> => new Promise((resolve, reject) => {
  execFile('taskset', ['-c', String(LOAD_CORE), 'wrk', '-t1', `-c${c.connections}`, `-d${seconds}s`, '-s', script, url], (err, out, stderr) => {
    const done = /(\d+) requests in/.exec(out);
    if (err || stderr.trim() || !done || /Non-2xx|Socket errors/.test(out)) return reject(new Error(`wrk: ${err?.message ?? ''} ${stderr} ${out}`));
    resolve(Number(done[1]));
  });
});
const flags = ['--cpu-prof', `--cpu-prof-dir=${DIR}`, `--cpu-prof-interval=${process.env.PROFILE_INTERVAL ?? 100}`];
const PATH = '/llm/openai/v1/chat/completions';

async function profileOf(startIt: () => Promise<{ port: number; stop: () => Promise<void> }>): Promise<{ file: string; requests: number }> {
  const since = Date.now();
  const proc = await startIt();
  // The profile covers the warm-up too: every request counts.
  const requests = (await wrk(`http://127.0.0.1:${proc.port}${PATH}`, 2)) + (await wrk(`http://127.0.0.1:${proc.port}${PATH}`, SECONDS));
  await proc.stop();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const file = readdirSync(DIR).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(DIR, f))
    .filter((f) => statSync(f).mtimeMs >= since).sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
  if (!file) throw new Error('no profile written');
  return { file, requests };
}

const remote = kind === 'remote';
const sidecar = await profileOf(async () => {
  const s = await bench.startSidecar(remote ? { ...bench.localEnv, ...bench.remoteEnv } : bench.localEnv, flags);
  return { port: s.port, stop: () => stop(s.child) };
});
const floor = await profileOf(async () => {
  const js = join(import.meta.dirname, 'results', 'ceiling-proxy.mjs');
  writeFileSync(js, stripTypeScriptTypes(readFileSync(join(ROOT, 'test/bench/ceiling-proxy.ts'), 'utf8')));
  const port = await freePort();
  const env: Record<string, string> = remote ? { CEILING_GATEWAY: bench.gatewayUrl, CEILING_KEY: join(bench.remoteEnv.FIRSTOPS_IDENTITY_DIR!, 'private-key.pem') } : {};
  const child = start(PROXY_CORE, [...flags, js], { CEILING_PORT: String(port), CEILING_UPSTREAM: bench.upstreamUrl, ...env }, 'pipe');
  await firstLine(child);
  return { port, stop: () => stop(child) };
});
await bench.close();
const a = analyse(sidecar.file);
const b = analyse(floor.file);
const floorName = remote ? 'two-exchange floor' : 'minimal proxy';
process.stdout.write(`${report(`sidecar (${kind}, ${caseName}) ${sidecar.file}`, a, sidecar.requests)}\n${report(`${floorName} ${floor.file}`, b, floor.requests)}\n`);
process.stdout.write(`${compare([`sidecar ${kind}`, floorName], [a, b], [sidecar.requests, floor.requests])}\n`);
process.exit(0);
