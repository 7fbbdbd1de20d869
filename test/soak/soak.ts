// The soak: the built sidecar (dist/main.js) as a child process, a fake
// upstream and gateway in this process, an open-loop load of JSON and SSE
// requests with random client aborts, and samples of the child's RSS, V8 heap
// (its own /metrics) and open file descriptors (/proc/<pid>/fd). Used by
// `npm run soak` (minutes) and by soak.test.ts (seconds, in CI).
import { Agent, request, type ClientRequest } from 'node:http';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { portsOf, runSidecar, type SidecarProcess } from '../helpers/process.ts';
import { openAiChunk, sendJson, chatCompletion, startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { FAULT_POLICY, tempDir } from '../faults/lib.ts';

export interface SoakOptions {
  readonly durationMs: number;
  /** Requests started per second (open loop: a slow sidecar does not slow the load). */
  readonly rate: number;
  /** Share of requests that stream (SSE). */
  readonly sseShare: number;
  /** Share of requests the client abandons on purpose. */
  readonly abortShare: number;
  /** Time before sampling starts (JIT, pools and buffers warm up). */
  readonly warmupMs: number;
  readonly sampleEveryMs: number;
  readonly log?: (line: string) => void;
}

export interface Sample {
  readonly t: number;
  readonly rss: number;
  readonly heap: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly fds: number;
}

export interface SoakReport {
  readonly started: number;
  readonly ok: number;
  readonly injectedAborts: number;
  /** Anything else: status not 200, a socket error, a stream cut by the sidecar. */
  readonly errors: string[];
  /** Request log lines of the child that are neither 2xx nor a client abort. */
  readonly sidecarErrors: Array<Record<string, unknown>>;
  readonly samples: Sample[];
  readonly slopes: { rssBytesPerMin: number; heapBytesPerMin: number; fdsPerMin: number };
  readonly exitCode: number | null;
  readonly rejectedProofs: string[];
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const [x, y] of points) {
    sx += x; sy += y; sxx += x * x; sxy += x * y;
  }
  const d = n * sxx - sx * sx;
  return d === 0 ? 0 : (n * sxy - sx * sy) / d;
}

async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

async function heapOf(adminPort: number): Promise<{ heap: number; heapTotal: number; external: number }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await res.text();
  const read = (name: string): number => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { heap: read('nodejs_heap_size_used_bytes'), heapTotal: read('nodejs_heap_size_total_bytes'), external: read('nodejs_external_memory_bytes') };
}

export interface SoakRig {
  readonly child: SidecarProcess;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly upstream: FakeUpstream;
  readonly gateway: FakeGateway;
  stop(): Promise<number | null>;
}

/** Starts the fake upstream (JSON, or SSE when the body asks to stream), gateway and the sidecar child. */
export async function startRig(options: { sseEvents?: number; sseGapMs?: number; env?: Record<string, string> } = {}): Promise<SoakRig> {
  const events = options.sseEvents ?? 8;
  const gap = options.sseGapMs ?? 15;
  const upstream = await startUpstream((req, res) => {
    if (!req.body.includes('"stream":true')) return sendJson(res, 200, chatCompletion());
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      if (sent++ < events) res.write(openAiChunk(`token ${sent} `));
      else {
        clearInterval(timer);
        res.end(`${openAiChunk('', 'stop')}data: [DONE]\n\n`);
      }
    }, gap);
    res.on('close', () => clearInterval(timer));
  });
  const identity: TestIdentity = await makeIdentityDir();
  const gateway = await startGateway();
  gateway.trust(identity.jkt, identity.agentId);
  const dir = await tempDir('fo-soak-');
  await writeFile(join(dir.dir, 'policy.json'), JSON.stringify(FAULT_POLICY));
  const child = runSidecar([], {
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_DEBUG_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: join(dir.dir, 'policy.json'),
    FIRSTOPS_DRAIN_TIMEOUT_MS: '5000',
    ...options.env,
  });
  const ports = portsOf(await child.waitFor('firstops-sidecar listening'));
  void calculateJwkThumbprint; // (the identity helper already computed the thumbprint)
  return {
    child,
    proxyPort: ports.proxy,
    adminPort: ports.admin,
    upstream,
    gateway,
    async stop() {
      child.child.kill('SIGTERM');
      const { code } = await child.exit();
      await upstream.close();
      await gateway.close();
      await identity.cleanup();
      await dir.cleanup();
      return code;
    },
  };
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const rig = await startRig();
  const pid = rig.child.child.pid!;
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const errors: string[] = [];
  const samples: Sample[] = [];
  let started = 0, ok = 0, injectedAborts = 0, inflight = 0;
  const begin = performance.now();

  const one = (n: number): void => {
    const sse = Math.random() < options.sseShare;
    const abort = Math.random() < options.abortShare;
    const body = JSON.stringify({ model: 'gpt-4o-mini', stream: sse, messages: [{ role: 'user', content: `soak ${n} SECRET-${n} ${'x'.repeat(Math.floor(Math.random() * 2000))}` }] });
    inflight++;
    started++;
    let settled = false;
    const settle = (outcome: 'ok' | 'abort' | string): void => {
      if (settled) return;
      settled = true;
      inflight--;
      if (outcome === 'ok') ok++;
      else if (outcome === 'abort') injectedAborts++;
      else errors.push(outcome);
    };
    let req: ClientRequest | undefined = undefined;
    req = request({ host: '127.0.0.1', port: rig.proxyPort, method: 'POST', path: '/llm/openai/v1/chat/completions', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer sk-test-SECRETKEY-0123456789abcdef' } }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (abort && received > 0) {
          settle('abort');
          req!.destroy();
        }
      });
      res.on('end', () => {
        if (res.statusCode !== 200) settle(`status ${res.statusCode}`);
        else if (!res.complete) settle('response cut');
        else if (sse && !received) settle('empty stream');
        else settle('ok');
      });
      res.on('error', (err) => settle(abort ? 'abort' : `response error ${err.message}`));
      res.on('aborted', () => settle(abort ? 'abort' : 'response aborted'));
    });
    req.on('error', (err) => settle(abort ? 'abort' : `request error ${err.message}`));
    req.end(body);
  };

  let n = 0;
  const tick = setInterval(() => {
    const due = Math.floor(((performance.now() - begin) / 1000) * options.rate);
    while (n < due) one(n++);
  }, 10);
  const deadline = begin + options.durationMs;
  let nextSample = begin + options.warmupMs;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(nextSample, deadline) - performance.now())));
    if (performance.now() >= nextSample) {
      const s: Sample = { t: (performance.now() - begin) / 1000, rss: await rssOf(pid), ...(await heapOf(rig.adminPort)), fds: await fdCount(pid) };
      samples.push(s);
      log(`t=${s.t.toFixed(0)}s started=${started} ok=${ok} aborts=${injectedAborts} errors=${errors.length} inflight=${inflight} rss=${(s.rss / 2 ** 20).toFixed(1)}MiB heap=${(s.heap / 2 ** 20).toFixed(1)}/${(s.heapTotal / 2 ** 20).toFixed(1)}MiB ext=${(s.external / 2 ** 20).toFixed(1)}MiB fds=${s.fds}`);
      nextSample += options.sampleEveryMs;
    }
  }
  clearInterval(tick);
  while (inflight > 0) await new Promise((r) => setTimeout(r, 20));
  agent.destroy();

  const perMin = (pick: (s: Sample) => number): number => slope(samples.map((s) => [s.t, pick(s)])) * 60;
  const slopes = { rssBytesPerMin: perMin((s) => s.rss), heapBytesPerMin: perMin((s) => s.heap), fdsPerMin: perMin((s) => s.fds) };
  const exitCode = await rig.stop();
  const sidecarErrors = rig.child.lines.filter((l) => l.msg === 'request' && !(Number(l.status) < 300 || l.code === 'client_aborted'));
  const unexpectedLogs = rig.child.lines.filter((l) => l.level === 'error' || l.level === 'fatal');
  for (const line of unexpectedLogs) errors.push(`sidecar logged ${line.level}: ${String(line.msg)}`);
  for (const line of rig.child.lines) {
    const text = JSON.stringify(line);
    if (text.includes('SECRETKEY') || text.includes('SECRET-') || text.includes('soak ')) errors.push(`a log line leaks request content: ${text.slice(0, 200)}`);
  }
  return { started, ok, injectedAborts, errors, sidecarErrors, samples, slopes, exitCode, rejectedProofs: rig.gateway.rejected.filter((w) => !/:0\//.test(w)) };
}
