// Process plumbing shared by run.ts and profile.ts: every child is pinned to
// a core, tracked, and killed however the parent ends; /proc readers for CPU
// time and memory.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { makeIdentityDir } from '../helpers/identity.ts';
import { COUNTS_PATH, type GatewayCounts } from './counts.ts';

export const LOAD_CORE = 0;
export const PROXY_CORE = 1;
export const ROOT = join(import.meta.dirname, '../..');
/** The built sidecar to measure; BENCH_SIDECAR points at another build (e.g. an older commit's worktree) to compare. */
export const SIDECAR_MAIN = process.env.BENCH_SIDECAR ?? join(ROOT, 'dist/main.js');

const children = new Set<ChildProcess>();
function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

/** Stops everything after `ms` whatever happens: the bench must end by itself. */
export function watchdog(ms: number): void {
  setTimeout(() => {
    process.stderr.write(`bench: still running after ${ms / 1000} s; giving up\n`);
    process.exit(1);
  }, ms).unref();
}

export function start(core: number, args: string[], env: Record<string, string>, stdout: 'pipe' | 'ignore'): ChildProcess {
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', stdout, 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export async function firstLine(child: ChildProcess): Promise<Record<string, number>> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    lines.close();
    return JSON.parse(line) as Record<string, number>;
  }
  throw new Error('child exited before announcing its ports');
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function readyz(adminPort: number): Promise<boolean> {
  try {
    const res = await request(`http://127.0.0.1:${adminPort}/readyz`);
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * Resolves once the sidecar serves nothing (firstops_inflight_requests is 0
 * on every route): a load generator that stopped may leave requests in flight
 * that still reach the gateway.
 */
export async function settled(adminPort: number, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const res = await request(`http://127.0.0.1:${adminPort}/metrics`);
    const text = await res.body.text();
    const busy = [...text.matchAll(/^firstops_inflight_requests\{[^}]*\} (\d+)/gm)].some((m) => m[1] !== '0');
    if (!busy) return;
    if (performance.now() > deadline) throw new Error(`sidecar on admin port ${adminPort} still busy after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process, in seconds (10 ms resolution). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident memory now and its high-water mark, in MB. */
export function memory(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

/**
 * Starts the Node ceiling proxy on the proxy core as plain JavaScript (types
 * stripped here), so it does not pay for Node's TypeScript loader in memory
 * and start time while the sidecar runs from dist/. Resolves with its port.
 */
export async function startCeiling(upstreamUrl: string, nodeFlags: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const js = join(ROOT, 'test/bench/results/ceiling-proxy.mjs');
  mkdirSync(join(ROOT, 'test/bench/results'), { recursive: true });
  writeFileSync(js, stripTypeScriptTypes(readFileSync(join(ROOT, 'test/bench/ceiling-proxy.ts'), 'utf8')));
  const port = await freePort();
  const child = start(PROXY_CORE, [...nodeFlags, js], { CEILING_PORT: String(port), CEILING_UPSTREAM: upstreamUrl }, 'pipe');
  await firstLine(child);
  return { child, port };
}

/**
 * Builds the image's runtime bundle (deploy/image/bundle.mjs, from dist/)
 * into `dir` and returns its entry plus the runtime settings the Dockerfile
 * gives it (NODE_ENV, NODE_OPTIONS), read from the Dockerfile itself.
 */
export function buildImageBundle(dir: string): { main: string; env: Record<string, string> } {
  execFileSync(process.execPath, [join(ROOT, 'deploy/image/bundle.mjs'), dir], { cwd: ROOT, stdio: 'ignore' });
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = { NODE_ENV: 'production' };
  const options = /NODE_OPTIONS=(\S+)/.exec(runtime)?.[1];
  if (options) env.NODE_OPTIONS = options.replace(/^"|"$/g, '');
  return { main: join(dir, 'dist/main.js'), env };
}

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly adminPort: number;
  /** From just before spawn to the first /readyz 200. */
  readonly readyMs: number;
}

export interface Bench {
  readonly upstreamUrl: string;
  readonly gatewayUrl: string;
  readonly fakes: ChildProcess;
  /** A temporary directory removed at exit. */
  readonly scratch: string;
  /** Local allow-all policy, no identity. */
  readonly localEnv: Record<string, string>;
  /** Identity loaded, no local policy: every LLM request is evaluated by the fake gateway. */
  readonly remoteEnv: Record<string, string>;
  /**
   * `node dist/main.js` on the proxy core, stdout (the request log) to /dev/null, or to a pipe
   * the caller reads (`stdout: 'pipe'`, as in a container); resolves once /readyz answers 200.
   */
  startSidecar(env: Record<string, string>, nodeFlags?: string[], main?: string, stdout?: 'pipe' | 'ignore'): Promise<SidecarProcess>;
  /** What the fake gateway has answered so far. */
  gatewayCounts(): Promise<GatewayCounts>;
  close(): Promise<void>;
}

/** Pins this process to the load core, starts the fakes and writes the policy and identity the sidecars use. */
export async function setUp(): Promise<Bench> {
  execFileSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' });
  const scratch = mkdtempSync(join(tmpdir(), 'fo-bench-'));
  const identity = await makeIdentityDir({ agentId: 'agt_bench' });
  process.on('exit', () => {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(identity.dir, { recursive: true, force: true });
  });
  const policyFile = join(scratch, 'allow.yaml');
  writeFileSync(policyFile, 'version: 1\ndefault: allow\nrules: []\n');
  const noIdentity = join(scratch, 'no-identity');
  mkdirSync(noIdentity);

  const fakes = start(LOAD_CORE, ['test/bench/fakes.ts'], {}, 'pipe');
  const ports = await firstLine(fakes);
  const upstreamUrl = `http://127.0.0.1:${ports.upstream}`;
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;

  return {
    upstreamUrl,
    gatewayUrl,
    fakes,
    scratch,
    localEnv: { FIRSTOPS_POLICY_FILE: policyFile, FIRSTOPS_IDENTITY_DIR: noIdentity },
    remoteEnv: { FIRSTOPS_IDENTITY_DIR: identity.dir },
    async startSidecar(env, nodeFlags = [], main = SIDECAR_MAIN, stdout = 'ignore') {
      const [port, adminPort] = [await freePort(), await freePort()];
      const started = performance.now();
      const child = start(PROXY_CORE, [...nodeFlags, main], {
        FIRSTOPS_PORT: String(port),
        FIRSTOPS_ADMIN_PORT: String(adminPort),
        FIRSTOPS_ADMIN_HOST: '127.0.0.1',
        // Listening, as by default, so the ring push is part of what is measured.
        FIRSTOPS_DEBUG_PORT: '0',
        FIRSTOPS_UPSTREAM_OPENAI: upstreamUrl,
        FIRSTOPS_GATEWAY_URL: gatewayUrl,
        FIRSTOPS_LOG_LEVEL: 'info',
        ...env,
      }, stdout);
      for (;;) {
        if (child.exitCode !== null) throw new Error(`sidecar exited with ${child.exitCode} before it was ready`);
        if (await readyz(adminPort)) return { child, pid: child.pid!, port, adminPort, readyMs: performance.now() - started };
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
    async gatewayCounts() {
      const res = await request(gatewayUrl + COUNTS_PATH);
      return (await res.body.json()) as GatewayCounts;
    },
    close: () => stop(fakes),
  };
}

/** The 1.2 KB chat request bench:ceiling and its profile send. */
export const CEILING_CHAT = {
  model: 'gpt-4o-mini',
  temperature: 0.2,
  messages: [
    { role: 'system', content: 'You are a helpful assistant that answers briefly and precisely. '.repeat(4).trim() },
    { role: 'user', content: 'Summarise the following text in one sentence: '.concat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(16).trim()) },
  ],
};

/**
 * Writes a bench's figures to test/bench/results/<kind>-<timestamp>.json
 * (gitignored), with what every result file records (date, Node, the build
 * measured, the CPU model), and returns the file's path.
 */
export function writeResult(kind: string, fields: Record<string, unknown>): string {
  const dir = join(ROOT, 'test/bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${kind}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    sidecar: SIDECAR_MAIN,
    cpus: cpus().map((c) => c.model)[0],
    ...fields,
  }, null, 2)}\n`);
  return file;
}
