// Builds the real Dockerfile with podman (from stand-in bases assembled on
// this host, since no registry image can be pulled) and runs the image the
// way a deployment would: read-only root, UID 65532, identity mounted
// read-only, upstream on the host loopback. Needs root and podman (see
// .ci/setup-container.sh); fails, never skips, when they are missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { buildSidecarImage, SIDECAR_TAG } from './sidecar-image.ts';
import { chartMemoryLimit, freePort, must, podmanUsable, quiet, run } from './podman.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built image's ID once the build test ran (the tag can be re-pointed by a concurrent build). */
let IMAGE = SIDECAR_TAG;
const NAME = `firstops-sidecar-test-${process.pid}`;
const LOAD_NAME = `${NAME}-load`;
const DRAIN_MS = 10_000;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- fake OpenAI upstream on the host loopback ---------------------------
interface Seen { method: string; url: string; body: { model?: string; messages?: { content: string }[] } }
const seen: Seen[] = [];
let slowArrived: () => void = () => {};
const slowArrival = new Promise<void>((r) => { slowArrived = r; });

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Seen['body'];
    seen.push({ method: req.method ?? '', url: req.url ?? '', body });
    const slow = body.messages?.some((m) => m.content === 'slow') ?? false;
    const answer = () => {
      const payload = JSON.stringify({
        id: 'chatcmpl-fake-1', object: 'chat.completion', created: 1_700_000_000, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: slow ? 'slow answer' : 'hello from the fake upstream' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    };
    if (slow) {
      slowArrived();
      setTimeout(answer, 2_000);
    } else answer();
  });
}

let upstream: Server | undefined;
let upstreamPort = 0;
let proxyPort = 0;
let adminPort = 0;
let identityDir = '';
let containerStarted = false;
let loadStarted = false;
let built = false;
const report: string[] = [];

before(async () => {
  await podmanUsable();
  upstreamPort = await freePort();
  proxyPort = await freePort();
  adminPort = await freePort();
  upstream = createServer(upstreamHandler);
  await new Promise<void>((r) => upstream!.listen(upstreamPort, '127.0.0.1', r));

  // A test identity: EC P-256 key as PKCS#8 PEM plus agent-id, owned by the
  // container's user and readable only by it, as a Kubernetes Secret would be.
  identityDir = mkdtempSync(join(tmpdir(), 'firstops-identity-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(identityDir, 'private-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(identityDir, 'agent-id'), 'agent-container-test\n');
  for (const f of ['private-key.pem', 'agent-id']) {
    chownSync(join(identityDir, f), 65532, 65532);
    chmodSync(join(identityDir, f), 0o400);
  }
  chownSync(identityDir, 65532, 65532);
  chmodSync(identityDir, 0o500);
});

after(async () => {
  if (containerStarted) await run('podman', ['rm', '--force', '--time', '0', NAME]);
  if (loadStarted) await run('podman', ['rm', '--force', '--time', '0', LOAD_NAME]);
  upstream?.closeAllConnections();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  if (identityDir) rmSync(identityDir, { recursive: true, force: true });
  for (const line of report) console.log(`# container: ${line}`);
});

// Generous limits, not expectations: the build compiles the native re2 addon
// (~3 CPU-minutes) and this VM is shared; the report line has the real times.
test('image builds from the real Dockerfile on stand-in bases', { timeout: 2_100_000 }, async (t) => {
  // Shared with compose.test.ts (test/container/sidecar-image.ts): one build, under a lock.
  const sidecar = await buildSidecarImage();
  const { runtimeBase } = sidecar;
  IMAGE = sidecar.id;

  const [img] = JSON.parse(await must('podman', ['image', 'inspect', IMAGE])) as {
    Size: number;
    Healthcheck?: { Test: string[] };
    Config: { User: string; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; ExposedPorts: Record<string, unknown>;
      Labels: Record<string, string>; Healthcheck?: { Test: string[] }; StopSignal?: string };
  }[];
  const [base] = JSON.parse(await must('podman', ['image', 'inspect', runtimeBase])) as { Size: number }[];
  assert.ok(img && base);
  const c = img.Config;
  assert.equal(c.User, '65532:65532');
  assert.deepEqual(c.Entrypoint, ['/nodejs/bin/node'], 'entrypoint comes from the distroless base');
  assert.deepEqual(c.Cmd, ['/app/dist/main.js'], 'CMD is exec-form arguments to node');
  assert.equal(c.WorkingDir, '/app');
  assert.deepEqual(Object.keys(c.ExposedPorts).sort(), ['9322/tcp', '9323/tcp']);
  assert.deepEqual((c.Healthcheck ?? img.Healthcheck)?.Test, ['CMD', '/nodejs/bin/node', '/app/dist/main.js', 'healthcheck']);
  assert.equal(c.Labels['org.opencontainers.image.version'], pkg.version);
  assert.match(c.Labels['org.opencontainers.image.revision'] ?? '', /^([0-9a-f]{40}|unknown)$/);
  assert.match(c.Labels['org.opencontainers.image.created'] ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.equal(c.Labels['org.opencontainers.image.title'], 'firstops-sidecar');

  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  report.push(`image ${SIDECAR_TAG}: ${mb(img.Size)} (runtime base ${mb(base.Size)}, app layers ${mb(img.Size - base.Size)})`);
  report.push(`stand-in bases ${(sidecar.basesMs / 1000).toFixed(1)} s, podman build ${(sidecar.buildMs / 1000).toFixed(1)} s`);
  t.diagnostic(report.join('; '));
  built = true;
});

test('image has no shell and holds only what runs', async () => {
  assert.ok(built, 'image build failed (see above)');
  const sh = await run('podman', ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', IMAGE, '-c', 'true']);
  assert.notEqual(sh.code, 0, 'the runtime image must not contain /bin/sh');
  const list = await must('podman', ['run', '--rm', '--network', 'none', '--read-only', IMAGE, '-e',
    `const fs=require('fs');console.log(JSON.stringify({app:fs.readdirSync('/app').sort(),dist:fs.readdirSync('/app/dist').sort(),` +
    `modules:fs.readdirSync('/app/node_modules'),re2:fs.readdirSync('/app/node_modules/re2',{recursive:true}).sort(),uid:process.getuid(),` +
    `notices:fs.readFileSync('/app/THIRD_PARTY_NOTICES.txt','utf8'),` +
    `w:(()=>{try{fs.writeFileSync('/app/x','');return true}catch{return false}})()}))`]);
  const seenFs = JSON.parse(list.trim()) as { app: string[]; dist: string[]; modules: string[]; re2: string[]; notices: string; uid: number; w: boolean };
  // The bundle (deploy/image/bundle.mjs): the main and policy-worker entries,
  // and of node_modules only the native addon's runtime files.
  assert.deepEqual(seenFs.app, ['THIRD_PARTY_NOTICES.txt', 'dist', 'examples', 'node_modules', 'package.json']);
  const worker = existsSync(join(ROOT, 'src/policy/worker.ts'));
  assert.deepEqual(seenFs.dist, worker ? ['main.js', 'worker.js'] : ['main.js']);
  assert.deepEqual(seenFs.modules, ['re2']);
  assert.deepEqual(seenFs.re2, ['LICENSE', 'build', 'build/Release', 'build/Release/re2.node', 'package.json', 're2.js']);
  assert.match(seenFs.notices, /^re2@\d+\.\d+\.\d+ \(BSD-3-Clause\)$/m);
  assert.match(seenFs.notices, /^RE2 \(vendored in re2: vendor\/re2\) \(BSD-3-Clause\)$/m);
  assert.match(seenFs.notices, /^Abseil \(vendored in re2: vendor\/abseil-cpp\) \(Apache-2\.0\)$/m);
  assert.match(seenFs.notices, /Apache License\s+Version 2\.0/);
  assert.equal(seenFs.uid, 65532);
  assert.equal(seenFs.w, false, '/app must not be writable');
});

test('`check` validates the configuration inside the image; `injector` loads', async () => {
  assert.ok(built, 'image build failed (see above)');
  const r = await run('podman', ['run', '--rm', '--network', 'none', '--read-only',
    '-v', `${identityDir}:/var/run/secrets/firstops:ro`,
    '-e', 'FIRSTOPS_POLICY_FILE=/app/examples/policy.yaml', '-e', 'FIRSTOPS_GATEWAY_URL=http://127.0.0.1:9',
    '-e', 'FIRSTOPS_REMOTE_POLICY=off',
    IMAGE, '/app/dist/main.js', 'check']);
  assert.equal(r.code, 0, `check failed:\n${r.stdout}\n${quiet(r.stderr)}`);
  // The example policy compiled on RE2: the native addon loads in the image.
  const report = JSON.parse(r.stdout) as { policy?: { rules: number }; problems: string[] };
  assert.deepEqual(report.problems, []);
  assert.ok((report.policy?.rules ?? 0) > 0, r.stdout);
  // The injector is a dynamic import inside the bundle: unconfigured, it must
  // load and refuse its configuration, not miss a module.
  const inj = await run('podman', ['run', '--rm', '--network', 'none', '--read-only', IMAGE, '/app/dist/main.js', 'injector']);
  assert.equal(inj.code, 2, `injector: ${inj.stdout}${quiet(inj.stderr)}`);
  assert.match(inj.stderr, /invalid injector configuration/);
});

test('runs read-only as 65532: ready, governs an LLM call end to end, metrics, drains on SIGTERM', { timeout: 180_000 }, async (t) => {
  assert.ok(built, 'image build failed (see above)');
  const admin = `http://127.0.0.1:${adminPort}`;
  const proxy = `http://127.0.0.1:${proxyPort}`;
  const started = Date.now();
  await must('podman', [
    'run', '--detach', '--name', NAME,
    '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    // Host network: the fake upstream and the test client stay on 127.0.0.1,
    // no bridge or slirp addresses involved.
    '--network', 'host',
    '--health-interval', 'disable',
    '-v', `${identityDir}:/var/run/secrets/firstops:ro`,
    '-e', `FIRSTOPS_PORT=${proxyPort}`,
    '-e', `FIRSTOPS_ADMIN_PORT=${adminPort}`,
    '-e', 'FIRSTOPS_ADMIN_HOST=127.0.0.1',
    // Host network: the default 9324 could be taken by a concurrent test.
    '-e', 'FIRSTOPS_DEBUG_PORT=0',
    '-e', `FIRSTOPS_UPSTREAM_OPENAI=http://127.0.0.1:${upstreamPort}`,
    // Nothing may leave the machine: the gateway points at the loopback too
    // and remote policy is off; the shipped example policy governs.
    '-e', `FIRSTOPS_GATEWAY_URL=http://127.0.0.1:${upstreamPort}/gateway`,
    '-e', 'FIRSTOPS_REMOTE_POLICY=off',
    '-e', 'FIRSTOPS_POLICY_FILE=/app/examples/policy.yaml',
    '-e', `FIRSTOPS_DRAIN_TIMEOUT_MS=${DRAIN_MS}`,
    IMAGE,
  ]);
  containerStarted = true;

  let ready = 0;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const r = await fetch(`${admin}/readyz`).catch(() => undefined);
    if (r?.status === 200) { ready = Date.now(); break; }
    await r?.body?.cancel();
    await sleep(20);
  }
  if (!ready) {
    const logs = await run('podman', ['logs', NAME]);
    assert.fail(`/readyz never answered 200 within 30 s; container logs:\n${logs.stdout}${quiet(logs.stderr)}`);
  }
  report.push(`podman run -> /readyz 200 in ${ready - started} ms`);
  t.diagnostic(`start to ready: ${ready - started} ms`);

  // node itself is the container's PID 1 (exec form, no shell, no init).
  const pid = (await must('podman', ['inspect', '--format', '{{.State.Pid}}', NAME])).trim();
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.deepEqual(cmdline.slice(0, 2), ['/nodejs/bin/node', '/app/dist/main.js']);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65532\s/m);
  assert.match(status, /^NSpid:\s+\d+\s+1$/m, 'node must be PID 1 in the container');

  // The image's HEALTHCHECK command (node dist/main.js healthcheck).
  const hc = await run('podman', ['healthcheck', 'run', NAME]);
  assert.equal(hc.code, 0, `podman healthcheck run: ${hc.stdout}${quiet(hc.stderr)}`);

  // One governed LLM call end to end: the example policy redacts e-mail
  // addresses, so the upstream must see the prompt without it.
  const res = await fetch(`${proxy}/llm/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-agent-own-key' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail alice@example.com a summary' }] }),
  });
  const answer = (await res.json()) as { choices?: { message: { content: string } }[] };
  assert.equal(res.status, 200, JSON.stringify(answer));
  assert.equal(answer.choices?.[0]?.message.content, 'hello from the fake upstream');
  const hit = seen.at(-1);
  assert.equal(hit?.method, 'POST');
  assert.equal(hit?.url, '/v1/chat/completions');
  assert.equal(hit?.body.model, 'gpt-4o-mini');
  assert.ok(!JSON.stringify(hit?.body).includes('alice@example.com'), 'the example policy should have redacted the address');
  assert.match(hit?.body.messages?.[0]?.content ?? '', /^mail \[redacted-email\] a summary$/, 'redacted by the RE2 pattern');

  // A body above FIRSTOPS_POLICY_OFFLOAD_BYTES (64 KiB by default) is
  // inspected on a policy worker thread: in the image, the bundled
  // dist/worker.js, loading re2 from /app/node_modules too.
  const filler = 'lorem ipsum '.repeat(10_000);
  const large = await fetch(`${proxy}/llm/openai/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${filler}write to bob@example.org` }] }),
  });
  await large.body?.cancel();
  assert.equal(large.status, 200);
  assert.equal(seen.at(-1)?.body.messages?.[0]?.content, `${filler}write to [redacted-email]`, 'redacted on the worker');

  // A model the example policy denies never reaches the upstream.
  const before = seen.length;
  const denied = await fetch(`${proxy}/llm/openai/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-5-preview', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await denied.body?.cancel();
  assert.equal(denied.status, 403);
  assert.equal(seen.length, before);

  const metrics = await (await fetch(`${admin}/metrics`)).text();
  assert.match(metrics, /^firstops_requests_total\{.*\} \d+/m);
  assert.match(metrics, /^firstops_build_info\{/m);

  // SIGTERM with a request in flight: readiness goes 503, the request still
  // completes, and the process exits 0 well within the drain time.
  const inflight = fetch(`${proxy}/llm/openai/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'slow' }] }),
  });
  await slowArrival;
  const termAt = Date.now();
  await must('podman', ['kill', '--signal', 'TERM', NAME]);
  let sawDraining = false;
  for (let i = 0; i < 50 && !sawDraining; i++) {
    const r = await fetch(`${admin}/readyz`).catch(() => undefined);
    await r?.body?.cancel();
    if (r?.status === 503) sawDraining = true;
    else await sleep(20);
  }
  assert.ok(sawDraining, '/readyz should answer 503 while draining');
  const slow = await inflight;
  assert.equal(slow.status, 200);
  assert.equal(((await slow.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content, 'slow answer');
  const exit = (await must('podman', ['wait', NAME], DRAIN_MS + 20_000)).trim();
  const stoppedIn = Date.now() - termAt;
  assert.equal(exit, '0', 'SIGTERM must end in exit code 0');
  assert.ok(stoppedIn < DRAIN_MS, `exited after ${stoppedIn} ms, drain limit ${DRAIN_MS} ms`);
  const inspected = (await must('podman', ['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', NAME])).trim();
  assert.equal(inspected, '0 false');
  report.push(`SIGTERM with one request in flight -> exit 0 in ${stoppedIn} ms`);
  t.diagnostic(`SIGTERM to exit: ${stoppedIn} ms`);
});

// ---- under the chart's memory limit ---------------------------------------
const LOAD_SECONDS = 60;
const LOAD_CONNECTIONS = 64;
const STREAMS = 64;
const CHUNK_INTERVAL_MS = 50;
const STREAM_CHUNKS = 20;

test(`under the chart's memory limit: ${LOAD_SECONDS} s of c${LOAD_CONNECTIONS} JSON plus ${STREAMS} open streams, every request answered, no OOM kill`, { timeout: 180_000 }, async (t) => {
  assert.ok(built, 'image build failed (see above)');
  const limit = chartMemoryLimit();
  // Its own upstream: a ~1 KB completion, or with "stream":true 20 SSE chunks
  // 50 ms apart; counts what it answered.
  const completion = Buffer.from(JSON.stringify({
    id: 'chatcmpl-load', object: 'chat.completion', created: 1_700_000_000, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'The quick brown fox jumps over the lazy dog. '.repeat(19) }, finish_reason: 'stop' }],
  }));
  const served = { json: 0, streams: 0 };
  const load = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!Buffer.concat(chunks).includes('"stream":true')) {
        served.json++;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': completion.length });
        res.end(completion);
        return;
      }
      served.streams++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const timer = setInterval(() => {
        if (i++ < STREAM_CHUNKS) res.write(`data: {"choices":[{"delta":{"content":"token${i} "}}]}\n\n`);
        else {
          clearInterval(timer);
          res.end('data: [DONE]\n\n');
        }
      }, CHUNK_INTERVAL_MS);
      res.once('close', () => clearInterval(timer));
    });
  });
  const loadUpstreamPort = await freePort();
  await new Promise<void>((r) => load.listen(loadUpstreamPort, '127.0.0.1', r));
  const [port, admin] = [await freePort(), await freePort()];
  const json = new Pool(`http://127.0.0.1:${port}`, { connections: LOAD_CONNECTIONS, keepAliveTimeout: 10_000 });
  const streams = new Pool(`http://127.0.0.1:${port}`, { connections: STREAMS, keepAliveTimeout: 10_000, bodyTimeout: 30_000 });
  try {
    await must('podman', [
      'run', '--detach', '--name', LOAD_NAME,
      '--memory', limit.podman, '--memory-swap', limit.podman,
      '--read-only', '--user', '65532:65532', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--network', 'host', '--health-interval', 'disable',
      '-v', `${identityDir}:/var/run/secrets/firstops:ro`,
      '-e', `FIRSTOPS_PORT=${port}`, '-e', `FIRSTOPS_ADMIN_PORT=${admin}`, '-e', 'FIRSTOPS_ADMIN_HOST=127.0.0.1',
      '-e', `FIRSTOPS_UPSTREAM_OPENAI=http://127.0.0.1:${loadUpstreamPort}`,
      '-e', `FIRSTOPS_GATEWAY_URL=http://127.0.0.1:${loadUpstreamPort}/gateway`, '-e', 'FIRSTOPS_REMOTE_POLICY=off',
      '-e', 'FIRSTOPS_POLICY_FILE=/app/examples/policy.yaml',
      IMAGE,
    ]);
    loadStarted = true;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      await r?.body?.cancel();
      if (r?.status === 200) break;
      assert.ok(Date.now() < deadline, '/readyz never answered 200 within 30 s');
      await sleep(20);
    }
    const pid = (await must('podman', ['inspect', '--format', '{{.State.Pid}}', LOAD_NAME])).trim();

    const path = '/llm/openai/v1/chat/completions';
    const headers = { 'content-type': 'application/json', authorization: 'Bearer sk-agent-own-key' };
    const jsonBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise: '.concat('Lorem ipsum dolor sit amet. '.repeat(36)) }] });
    const streamBody = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'stream please' }] });
    const sent = { json: 0, streams: 0 };
    const answered = { json: 0, streams: 0 };
    const failures: string[] = [];
    const end = Date.now() + LOAD_SECONDS * 1000;
    const loop = async (pool: Pool, body: string, kind: 'json' | 'streams'): Promise<void> => {
      while (Date.now() < end) {
        sent[kind]++;
        try {
          const res = await pool.request({ path, method: 'POST', headers, body });
          const text = await res.body.text();
          if (res.statusCode === 200 && (kind === 'json' ? text.includes('"chat.completion"') : text.endsWith('data: [DONE]\n\n'))) answered[kind]++;
          else if (failures.length < 5) failures.push(`${kind}: ${res.statusCode} ${text.slice(0, 200)}`);
        } catch (err) {
          if (failures.length < 5) failures.push(`${kind}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: LOAD_CONNECTIONS }, () => loop(json, jsonBody, 'json')),
      ...Array.from({ length: STREAMS }, () => loop(streams, streamBody, 'streams')),
    ]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwmMb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;

    assert.deepEqual(failures, [], 'every request must be answered in full');
    assert.deepEqual(answered, sent);
    assert.deepEqual(served, sent, 'the upstream answered exactly what the client sent');
    assert.ok(sent.json > LOAD_CONNECTIONS && sent.streams >= STREAMS, `too little load to mean anything: ${JSON.stringify(sent)}`);
    const state = (await must('podman', ['inspect', '--format', '{{.State.Running}} {{.State.OOMKilled}}', LOAD_NAME])).trim();
    assert.equal(state, 'true false', 'the sidecar must still run, never OOM-killed');
    await must('podman', ['stop', '--time', '30', LOAD_NAME]);
    const after = (await must('podman', ['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', LOAD_NAME])).trim();
    assert.equal(after, '0 false');
    const line = `--memory=${limit.podman}: ${sent.json} JSON requests (${Math.round(sent.json / LOAD_SECONDS)}/s) and ${sent.streams} streams in ${LOAD_SECONDS} s, all answered; VmHWM ${hwmMb.toFixed(1)} MB`;
    report.push(line);
    t.diagnostic(line);
  } finally {
    await json.close();
    await streams.close();
    load.closeAllConnections();
    await new Promise<void>((r) => load.close(() => r()));
  }
});
