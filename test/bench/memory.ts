// `npm run bench:memory` (issue 20): the sidecar's peak memory per MiB of
// prompt. One fresh sidecar process (`node dist/main.js`, with the image's
// NODE_ENV and NODE_OPTIONS read from the Dockerfile) per scenario, so no
// run inherits another's heap. Each scenario: wait for the listener, send a
// small and a worker-sized warm-up prompt (the policy worker starts on first
// use), read VmRSS as the idle baseline, reset VmHWM (clear_refs 5), send
// one prompt of exactly N MiB (OpenAI chat shape) to
// /llm/openai/v1/chat/completions, read VmHWM. The figure is
// (VmHWM - idle) / N.
//
// Prompts: plain words (no policy match), and match-heavy (an e-mail address
// every 30 bytes, which the shipped examples/policy.yaml redacts). Policies:
// the example policy alone; a fake gateway alone (identity mounted, no local
// policy) answering allow, or modify (modified_payload = base64 of the event's
// tool_input re-encoded with "model":"m" turned into "M": the same size, and
// visible upstream); and the example policy followed by the gateway answering
// modify (what a chart deployment with a gateway does). Sizes BENCH_SIZES
// (MiB, default 8,24,48), plus one chunked run (no Content-Length) per row at
// BENCH_CHUNKED_MIB (default 24).
//
// Premises, checked for every row (a failed one marks the row and the run
// exits 1): the answer is 200; the upstream received exactly the expected
// bytes (length and SHA-256: the prompt as sent, or redacted by the example
// policy with no address left, or rewritten by the gateway); the gateway was
// called exactly once for the request when it is configured, never when it is
// not, and every DPoP proof it saw verified.
//
// The body cap and the in-flight budget are set out of the way
// (FIRSTOPS_MAX_BODY_BYTES 256 MiB, FIRSTOPS_MEMORY_BUDGET_BYTES 2 GiB) and
// so are the policy time limits: nothing is refused, only memory is measured.
// Results: a table on stdout, JSON in test/bench/memory-result.json
// (gitignored). Not part of the suite.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, emptyDir } from '../helpers/identity.ts';
import { listenLocal } from '../helpers/server.ts';
import { chatCompletion } from '../helpers/upstream.ts';

const ROOT = join(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
const SIZES = (process.env.BENCH_SIZES ?? '8,24,48').split(',').map(Number);
const CHUNKED_MIB = Number(process.env.BENCH_CHUNKED_MIB ?? 24);
const RESULT = join(ROOT, 'test/bench/memory-result.json');
/** The built sidecar to measure; BENCH_SIDECAR points at another build (e.g. a checkout of an older commit). */
const SIDECAR_MAIN = process.env.BENCH_SIDECAR ?? join(ROOT, 'dist/main.js');
const EXAMPLE_POLICY = join(ROOT, 'examples/policy.yaml');
const PATH = '/llm/openai/v1/chat/completions';

const started = performance.now();
setTimeout(() => {
  process.stderr.write('bench:memory: still running after 10 minutes; giving up\n');
  process.exit(1);
}, 10 * 60_000).unref();

// ---- prompts ---------------------------------------------------------------
const HEAD = '{"model":"m","messages":[{"role":"user","content":"';
const TAIL = '"}]}';
const PLAIN_UNIT = 'lorem ipsum dolor sit amet, consectetur adipiscing elit ';
const MAIL_UNIT = 'mail bob.jones@example.com ok ';
const MAIL_REDACTED = 'mail [redacted-email] ok ';
type Text = 'plain' | 'emails';

/**
 * A body of exactly `size` bytes: the content is whole units (never half an
 * address) padded with spaces. `unit` and `replacement` give the body as the
 * example policy forwards it, built the same way.
 */
function promptBody(size: number, unit: string, replacement = unit): Buffer {
  const room = size - HEAD.length - TAIL.length;
  const units = Math.floor(room / unit.length);
  const contentLength = units * replacement.length + (room - units * unit.length);
  const body = Buffer.alloc(HEAD.length + contentLength + TAIL.length, ' ');
  body.write(HEAD, 0, 'latin1');
  if (units > 0) body.fill(replacement, HEAD.length, HEAD.length + units * replacement.length, 'latin1');
  body.write(TAIL, body.length - TAIL.length, 'latin1');
  return body;
}

/** The prompt as sent, and what the upstream must receive for each policy. */
function prompts(size: number, text: Text): { sent: Buffer; redacted: Buffer } {
  if (text === 'plain') {
    const sent = promptBody(size, PLAIN_UNIT);
    return { sent, redacted: sent };
  }
  return { sent: promptBody(size, MAIL_UNIT), redacted: promptBody(size, MAIL_UNIT, MAIL_REDACTED) };
}

/** The gateway's modify: the same body with `"model":"m"` as `"model":"M"` (same length). */
function modelSwapped(body: Buffer): Buffer {
  const out = Buffer.from(body);
  const at = out.indexOf('"model":"m"');
  if (at < 0) throw new Error('no "model":"m" in the body');
  out[at + '"model":"'.length] = 'M'.charCodeAt(0);
  return out;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- fakes -----------------------------------------------------------------
interface Received { length: number; sha256: string; at: boolean; contentLength: string | undefined; chunked: boolean }
const received: Received[] = [];
const COMPLETION = Buffer.from(JSON.stringify(chatCompletion('ok')));
const upstream = await listenLocal((req, res) => {
  const hash = createHash('sha256');
  let length = 0;
  let at = false;
  req.on('data', (c: Buffer) => {
    hash.update(c);
    length += c.length;
    if (!at && c.includes(0x40)) at = true;
  });
  req.on('end', () => {
    received.push({ length, sha256: hash.digest('hex'), at, contentLength: req.headers['content-length'], chunked: req.headers['transfer-encoding'] !== undefined });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length });
    res.end(COMPLETION);
  });
});

type HookMode = 'allow' | 'modify';
let hookMode: HookMode = 'allow';
let hookCalls = 0;
let hookFailures: string[] = [];
const gateway = await startGateway();
gateway.onHook((event) => {
  hookCalls += 1;
  const input = event.tool_input as Record<string, unknown> | undefined;
  if (hookMode === 'allow') return { body: { decision: 'allow' } };
  if (!input || input.model !== 'm') {
    hookFailures.push(`event without the expected tool_input (model ${JSON.stringify(input?.model)})`);
    return { body: { decision: 'allow' } };
  }
  const payload = Buffer.from(JSON.stringify({ ...input, model: 'M' })).toString('base64');
  return { body: { decision: 'modify', reason: 'bench', policy_id: 'bench-modify', modified_payload: payload } };
});
const identity = await makeIdentityDir({ agentId: 'agt_bench_memory' });
gateway.trust(identity.jkt, identity.agentId);
const noIdentity = await emptyDir();

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Spawns the sidecar on port 0 and resolves with its proxy port from the `listening` log line. */
async function startSidecar(env: Record<string, string>): Promise<{ child: ChildProcess; port: number; exited: Promise<void> }> {
  const child = spawn(process.execPath, [SIDECAR_MAIN], { env: { PATH: process.env.PATH ?? '', FIRSTOPS_DEBUG_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    children.delete(child);
    resolve();
  }));
  const stderr: string[] = [];
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
  // Every line is read (and the request log dropped), so the pipe never fills.
  const port = await new Promise<number>((resolve, reject) => {
    let found = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (found || !line.includes('firstops-sidecar listening')) return;
      found = true;
      resolve(Number(String((JSON.parse(line) as { proxy?: string }).proxy).split(':').at(-1)));
    });
    void exited.then(() => reject(new Error(`sidecar (${SIDECAR_MAIN}) exited before listening: ${stderr.join('').slice(-2000)}`)));
  });
  return { child, port, exited };
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

/** NODE_ENV and NODE_OPTIONS as the image's runtime stage sets them (V8 heap sizing changes the figures). */
function imageNodeEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = { NODE_ENV: 'production' };
  const options = /NODE_OPTIONS=(\S+)/.exec(runtime)?.[1];
  if (options) env.NODE_OPTIONS = options.replace(/^"|"$/g, '');
  // glibc's allocator settings, where the image sets them (they decide whether freed native memory leaves the RSS).
  for (const m of runtime.matchAll(/\b(MALLOC_[A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  for (const [name, value] of Object.entries(process.env)) if (name.startsWith('MALLOC_') && value !== undefined) env[name] = value;
  return env;
}
const NODE_ENV = imageNodeEnv();

// ---- policies ----------------------------------------------------------------
interface Policy { name: string; local: boolean; hook: HookMode | undefined }
const POLICIES: Policy[] = [
  { name: 'local (example policy)', local: true, hook: undefined },
  { name: 'remote allow', local: false, hook: 'allow' },
  { name: 'remote modify', local: false, hook: 'modify' },
  { name: 'local + remote modify', local: true, hook: 'modify' },
];

function expectedUpstream(policy: Policy, p: { sent: Buffer; redacted: Buffer }): Buffer {
  const afterLocal = policy.local ? p.redacted : p.sent;
  return policy.hook === 'modify' ? modelSwapped(afterLocal) : afterLocal;
}

// ---- one request -------------------------------------------------------------
interface Answer { status: number; headers: IncomingHttpHeaders; body: string; ms: number }
function post(port: number, body: Buffer, chunked: boolean): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-own-key' };
    if (!chunked) headers['content-length'] = body.length;
    const req = request({ host: '127.0.0.1', port, path: PATH, method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!chunked) {
      req.end(body);
      return;
    }
    // Chunked: 64 KiB writes, with backpressure, so the body really arrives in pieces.
    let offset = 0;
    const pump = (): void => {
      while (offset < body.length) {
        const piece = body.subarray(offset, offset + 64 * 1024);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

function status(pid: number): { rssKb: number; hwmKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, clear_refs value 5); false where that is not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

interface Row {
  policy: string;
  text: Text;
  framing: 'content-length' | 'chunked';
  prompt_mib: number;
  /** VmRSS right after ready, before any request. */
  ready_rss_mib: number;
  /** VmRSS after the warm-up prompts: the baseline. */
  idle_rss_mib: number;
  peak_hwm_mib: number;
  /** (peak - idle) / prompt MiB. */
  peak_per_prompt_mib: number;
  rss_after_mib: number;
  request_ms: number;
  hook_calls: number;
  forwarded_bytes: number;
  premises: string[];
  peak_reset: boolean;
}

async function measure(policy: Policy, text: Text, sizeMib: number, chunked: boolean): Promise<Row> {
  const env: Record<string, string> = {
    ...NODE_ENV,
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_LOG_LEVEL: 'info',
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_IDENTITY_DIR: policy.hook ? identity.dir : noIdentity.dir,
    FIRSTOPS_MAX_BODY_BYTES: String(256 * MiB),
    FIRSTOPS_MEMORY_BUDGET_BYTES: String(2048 * MiB),
    FIRSTOPS_POLICY_BUDGET_MS: '120000',
    FIRSTOPS_POLICY_TIMEOUT_MS: '120000',
  };
  if (policy.local) env.FIRSTOPS_POLICY_FILE = EXAMPLE_POLICY;
  const premises: string[] = [];
  const sidecar = await startSidecar(env);
  try {
    const proxy = sidecar.port;
    const pid = sidecar.child.pid!;
    const ready = status(pid);
    hookMode = policy.hook ?? 'allow';
    // Warm-up: one small prompt (inline) and one of 256 KiB (over the 64 KiB
    // offload threshold: starts the policy worker), both with an address.
    for (const size of [512, 256 * 1024]) {
      const warm = prompts(size, 'emails');
      const r = await post(proxy, warm.sent, false);
      if (r.status !== 200) premises.push(`warm-up ${size} B answered ${r.status}: ${r.body.slice(0, 200)}`);
    }
    const idle = status(pid);
    const reset = resetPeak(pid);
    const p = prompts(sizeMib * MiB, text);
    const expected = expectedUpstream(policy, p);
    const expectedSha = sha(expected);
    const hooksBefore = hookCalls;
    const upstreamBefore = received.length;
    hookFailures = [];
    const answer = await post(proxy, p.sent, chunked);
    const peak = status(pid);
    const hooks = hookCalls - hooksBefore;

    if (answer.status !== 200) premises.push(`answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    const got = received.slice(upstreamBefore);
    if (got.length !== 1) premises.push(`upstream received ${got.length} requests, expected 1`);
    const last = got.at(-1);
    if (last) {
      if (last.length !== expected.length) premises.push(`upstream received ${last.length} bytes, expected ${expected.length}`);
      else if (last.sha256 !== expectedSha) premises.push('upstream bytes differ from the expected body (same length)');
      if (policy.local && text === 'emails' && last.at) premises.push('an address reached the upstream: not redacted');
    }
    if (policy.hook && hooks !== 1) premises.push(`gateway called ${hooks} times for the request, expected 1`);
    if (!policy.hook && hooks !== 0) premises.push(`gateway called ${hooks} times with no identity mounted`);
    if (gateway.rejected.length > 0) premises.push(`gateway refused proofs: ${gateway.rejected.splice(0).join('; ')}`);
    premises.push(...hookFailures);

    const mib = (kb: number): number => Math.round((kb / 1024) * 10) / 10;
    return {
      policy: policy.name,
      text,
      framing: chunked ? 'chunked' : 'content-length',
      prompt_mib: sizeMib,
      ready_rss_mib: mib(ready.rssKb),
      idle_rss_mib: mib(idle.rssKb),
      peak_hwm_mib: mib(peak.hwmKb),
      peak_per_prompt_mib: Math.round(((peak.hwmKb - idle.rssKb) / 1024 / sizeMib) * 100) / 100,
      rss_after_mib: mib(status(pid).rssKb),
      request_ms: Math.round(answer.ms),
      hook_calls: hooks,
      forwarded_bytes: last?.length ?? 0,
      premises,
      peak_reset: reset,
    };
  } finally {
    // The gateway double keeps every event it saw; this run's are no longer needed.
    gateway.hookRequests.length = 0;
    while (gateway.events.size > 0) await gateway.events.next();
    if (sidecar.child.exitCode === null && sidecar.child.signalCode === null) {
      sidecar.child.kill('SIGKILL');
      await sidecar.exited;
    }
  }
}

// ---- run ---------------------------------------------------------------------
const rows: Row[] = [];
const plan: Array<[Policy, Text, number, boolean]> = [];
for (const policy of POLICIES.filter((p) => !process.env.BENCH_POLICY || p.name === process.env.BENCH_POLICY)) {
  for (const text of ['plain', 'emails'] as const) {
    for (const size of SIZES) plan.push([policy, text, size, false]);
    plan.push([policy, text, CHUNKED_MIB, true]);
  }
}
for (const [i, [policy, text, size, chunked]] of plan.entries()) {
  const row = await measure(policy, text, size, chunked);
  rows.push(row);
  process.stderr.write(`[${i + 1}/${plan.length}] ${policy.name}, ${text}, ${size} MiB${chunked ? ' chunked' : ''}: ${row.peak_per_prompt_mib} MiB/MiB${row.premises.length ? ` PREMISE FAILED: ${row.premises.join('; ')}` : ''}\n`);
}

const pad = (s: string | number, n: number): string => String(s).padEnd(n);
const lines = [
  `${pad('policy', 24)}${pad('text', 8)}${pad('framing', 16)}${pad('MiB', 5)}${pad('idle', 8)}${pad('peak', 8)}${pad('peak-idle/MiB', 15)}${pad('after', 8)}${pad('ms', 8)}premises`,
  ...rows.map((r) => `${pad(r.policy, 24)}${pad(r.text, 8)}${pad(r.framing, 16)}${pad(r.prompt_mib, 5)}${pad(r.idle_rss_mib, 8)}${pad(r.peak_hwm_mib, 8)}${pad(r.peak_per_prompt_mib.toFixed(2), 15)}${pad(r.rss_after_mib, 8)}${pad(r.request_ms, 8)}${r.premises.length ? 'FAILED: ' + r.premises.join('; ') : 'ok'}`),
];
const failed = rows.filter((r) => r.premises.length > 0);
const seconds = Math.round((performance.now() - started) / 1000);
console.log(lines.join('\n'));
console.log(`\nMiB = 2^20 bytes; idle = VmRSS after warm-up; peak = VmHWM during the prompt; after = VmRSS once answered. ${rows.length} runs in ${seconds} s${failed.length ? `; ${failed.length} with a failed premise (their figures do not count)` : ', every premise held'}.`);
if (rows.some((r) => !r.peak_reset)) console.log('note: VmHWM could not be reset (clear_refs); peaks include the warm-up');

let revision = 'unknown';
if (!process.env.BENCH_SIDECAR) {
  try {
    revision = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) revision += ' (src/ modified)';
  } catch { /* not a checkout */ }
}
writeFileSync(RESULT, JSON.stringify({
  bench: 'memory',
  date: new Date().toISOString(),
  revision,
  sidecar: SIDECAR_MAIN,
  node: process.version,
  node_env: NODE_ENV,
  sizes_mib: SIZES,
  chunked_mib: CHUNKED_MIB,
  seconds,
  rows,
}, null, 2) + '\n');
console.log(`results: ${RESULT}`);

await upstream.close();
await gateway.close();
await identity.cleanup();
await noIdentity.cleanup();
process.exit(failed.length > 0 ? 1 : 0);
