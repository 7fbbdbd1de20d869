// Issue 20, "never killed": the image under the chart's own memory limit
// (helm/firstops-sidecar/values.yaml sidecar.resources.limits.memory, read,
// not hard-coded), with the shipped example policy and a remote gateway on the
// host loopback answering every EvaluateHook with modify (the event's
// tool_input re-encoded, so the forward is the same size). All scenarios run
// in one container, one after the other:
//   (a) one prompt at the effective body cap (from `check` in the image);
//   (b) four 48 MiB prompts at once;  (c) eight 12 MiB prompts at once;
//   (d) a Content-Length shorter than the bytes sent, and a chunked body
//       past the cap;
//   (e) a 48 MiB prompt full of e-mail addresses, redacted and forwarded
//       whole (the upstream gets exactly the redacted bytes).
// Throughout, one SSE stream stays open through the sidecar (the upstream
// writes an event after every health poll) and must end intact, and /healthz
// is polled every 200 ms from a worker thread (so the test's own work on
// large bodies cannot delay it) and must always answer 200 within 1 s. Every
// request must get an HTTP answer: 200, or a clean 413/429/503 (a 503
// body_budget_exhausted with Retry-After). At the end the container must
// still run, never OOM-killed, never restarted; its cgroup's peak memory is
// printed. Needs root and podman (.ci/setup-container.sh); fails, never
// skips, when they are missing. The image build is shared with
// image.test.ts (test/container/sidecar-image.ts, under its flock).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { buildSidecarImage } from './sidecar-image.ts';
import { chartMemoryLimit, freePort, must, podmanUsable, quiet, run } from './podman.ts';

const NAME = `firstops-sidecar-memory-${process.pid}`;
const MiB = 1024 * 1024;
const PATH = '/llm/openai/v1/chat/completions';
/** How long one request may take before it counts as unanswered. */
const ANSWER_MS = 90_000;

// ---- prompts -----------------------------------------------------------------
const HEAD = '{"model":"m","messages":[{"role":"user","content":"';
const TAIL = '"}]}';
const PLAIN_UNIT = 'lorem ipsum dolor sit amet, consectetur adipiscing elit ';
const MAIL_UNIT = 'mail bob.jones@example.com ok ';
/** What examples/policy.yaml turns MAIL_UNIT into. */
const MAIL_REDACTED = 'mail [redacted-email] ok ';

/**
 * An OpenAI chat body of exactly `size` bytes whose content is whole units
 * (never half an address) padded with spaces; with `replacement`, the same
 * body as the example policy forwards it.
 */
function promptBody(size: number, unit: string, replacement = unit): Buffer {
  const room = size - HEAD.length - TAIL.length;
  assert.ok(room >= 0, `a prompt of ${size} bytes is too small`);
  const units = Math.floor(room / unit.length);
  const body = Buffer.alloc(HEAD.length + units * replacement.length + (room - units * unit.length) + TAIL.length, ' ');
  body.write(HEAD, 0, 'latin1');
  if (units > 0) body.fill(replacement, HEAD.length, HEAD.length + units * replacement.length, 'latin1');
  body.write(TAIL, body.length - TAIL.length, 'latin1');
  return body;
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- fake upstream on the host loopback ----------------------------------------
interface Arrival { length: number; sha256: string; at: boolean }
/** What the upstream received, by the x-memtest-id header the test sets on each prompt. */
const arrivals = new Map<string, Arrival>();
const COMPLETION = Buffer.from(JSON.stringify({
  id: 'chatcmpl-memory', object: 'chat.completion', created: 1_700_000_000, model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
}));

/** The one SSE stream: the upstream writes an event per tick and ends on finish. */
const sse = {
  res: undefined as ServerResponse | undefined,
  written: [] as string[],
  tick(): void {
    if (!this.res || this.res.writableEnded) return;
    const event = `data: {"choices":[{"index":0,"delta":{"content":"tick ${this.written.length} "}}]}\n\n`;
    this.written.push(event);
    this.res.write(event);
  },
  finish(): void {
    if (!this.res || this.res.writableEnded) return;
    const done = 'data: [DONE]\n\n';
    this.written.push(done);
    this.res.end(done);
  },
};

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const id = String(req.headers['x-memtest-id'] ?? '');
  if (id === 'sse') {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      sse.res = res;
      sse.tick();
    });
    return;
  }
  const hash = createHash('sha256');
  let length = 0;
  let at = false;
  req.on('data', (c: Buffer) => {
    hash.update(c);
    length += c.length;
    if (!at && c.includes(0x40)) at = true;
  });
  req.on('end', () => {
    arrivals.set(id, { length, sha256: hash.digest('hex'), at });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length });
    res.end(COMPLETION);
  });
}

// ---- /healthz, polled from a worker thread ------------------------------------------
// Its own event loop: the test's JSON work on 48 MiB bodies (the fake gateway
// parses every event) cannot make the sidecar look slow.
const HEALTH_POLLER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') stopped = true; });
const poll = () => new Promise((resolve) => {
  const t0 = performance.now();
  const req = http.get({ host: '127.0.0.1', port: workerData.port, path: '/healthz', agent: false, timeout: 5000 }, (res) => {
    res.resume();
    res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    res.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, error: e.message }));
  });
  req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
  req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, error: e.message }));
});
(async () => {
  while (!stopped) {
    const t0 = performance.now();
    const r = await poll();
    parentPort.postMessage({ at: Date.now(), ...r });
    const wait = 200 - (performance.now() - t0);
    if (wait > 0 && !stopped) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  parentPort.postMessage('stopped');
})();
`;
interface Poll { at: number; status: number; ms: number; error?: string }

// ---- state shared by the tests of this file ---------------------------------------
let image = '';
let containerStarted = false;
let running = false;
let proxyPort = 0;
let adminPort = 0;
let maxBody = 0;
let memoryReport: unknown;
let upstream: Server | undefined;
let gateway: FakeGateway | undefined;
let identity: TestIdentity | undefined;
let poller: Worker | undefined;
const polls: Poll[] = [];
let cgroupPeakFile = '';
let cgroupOomFile = '';
let cgroupPeak = 0;
let cgroupOomKills = 0;
let hooks = 0;
const report: string[] = [];
/** The SSE stream as the client saw it. */
const stream = { text: '', ended: false, error: '', status: 0, done: undefined as Promise<void> | undefined };

/**
 * The container's memory cgroup files: the peak (v1 memory.max_usage_in_bytes,
 * v2 memory.peak) and the OOM-kill counter (v1 memory.oom_control, v2
 * memory.events, both "oom_kill N"). podman's State.OOMKilled is not enough:
 * with runc on cgroup v1 it stays false for a process the cgroup's OOM killer
 * ended (exit 137).
 */
function findCgroupFiles(pid: string): { peak: string; oom: string } {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.map((l) => l.split(':')).find((f) => f[1]?.split(',').includes('memory'));
  if (v1) {
    const dir = join('/sys/fs/cgroup/memory', v1.slice(2).join(':'));
    return { peak: join(dir, 'memory.max_usage_in_bytes'), oom: join(dir, 'memory.oom_control') };
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  const mount = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[f.indexOf('-') + 1] === 'cgroup2');
  if (!v2 || !mount) return { peak: '', oom: '' };
  const dir = join(mount[4]!, v2.slice(3));
  return { peak: join(dir, 'memory.peak'), oom: join(dir, 'memory.events') };
}
/** Reads the cgroup's peak and OOM kills while it exists (it goes with the container). */
function readPeak(): void {
  try {
    if (cgroupPeakFile) cgroupPeak = Math.max(cgroupPeak, Number(readFileSync(cgroupPeakFile, 'utf8').trim()));
    if (cgroupOomFile) {
      const kills = /^oom_kill (\d+)$/m.exec(readFileSync(cgroupOomFile, 'utf8'));
      if (kills) cgroupOomKills = Math.max(cgroupOomKills, Number(kills[1]));
    }
  } catch { /* the cgroup is gone with the container */ }
}

/** The gateway double keeps every event; a scenario's are no longer needed after it. */
async function dropGatewayHistory(): Promise<void> {
  if (!gateway) return;
  gateway.hookRequests.length = 0;
  while (gateway.events.size > 0) await gateway.events.next();
}

after(async () => {
  if (poller) {
    poller.postMessage('stop');
    await poller.terminate();
  }
  if (containerStarted) {
    if (!running) {
      const logs = await run('podman', ['logs', '--tail', '30', NAME]);
      console.log(`# memory: last container log lines:\n${(logs.stdout + quiet(logs.stderr)).split('\n').map((l) => `#   ${l.slice(0, 300)}`).join('\n')}`);
    }
    await run('podman', ['rm', '--force', '--time', '0', NAME]);
  }
  sse.res?.destroy();
  upstream?.closeAllConnections();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  await gateway?.close();
  await identity?.cleanup();
  for (const line of report) console.log(`# memory: ${line}`);
});

// ---- requests ------------------------------------------------------------------------
interface Outcome {
  id: string;
  status: number;
  code: string;
  retryAfter: string | undefined;
  /** Why no HTTP answer came, when none did. */
  error: string;
  ms: number;
}

function errorCode(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; type?: unknown } | string; code?: unknown };
    const e = parsed.error;
    if (e && typeof e === 'object') return String(e.code ?? e.type ?? '');
    return String(parsed.code ?? '');
  } catch {
    return '';
  }
}

/** POSTs one prompt through the sidecar (Content-Length, or chunked in 256 KiB writes). */
function send(id: string, body: Buffer, options: { chunked?: boolean } = {}): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Omit<Outcome, 'id' | 'ms'>): void => {
      if (settled) return;
      settled = true;
      resolve({ id, ms: Math.round(performance.now() - t0), ...o });
    };
    const headers: Record<string, string | number> = { 'content-type': 'application/json', authorization: 'Bearer sk-agent-own-key', 'x-memtest-id': id };
    if (!options.chunked) headers['content-length'] = body.length;
    const req = request({ host: '127.0.0.1', port: proxyPort, path: PATH, method: 'POST', headers, agent: false, timeout: ANSWER_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        done({ status: res.statusCode ?? 0, code: res.statusCode === 200 ? '' : errorCode(text), retryAfter: header(res.headers, 'retry-after'), error: '' });
      });
      res.on('error', (err) => done({ status: res.statusCode ?? 0, code: '', retryAfter: undefined, error: `response cut: ${err.message}` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${ANSWER_MS} ms`)));
    // Once an answer came, the server may close before the rest of the body is written.
    req.on('error', (err) => done({ status: 0, code: '', retryAfter: undefined, error: err.message }));
    if (!options.chunked) {
      req.end(body);
      return;
    }
    let offset = 0;
    const pump = (): void => {
      while (offset < body.length && !req.destroyed) {
        const piece = body.subarray(offset, offset + 256 * 1024);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}
function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Over a raw socket: writes `head`, then `pieces()` with backpressure until
 * they run out or an answer has arrived and the server has closed; resolves
 * with the first HTTP answer on the connection.
 */
function rawExchange(id: string, head: string, pieces: () => Iterator<Buffer>): Promise<Outcome & { after: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket: Socket = connect(proxyPort, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    let parsed: { status: number; headers: Record<string, string>; bodyStart: number; length: number } | undefined;
    let written = 0;
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${ANSWER_MS} ms`)), ANSWER_MS);
    const finish = (error = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const body = parsed ? data.subarray(parsed.bodyStart, parsed.bodyStart + parsed.length).toString('utf8') : '';
      const rest = parsed ? data.subarray(parsed.bodyStart + parsed.length).toString('latin1').slice(0, 200) : '';
      resolve({
        id, status: parsed?.status ?? 0, code: parsed && parsed.status !== 200 ? errorCode(body) : '',
        retryAfter: parsed?.headers['retry-after'],
        error: parsed ? '' : `${error || 'connection closed without an answer'} after ${(written / MiB).toFixed(1)} MiB written`,
        ms: Math.round(performance.now() - t0), after: rest,
      });
      socket.destroy();
    };
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      if (!parsed) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = data.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        parsed = { status: Number(lines[0]!.split(' ')[1]), headers, bodyStart: end + 4, length: Number(headers['content-length'] ?? 0) };
      }
      // Read a little past the first answer: a second one (for the bytes past a short Content-Length) is reported.
      if (data.length >= parsed.bodyStart + parsed.length + 200) finish();
    });
    socket.on('error', (err) => finish(err.message));
    socket.on('close', () => finish());
    socket.once('connect', () => {
      const it = pieces();
      const pump = (): void => {
        for (;;) {
          if (socket.destroyed || settled) return;
          const next = it.next();
          if (next.done) return;
          written += next.value.length;
          if (!socket.write(next.value)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      socket.write(head);
      pump();
    });
  });
}

/** What the tests accept as an HTTP answer; returns why not, or '' when it is one. */
function unclean(o: Outcome, extra: number[] = []): string {
  if (o.error) return `${o.id}: no HTTP answer (${o.error})`;
  if (o.status === 200) return '';
  if (o.status === 413 && o.code === 'body_too_large') return '';
  if (o.status === 429) return '';
  if (o.status === 503) {
    if (!o.code) return `${o.id}: 503 without an error code`;
    if (o.code === 'body_budget_exhausted' && !o.retryAfter) return `${o.id}: 503 body_budget_exhausted without Retry-After`;
    return '';
  }
  if (extra.includes(o.status)) return '';
  return `${o.id}: answered ${o.status} ${o.code}`;
}
const summary = (outcomes: Outcome[]): string => outcomes.map((o) => `${o.id} ${o.error ? `ERR(${o.error})` : `${o.status}${o.code ? ` ${o.code}` : ''}${o.retryAfter ? ` retry-after=${o.retryAfter}` : ''}`} ${o.ms} ms`).join('; ');

/** For a 200, the upstream must have received exactly the expected bytes. */
function checkForwarded(o: Outcome, expected: Buffer, what: string): void {
  if (o.status !== 200) return;
  const got = arrivals.get(o.id);
  assert.ok(got, `${o.id} answered 200 but the upstream never received it`);
  assert.equal(got.length, expected.length, `${o.id}: upstream received ${got.length} bytes, expected ${expected.length} (${what})`);
  assert.equal(got.sha256, sha(expected), `${o.id}: upstream received other bytes than ${what}`);
}

function assertAlive(): void {
  assert.ok(running, 'the sidecar container is not running (see the first failure above)');
}

/** After every scenario: the container must still run and the stream must still be open. */
async function checkContainer(scenario: string): Promise<void> {
  await dropGatewayHistory();
  readPeak();
  const state = (await run('podman', ['inspect', '--format', '{{.State.Running}} {{.State.OOMKilled}} {{.State.ExitCode}} {{.RestartCount}}', NAME])).stdout.trim();
  if (!state.startsWith('true ')) running = false;
  assert.ok(state.startsWith('true false'), `after ${scenario}: container state (running oomkilled exit restarts) is "${state}"${cgroupOomKills ? `, cgroup OOM kills ${cgroupOomKills}` : ''}`);
  assert.equal(cgroupOomKills, 0, `after ${scenario}: the cgroup's OOM killer ran`);
  assert.ok(!stream.ended && !stream.error, `after ${scenario}: the SSE stream ended early (${stream.error || 'ended'})`);
}

// ---- tests ---------------------------------------------------------------------------
test('image builds (shared with image.test.ts)', { timeout: 2_100_000 }, async () => {
  await podmanUsable();
  image = (await buildSidecarImage()).id;
});

const limit = chartMemoryLimit();

test(`container under the chart's limit (${limit.text}): example policy, gateway answering modify, one SSE stream, /healthz polled`, { timeout: 120_000 }, async (t) => {
  assert.ok(image, 'image build failed (see above)');
  const upstreamPort = await freePort();
  upstream = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, upstreamHandler);
  await new Promise<void>((r) => upstream!.listen(upstreamPort, '127.0.0.1', r));

  gateway = await startGateway();
  gateway.onHook((event) => {
    hooks += 1;
    // modify, with the body it was asked about: the forward is the same size.
    const payload = Buffer.from(JSON.stringify(event.tool_input)).toString('base64');
    return { body: { decision: 'modify', reason: 'memory test', policy_id: 'memory-test-modify', modified_payload: payload } };
  });
  // The identity Secret, owned by the container's user and readable only by it.
  identity = await makeIdentityDir({ agentId: 'agt_memory_test' });
  gateway.trust(identity.jkt, identity.agentId);
  for (const f of ['private-key.pem', 'agent-id']) {
    chownSync(join(identity.dir, f), 65532, 65532);
    chmodSync(join(identity.dir, f), 0o400);
  }
  chownSync(identity.dir, 65532, 65532);
  chmodSync(identity.dir, 0o500);

  [proxyPort, adminPort] = [await freePort(), await freePort()];
  const memory = ['--memory', limit.podman, '--memory-swap', limit.podman];
  const env = [
    '-e', `FIRSTOPS_PORT=${proxyPort}`, '-e', `FIRSTOPS_ADMIN_PORT=${adminPort}`, '-e', 'FIRSTOPS_ADMIN_HOST=127.0.0.1',
    // Host network: the default 9324 could be taken by a concurrent test.
    '-e', 'FIRSTOPS_DEBUG_PORT=0',
    '-e', `FIRSTOPS_UPSTREAM_OPENAI=http://127.0.0.1:${upstreamPort}`,
    '-e', `FIRSTOPS_GATEWAY_URL=${gateway.baseUrl}`,
    '-e', 'FIRSTOPS_POLICY_FILE=/app/examples/policy.yaml',
    // The fake gateway parses and re-encodes every event on this process's
    // one thread while it also drives the load: its slowness must not turn
    // into 503 policy_unavailable. Everything else keeps its default.
    '-e', 'FIRSTOPS_POLICY_TIMEOUT_MS=60000',
  ];
  const secret = ['-v', `${identity.dir}:/var/run/secrets/firstops:ro`];

  // The effective cap (and, once it exists, the memory budget) as `check`
  // resolves it under the same limit.
  const check = await run('podman', ['run', '--rm', '--network', 'none', '--read-only', '--user', '65532:65532', ...memory, ...secret, ...env, image, '/app/dist/main.js', 'check']);
  assert.equal(check.code, 0, `check failed:\n${check.stdout}\n${quiet(check.stderr)}`);
  const resolved = JSON.parse(check.stdout) as { memory?: Record<string, unknown>; config?: Record<string, unknown> & { memory?: Record<string, unknown> } };
  memoryReport = resolved.memory ?? resolved.config?.memory;
  const mem = memoryReport as { max_body_bytes?: number } | undefined;
  maxBody = Number(mem?.max_body_bytes ?? resolved.config?.max_body_bytes ?? resolved.config?.maxBodyBytes);
  assert.ok(Number.isSafeInteger(maxBody) && maxBody > 0, `no body cap in check's output: ${check.stdout.slice(0, 2000)}`);
  report.push(`--memory=${limit.text} (${limit.bytes} bytes); check: max body ${maxBody} bytes (${(maxBody / MiB).toFixed(1)} MiB); memory ${JSON.stringify(memoryReport ?? 'not reported')}`);
  t.diagnostic(report.at(-1)!);

  await must('podman', [
    'run', '--detach', '--name', NAME, ...memory,
    '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '--network', 'host', '--health-interval', 'disable',
    ...secret, ...env, image,
  ]);
  containerStarted = true;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
    await r?.body?.cancel();
    if (r?.status === 200) break;
    if (Date.now() > deadline) {
      const logs = await run('podman', ['logs', NAME]);
      assert.fail(`/readyz never answered 200 within 30 s; container logs:\n${logs.stdout}${quiet(logs.stderr)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  running = true;
  const pid = (await must('podman', ['inspect', '--format', '{{.State.Pid}}', NAME])).trim();
  ({ peak: cgroupPeakFile, oom: cgroupOomFile } = findCgroupFiles(pid));
  assert.ok(cgroupPeakFile && existsSync(cgroupPeakFile), `no cgroup memory peak file for the container (pid ${pid}): ${cgroupPeakFile}`);
  readPeak();
  const startLine = (await run('podman', ['logs', NAME])).stdout.split('\n').find((l) => l.includes('firstops-sidecar listening'));
  t.diagnostic(`start: ${startLine?.slice(0, 300) ?? '(no listening line)'}`);

  // The SSE stream, open until the last test; opened once its first event arrived.
  let opened: () => void = () => {};
  const firstEvent = new Promise<void>((resolve) => { opened = resolve; });
  stream.done = new Promise<void>((resolve) => {
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'stream until the end of the test' }] });
    const req = request({ host: '127.0.0.1', port: proxyPort, path: PATH, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-memtest-id': 'sse' } }, (res) => {
      stream.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        stream.text += c;
        opened();
      });
      res.on('end', () => { stream.ended = true; resolve(); });
      res.on('error', (err) => { stream.error = err.message; resolve(); });
      res.on('aborted', () => { stream.error ||= 'aborted'; });
    });
    req.on('error', (err) => { stream.error = err.message; resolve(); });
    req.end(body);
  });
  await Promise.race([firstEvent, stream.done]);
  assert.equal(stream.status, 200, `the SSE stream did not open: ${stream.error || stream.text.slice(0, 300)}`);

  poller = new Worker(HEALTH_POLLER, { eval: true, workerData: { port: adminPort } });
  const firstPoll = new Promise<void>((resolve) => {
    poller!.on('message', (m: Poll | 'stopped') => {
      if (m === 'stopped') return;
      polls.push(m);
      sse.tick();
      readPeak();
      resolve();
    });
  });
  await firstPoll;
});

test('`check` in the image reports the cgroup limit, the budget under it and a cap of at least 48 MiB', () => {
  assert.ok(image, 'image build failed (see above)');
  const mem = memoryReport as { limit_bytes?: unknown; limit_source?: unknown; baseline_bytes?: unknown; budget_bytes?: unknown; max_body_bytes?: unknown } | undefined;
  assert.ok(mem && typeof mem === 'object', '`check` prints no memory object (limit_bytes, limit_source, baseline_bytes, budget_bytes, max_body_bytes)');
  assert.equal(mem.limit_bytes, limit.bytes, `the limit read from the container's cgroup (${String(mem.limit_source)})`);
  assert.ok(typeof mem.limit_source === 'string' && mem.limit_source !== '', 'limit_source names where the limit came from');
  assert.ok(typeof mem.baseline_bytes === 'number' && mem.baseline_bytes > 0, `baseline_bytes ${String(mem.baseline_bytes)}`);
  assert.ok(typeof mem.budget_bytes === 'number' && mem.budget_bytes > 0 && mem.budget_bytes < limit.bytes, `budget_bytes ${String(mem.budget_bytes)} within the limit ${limit.bytes}`);
  assert.equal(mem.max_body_bytes, maxBody);
  assert.ok(maxBody >= 48 * MiB, `the default cap under ${limit.text} is ${maxBody} bytes, below 48 MiB`);
});

test('(a) one prompt at the cap is governed and forwarded', { timeout: 180_000 }, async (t) => {
  assertAlive();
  const body = promptBody(maxBody, PLAIN_UNIT);
  const o = await send('a-cap', body);
  t.diagnostic(`(a) ${maxBody} bytes: ${summary([o])}`);
  report.push(`(a) one prompt at the cap (${(maxBody / MiB).toFixed(1)} MiB): ${summary([o])}`);
  await checkContainer('(a)');
  assert.equal(unclean(o), '');
  // Alone, at the cap the sidecar itself advertises: it must be governed, not refused.
  assert.equal(o.status, 200, `the one prompt at the cap must be answered 200: ${summary([o])}`);
  checkForwarded(o, body, 'the prompt as sent (no match; the modify re-encodes it)');
});

test('(b) four 48 MiB prompts at once', { timeout: 180_000 }, async (t) => {
  assertAlive();
  const body = promptBody(48 * MiB, PLAIN_UNIT);
  const outcomes = await Promise.all([0, 1, 2, 3].map((i) => send(`b-${i}`, body)));
  t.diagnostic(`(b) ${summary(outcomes)}`);
  report.push(`(b) 4 x 48 MiB at once: ${summary(outcomes)}`);
  await checkContainer('(b)');
  assert.deepEqual(outcomes.map((o) => unclean(o)).filter(Boolean), []);
  assert.ok(outcomes.some((o) => o.status === 200), 'at least one of them fits and must be forwarded');
  for (const o of outcomes) checkForwarded(o, body, 'the prompt as sent');
});

test('(c) eight 12 MiB prompts at once', { timeout: 180_000 }, async (t) => {
  assertAlive();
  const body = promptBody(12 * MiB, PLAIN_UNIT);
  const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => send(`c-${i}`, body)));
  t.diagnostic(`(c) ${summary(outcomes)}`);
  report.push(`(c) 8 x 12 MiB at once: ${summary(outcomes)}`);
  await checkContainer('(c)');
  assert.deepEqual(outcomes.map((o) => unclean(o)).filter(Boolean), []);
  assert.ok(outcomes.some((o) => o.status === 200), 'at least one of them fits and must be forwarded');
  for (const o of outcomes) checkForwarded(o, body, 'the prompt as sent');
});

test('(d) a Content-Length shorter than the body sent, and a chunked body past the cap', { timeout: 180_000 }, async (t) => {
  assertAlive();
  // Declared: a complete 24 MiB prompt. Sent: that, then 24 MiB more of its
  // text, which is no HTTP request. What the sidecar may forward is the
  // declared body and not a byte more; for the rest, node's parser answers
  // 400 bad_request on the same connection, a clean answer too.
  const declared = promptBody(24 * MiB, PLAIN_UNIT);
  const extra = Buffer.alloc(24 * MiB, PLAIN_UNIT, 'latin1');
  const short = await rawExchange('d-short',
    `POST ${PATH} HTTP/1.1\r\nhost: 127.0.0.1:${proxyPort}\r\ncontent-type: application/json\r\nx-memtest-id: d-short\r\ncontent-length: ${declared.length}\r\n\r\n`,
    function* () {
      for (const part of [declared, extra]) for (let i = 0; i < part.length; i += MiB) yield part.subarray(i, i + MiB);
    });
  t.diagnostic(`(d) short Content-Length: ${summary([short])}; then: ${JSON.stringify(short.after.slice(0, 120))}`);

  // Chunked, with no end in sight: 8 MiB past the cap, unless the sidecar answers first.
  const past = maxBody + 8 * MiB;
  const chunk = Buffer.alloc(MiB, PLAIN_UNIT, 'latin1');
  const framed = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
  const chunked = await rawExchange('d-chunked',
    `POST ${PATH} HTTP/1.1\r\nhost: 127.0.0.1:${proxyPort}\r\ncontent-type: application/json\r\nx-memtest-id: d-chunked\r\ntransfer-encoding: chunked\r\n\r\n`,
    function* () {
      yield framed(Buffer.from(HEAD));
      for (let sent = HEAD.length; sent < past; sent += chunk.length) yield framed(chunk);
      yield framed(Buffer.from(TAIL));
      yield Buffer.from('0\r\n\r\n');
    });
  t.diagnostic(`(d) chunked past the cap: ${summary([chunked])}`);
  report.push(`(d) short Content-Length: ${summary([short])}; chunked past the cap: ${summary([chunked])}`);

  await checkContainer('(d)');
  assert.equal(unclean(short, [400]), '');
  if (short.status === 400) assert.equal(short.code, 'bad_request', summary([short]));
  checkForwarded(short, declared, 'exactly the declared bytes');
  assert.equal(unclean(chunked), '');
  assert.notEqual(chunked.status, 200, 'a body past the cap must never be forwarded');
  assert.ok(!arrivals.has('d-chunked'), 'a body past the cap reached the upstream');
});

test('(e) a 48 MiB prompt full of e-mail addresses is redacted and forwarded whole', { timeout: 180_000 }, async (t) => {
  assertAlive();
  const body = promptBody(48 * MiB, MAIL_UNIT);
  const redacted = promptBody(48 * MiB, MAIL_UNIT, MAIL_REDACTED);
  const o = await send('e-emails', body);
  t.diagnostic(`(e) ${summary([o])}`);
  report.push(`(e) 48 MiB of e-mail addresses: ${summary([o])}`);
  await checkContainer('(e)');
  assert.equal(o.status, 200, `the redacted prompt must be forwarded: ${summary([o])}`);
  const got = arrivals.get(o.id);
  assert.ok(got && !got.at, 'an e-mail address reached the upstream');
  checkForwarded(o, redacted, 'the prompt with every address redacted');
});

test('throughout: never killed, the stream completed intact, /healthz always under 1 s', { timeout: 60_000 }, async (t) => {
  readPeak();
  const state = containerStarted ? (await run('podman', ['inspect', '--format', '{{.State.Running}} {{.State.OOMKilled}} {{.State.ExitCode}} {{.RestartCount}}', NAME])).stdout.trim() : 'not started';
  // The stream: the upstream ends it now; the client must have every byte it wrote.
  if (running) sse.finish();
  if (stream.done) await Promise.race([stream.done, new Promise((r) => setTimeout(r, 10_000))]);
  if (poller) {
    const stopped = new Promise<void>((resolve) => poller!.on('message', (m) => { if (m === 'stopped') resolve(); }));
    poller.postMessage('stop');
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 10_000))]);
  }
  // node's own process warnings ("(node:1) MaxListenersExceededWarning: ..."), reported for the record.
  const logs = containerStarted ? await run('podman', ['logs', NAME]) : undefined;
  const warnings = logs ? `${logs.stdout}\n${logs.stderr}`.split('\n').filter((l) => /^\(node:\d+\) \w*Warning/.test(l)) : [];
  const slow = polls.filter((p) => p.status !== 200 || p.ms >= 1000);
  const worst = polls.reduce((m, p) => Math.max(m, p.ms), 0);
  const line = `container ${state} (running oomkilled exit restarts); cgroup peak ${(cgroupPeak / MiB).toFixed(1)} MiB of ${(limit.bytes / MiB).toFixed(0)} MiB, OOM kills ${cgroupOomKills} (${cgroupPeakFile || 'no cgroup file'}); ` +
    `${polls.length} /healthz polls, slowest ${worst.toFixed(0)} ms, ${slow.length} failed or >= 1 s; gateway answered ${hooks} EvaluateHook calls; SSE ${sse.written.length} events written, stream ${stream.error ? `cut (${stream.error})` : stream.ended ? 'ended' : 'still open'}; ` +
    `node warnings ${warnings.length}${warnings.length ? ` (${warnings[0]!.slice(0, 160)})` : ''}`;
  report.push(line);
  t.diagnostic(line);
  if (state.startsWith('false')) running = false;

  assert.equal(state, 'true false 0 0', `the sidecar must still run: never OOM-killed, never restarted${cgroupOomKills ? ` (cgroup OOM kills: ${cgroupOomKills})` : ''}`);
  assert.equal(cgroupOomKills, 0, "the cgroup's OOM killer ran");
  assert.deepEqual(gateway?.rejected ?? [], [], 'every DPoP proof the gateway saw verified');
  assert.equal(stream.error, '', 'the SSE stream was cut');
  assert.ok(stream.ended, 'the SSE stream did not end');
  assert.equal(stream.text, sse.written.join(''), 'the SSE stream arrived intact, every event in order');
  assert.ok(sse.written.length > 2, 'the stream carried events throughout');
  assert.deepEqual(slow.slice(0, 10).map((p) => `${new Date(p.at).toISOString()} ${p.status} ${p.ms.toFixed(0)} ms ${p.error ?? ''}`), [], '/healthz must answer 200 within 1 s throughout');
});
