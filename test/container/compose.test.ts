// Brings deploy/docker-compose.yaml up for real with podman-compose, the way
// deploy/README.md tells a podman user to: the shipped file plus
// deploy/podman-compose.override.yaml, with only the images chosen through
// the file's variables (the sidecar built from the Dockerfile on stand-in
// bases, a Prometheus assembled from Debian's binary, a node-only example
// agent: standin-compose.sh) and the settings a user exports. A test-only
// override adds one relay container (compose/loopback-relay.mjs) in the
// sidecar's network namespace, through which the sidecar reaches the fake
// upstream and the fake gateway in this process on 127.0.0.1.
//
// Shows: the agent's own request reaches the sidecar on 127.0.0.1:9322 in the
// shared namespace and is governed (EvaluateHook, DPoP-signed) and answered;
// the identity comes from the compose secrets and /mcp signs with it;
// Prometheus in the stack scrapes the sidecar (up == 1, polled from its API);
// `podman-compose down` drains the sidecar (exit 0, `drained; bye`) and leaves
// nothing behind. Needs root, podman and podman-compose >= 1.1
// (.ci/setup-container.sh); fails, never skips, without them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { generateKey } from '../helpers/identity.ts';
import { assertNoSecrets, LogCapture } from '../helpers/logs.ts';
import { readAll } from '../helpers/server.ts';
import { chatCompletion, sendJson, startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { calculateJwkThumbprint } from 'jose';
import { buildSidecarImage } from './sidecar-image.ts';
import { freePort } from './podman.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const PROJECT = `fo-compose-${process.pid}`;
const FILES = [join(ROOT, 'deploy/docker-compose.yaml'), join(ROOT, 'deploy/podman-compose.override.yaml'), join(HERE, 'compose/test.override.yaml')];
const AGENT_ID = 'agt_compose_test';
const AGENT_KEY = 'sk-compose-agent-SECRET-0123456789abcdef';
const LABEL = `label=io.podman.compose.project=${PROJECT}`;

interface Result { code: number; stdout: string; stderr: string }

/** Async so the in-process fakes keep answering while podman runs. */
function run(cmd: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 << 20, env: options.env ?? process.env, signal: options.signal }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === 127 ? err.message : '') });
    });
  });
}

async function must(cmd: string, args: string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<string> {
  const r = await run(cmd, args, options);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}\n${(r.stderr + r.stdout).slice(-6000)}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns a value, or fails with `what`. */
async function poll<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- state shared by the tests below (they run in order) -----------------
let upstream: FakeUpstream | undefined;
let gateway: FakeGateway | undefined;
let identityDir = '';
let loopbackDir = '';
const relays: Server[] = [];
let relayReady: Promise<string> = Promise.resolve('');
let env: NodeJS.ProcessEnv = {};
let jkt = '';
let privateKeyPem = '';
let prometheusPort = 0;
let stackUp = false;
let stackDown = false;
const sidecarLogs = new LogCapture();
let follower: ChildProcess | undefined;
let followerDone: Promise<void> = Promise.resolve();
const report: string[] = [];

const compose = (args: string[], timeoutMs = 120_000, signal?: AbortSignal) =>
  run('podman-compose', ['-p', PROJECT, ...FILES.flatMap((f) => ['-f', f]), ...args], { env, timeoutMs, signal });

/**
 * Resolves with the sidecar's logs once its container has exited. During
 * `up` that is a failure: podman-compose would wait forever for the
 * dependants' `service_started` condition.
 */
async function sidecarExited(stop: AbortSignal): Promise<string | undefined> {
  while (!stop.aborted) {
    const names = await run('podman', ['ps', '-a', '--filter', LABEL, '--filter', 'label=com.docker.compose.service=firstops', '--format', '{{.Names}}']);
    const name = names.stdout.trim();
    // (restart: unless-stopped brings it back, so a restart counts as an exit)
    const state = name ? await run('podman', ['inspect', '--format', '{{.State.Status}} {{.RestartCount}}', name]) : undefined;
    const [status, restarts] = (state?.stdout ?? '').trim().split(' ');
    if (name && (status === 'exited' || Number(restarts) > 0)) {
      const logs = await run('podman', ['logs', name]);
      return `${logs.stdout}${logs.stderr}`.slice(-4000) || '(empty)';
    }
    await sleep(500);
  }
  return undefined;
}

/** The one container of a service, by podman-compose's labels. */
async function containerOf(service: string): Promise<string> {
  const out = await must('podman', ['ps', '-a', '--filter', LABEL, '--filter', `label=com.docker.compose.service=${service}`, '--format', '{{.Names}}']);
  const names = out.split('\n').filter(Boolean);
  assert.equal(names.length, 1, `expected one ${service} container, got ${JSON.stringify(names)}`);
  return names[0]!;
}

async function composeVersion(): Promise<string> {
  const v = await run('podman-compose', ['version']);
  assert.equal(v.code, 0, `podman-compose is not installed or not runnable: run .ci/setup-container.sh as root (${v.stderr.trim()})`);
  const version = /podman-compose version (\d+\.\d+\.\d+)/.exec(v.stdout)?.[1];
  assert.ok(version, `podman-compose version unreadable: ${v.stdout}`);
  const [major = 0, minor = 0] = version.split('.').map(Number);
  assert.ok(major > 1 || (major === 1 && minor >= 1),
    `podman-compose ${version} cannot run this file: before 1.1 it passes network_mode: service:firstops to podman verbatim. ` +
    'Run .ci/setup-container.sh as root (installs Debian 13\'s 1.3.0 on Debian 12).');
  return version;
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'the compose test runs podman as root (the identity files are chowned to 65532); run it as root');
  const info = await run('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}']);
  assert.equal(info.code, 0, `podman is not installed or cannot run here: run .ci/setup-container.sh as root (${info.stderr.trim().slice(-500)})`);
  report.push(`podman-compose ${await composeVersion()}`);

  upstream = await startUpstream((req, res) => {
    const body = JSON.parse(req.body.toString('utf8') || '{}') as { model?: string };
    sendJson(res, 200, { ...chatCompletion('hello from the fake upstream'), model: body.model });
  });
  gateway = await startGateway();
  gateway.onMcp(async (req, res, raw) => {
    const body = JSON.parse((await readAll(raw)).toString('utf8')) as { id?: number; method?: string };
    sendJson(res, 200, { jsonrpc: '2.0', id: body.id ?? null, result: { tools: [{ name: 'compose-test-tool', inputSchema: { type: 'object' } }], method: body.method, path: req.url } });
  });

  // The identity as a user lays it out for the compose secrets: agent-id and
  // an EC P-256 PKCS#8 key, owned by the sidecar's UID and readable only by it.
  identityDir = mkdtempSync(join(tmpdir(), 'firstops-compose-identity-'));
  const key = generateKey('pkcs8');
  privateKeyPem = key.pem;
  jkt = await calculateJwkThumbprint(key.publicJwk, 'sha256');
  gateway.trust(jkt, AGENT_ID);
  writeFileSync(join(identityDir, 'agent-id'), `${AGENT_ID}\n`);
  writeFileSync(join(identityDir, 'private-key.pem'), key.pem);
  for (const f of ['agent-id', 'private-key.pem']) {
    chownSync(join(identityDir, f), 65532, 65532);
    chmodSync(join(identityDir, f), 0o400);
  }

  // Host side of the relay: /loopback/<port>.sock -> 127.0.0.1:<port>.
  loopbackDir = mkdtempSync(join(tmpdir(), 'firstops-compose-loopback-'));
  chmodSync(loopbackDir, 0o755);
  for (const port of [upstream.port, gateway.port]) {
    const relay = createServer((outer) => {
      const inner = connect(port, '127.0.0.1');
      outer.pipe(inner).pipe(outer);
      outer.on('error', () => inner.destroy());
      inner.on('error', () => outer.destroy());
    });
    await new Promise<void>((r) => relay.listen(join(loopbackDir, `${port}.sock`), r));
    chmodSync(join(loopbackDir, `${port}.sock`), 0o666);
    relays.push(relay);
  }
  relayReady = new Promise<string>((resolve) => {
    const ready = createServer((sock) => {
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    ready.listen(join(loopbackDir, 'ready.sock'), () => chmodSync(join(loopbackDir, 'ready.sock'), 0o666));
    relays.push(ready);
  });
  prometheusPort = await freePort();
});

after(async () => {
  if (!stackDown && env.FIRSTOPS_SIDECAR_IMAGE) {
    // A failed test left the stack up: take it down without waiting for drains.
    await compose(['down', '-v', '-t', '0']);
  }
  const left = await run('podman', ['ps', '-a', '--filter', LABEL, '--format', '{{.Names}}']);
  for (const name of left.stdout.split('\n').filter(Boolean)) await run('podman', ['rm', '--force', '--time', '0', name]);
  follower?.kill();
  for (const relay of relays) relay.close();
  await upstream?.close();
  await gateway?.close();
  if (identityDir) rmSync(identityDir, { recursive: true, force: true });
  if (loopbackDir) rmSync(loopbackDir, { recursive: true, force: true });
  for (const line of report) console.log(`# compose: ${line}`);
});

test('podman-compose brings up the shipped stack on local stand-in images', { timeout: 2_100_000 }, async (t) => {
  const sidecar = await buildSidecarImage();
  const images = await must('bash', [join(HERE, 'standin-compose.sh'), sidecar.runtimeBase], { timeoutMs: 120_000 });
  const prometheusImage = /^PROMETHEUS=(.+)$/m.exec(images)?.[1];
  const agentImage = /^AGENT=(.+)$/m.exec(images)?.[1];
  assert.ok(prometheusImage && agentImage, `standin-compose.sh printed no image refs:\n${images}`);

  assert.ok(upstream && gateway);
  env = {
    ...process.env,
    // Only images chosen (the variables the file reads)...
    FIRSTOPS_SIDECAR_IMAGE: sidecar.id,
    AGENT_IMAGE: agentImage,
    PROMETHEUS_IMAGE: prometheusImage,
    // ...and the settings a user exports. podman-compose 1.3.0 does not apply
    // a `${X:-default}` default when X also names the service variable
    // (containers/podman-compose#1105, fixed in 1.4), so set every one.
    PROMETHEUS_PORT: String(prometheusPort),
    FIRSTOPS_IDENTITY_HOST_DIR: identityDir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_UPSTREAM_ANTHROPIC: upstream.url,
    FIRSTOPS_FAIL_MODE: 'closed',
    FIRSTOPS_LOG_LEVEL: 'info',
    OPENAI_API_KEY: AGENT_KEY,
    // The test override's relay.
    LOOPBACK_PORTS: `${upstream.port},${gateway.port}`,
    LOOPBACK_DIR: loopbackDir,
    LOOPBACK_FIXTURES: join(HERE, 'compose'),
  };

  const t0 = Date.now();
  const upDone = new AbortController();
  const upRun = compose(['up', '-d', '--no-build'], 180_000, upDone.signal).finally(() => upDone.abort());
  const exited = await sidecarExited(upDone.signal);
  if (exited !== undefined) {
    upDone.abort();
    assert.fail(`the sidecar container exited during podman-compose up; its log:\n${exited}`);
  }
  const up = await upRun;
  assert.equal(up.code, 0, `podman-compose up failed:\n${(up.stderr + up.stdout).slice(-6000)}`);
  const services = (await must('podman', ['ps', '--filter', LABEL, '--format', '{{index .Labels "com.docker.compose.service"}}'])).split('\n').filter(Boolean).sort();
  assert.deepEqual(services, ['agent', 'firstops', 'loopback', 'prometheus'], `running services:\n${up.stdout.slice(-3000)}`);

  // Follow the sidecar's log (parsed pino lines) until the container is gone.
  const firstops = await containerOf('firstops');
  follower = spawn('podman', ['logs', '--follow', firstops], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: follower.stdout! });
  lines.on('line', (line) => { if (line.startsWith('{')) sidecarLogs.write(`${line}\n`); });
  followerDone = new Promise((r) => follower!.once('exit', () => r()));
  const listening = await within('sidecar log "firstops-sidecar listening"', 30_000, sidecarLogs.waitFor('firstops-sidecar listening'));
  assert.equal(listening.proxy, '127.0.0.1:9322', 'the proxy listens on the shared loopback only');
  assert.equal(listening.admin, '0.0.0.0:9323');
  assert.equal(await within('loopback relay ready', 30_000, relayReady), `${upstream.port},${gateway.port}`);
  report.push(`up -d -> sidecar listening in ${Date.now() - t0} ms (image build ${(sidecar.buildMs / 1000).toFixed(1)} s)`);
  t.diagnostic(report.at(-1)!);

  // Settings arrived as values, not as unexpanded `${...}` (podman-compose#1105).
  const [cfg] = JSON.parse(await must('podman', ['inspect', firstops])) as { Config: { Env: string[] }; HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] } }[];
  assert.ok(cfg);
  const sidecarEnv = Object.fromEntries(cfg.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  for (const [k, v] of Object.entries(sidecarEnv)) assert.ok(!v.includes('${'), `${k}=${v} was not interpolated`);
  assert.equal(sidecarEnv.FIRSTOPS_GATEWAY_URL, gateway.baseUrl);
  assert.equal(cfg.HostConfig.ReadonlyRootfs, true);

  // The image's own check, run the way podman users are told to (no shell).
  const hc = await run('podman', ['exec', firstops, '/nodejs/bin/node', '/app/dist/main.js', 'healthcheck']);
  assert.equal(hc.code, 0, `healthcheck in the running sidecar: ${hc.stdout}${hc.stderr}`);
  stackUp = true;
});

test('the agent reaches the sidecar on 127.0.0.1:9322 in the shared namespace; its call is governed and answered', { timeout: 120_000 }, async () => {
  assert.ok(stackUp && upstream && gateway, 'the stack is not up (see above)');
  const [firstops, agent, loopback] = [await containerOf('firstops'), await containerOf('agent'), await containerOf('loopback')];
  // One network namespace: the same netns inode for all three processes.
  const netns = async (name: string) => {
    const pid = (await must('podman', ['inspect', '--format', '{{.State.Pid}}', name])).trim();
    return readlinkSync(`/proc/${pid}/ns/net`);
  };
  const ns = await netns(firstops);
  assert.match(ns, /^net:\[\d+\]$/);
  assert.equal(await netns(agent), ns, 'the agent must share the sidecar network namespace');
  assert.equal(await netns(loopback), ns);

  // The example agent's own request (its shipped command), as the upstream saw it.
  const seen = await within('the agent\'s chat completion at the upstream', 90_000, upstream.arrivals.next());
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/v1/chat/completions');
  assert.equal(JSON.parse(seen.body.toString('utf8')).model, 'gpt-4o-mini');
  assert.equal(seen.headers.authorization, `Bearer ${AGENT_KEY}`, 'the agent\'s own provider key is passed through');

  // Governed: EvaluateHook went to the gateway first, signed with the identity key.
  const hooks = gateway.proofs.filter((p) => p.path === '/api/v1/daemon/evaluate-hook');
  assert.ok(hooks.length >= 1, `no EvaluateHook call reached the gateway (proofs: ${JSON.stringify(gateway.proofs)})`);
  assert.ok(hooks.every((p) => p.jkt === jkt));
  assert.deepEqual(gateway.rejected, []);

  // ...and the agent got the answer back (its log line: "<time> 200 {...}").
  const line = await poll('agent log with a 200 answer', 30_000, 250, async () => {
    const logs = await must('podman', ['logs', agent]);
    return logs.split('\n').find((l) => / 200 \{.*hello from the fake upstream/.test(l));
  });
  assert.match(line, /^\d{4}-\d\d-\d\dT\S+ 200 /);

  // The sidecar's own request log line for it, with the policy decision.
  const logged = await poll('sidecar request log line (llm, 200)', 10_000, 100, async () =>
    sidecarLogs.requests().find((l) => l.route === 'llm' && l.status === 200));
  assert.equal(logged.provider, 'openai');
  assert.equal(logged.path, '/llm/openai/v1/chat/completions');
  assert.ok(logged.decision, `no policy decision logged: ${JSON.stringify(logged)}`);
});

test('the identity comes from the compose secrets: /mcp from the agent is DPoP-signed with it', { timeout: 60_000 }, async () => {
  assert.ok(stackUp && gateway, 'the stack is not up (see above)');
  const agent = await containerOf('agent');
  const before = gateway.proofs.length;
  // A JSON-RPC call from inside the agent container, to the sidecar on its loopback.
  const script = `fetch('http://127.0.0.1:9322/mcp/v1', { method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }) })
    .then(async (r) => console.log(r.status, await r.text()), (e) => { console.log('error', String(e)); process.exit(1); });`;
  const out = (await must('podman', ['exec', agent, 'node', '-e', script])).trim();
  const [status, ...rest] = out.split(' ');
  assert.equal(status, '200', out);
  const answer = JSON.parse(rest.join(' ')) as { id: number; result: { tools: { name: string }[]; method: string; path: string } };
  assert.equal(answer.id, 7);
  assert.equal(answer.result.method, 'tools/list');
  assert.equal(answer.result.path, '/mcp/v1');
  assert.equal(answer.result.tools[0]?.name, 'compose-test-tool');

  const proof = gateway.proofs.slice(before).find((p) => p.path === '/mcp/v1');
  assert.ok(proof, `no verified DPoP proof for /mcp/v1 (rejected: ${JSON.stringify(gateway.rejected)})`);
  assert.equal(proof.jkt, jkt, 'signed with the key from the compose secret');
  assert.equal(proof.htu, `${gateway.baseUrl}/mcp/v1`);
  assert.deepEqual(gateway.rejected, []);
});

test('Prometheus in the stack scrapes the sidecar (up == 1 from its API)', { timeout: 90_000 }, async (t) => {
  assert.ok(stackUp, 'the stack is not up (see above)');
  const api = `http://127.0.0.1:${prometheusPort}/api/v1/query`;
  interface Vector { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } }
  const query = async (q: string): Promise<Vector | undefined> => {
    const r = await fetch(`${api}?query=${encodeURIComponent(q)}`).catch(() => undefined);
    if (!r) return undefined;
    if (r.status !== 200) { await r.body?.cancel(); return undefined; }
    return (await r.json()) as Vector;
  };
  const t0 = Date.now();
  // scrape_interval is 15 s: the first scrape lands within one interval.
  let last: Vector | undefined;
  const up = await poll('up{job="firstops-sidecar"} == 1', 60_000, 500, async () => {
    const v = (last = await query('up{job="firstops-sidecar"}'));
    const sample = v?.data.result[0];
    return sample && sample.value[1] === '1' ? sample : undefined;
  }).catch(async (err: Error) => {
    const targets = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/targets`).then((r) => r.text(), (e: Error) => e.message);
    throw new Error(`${err.message}; last answer ${JSON.stringify(last)}; targets ${targets.slice(0, 2000)}`);
  });
  assert.equal(up.metric.instance, 'firstops:9323');
  assert.equal(up.metric.agent, 'example-agent');
  t.diagnostic(`up == 1 after ${Date.now() - t0} ms of polling`);
  // The sidecar's own series arrived with the scrape.
  const build = await query('firstops_build_info');
  assert.ok((build?.data.result.length ?? 0) >= 1, `firstops_build_info not scraped: ${JSON.stringify(build)}`);
});

test('podman-compose down drains the sidecar (exit 0) and leaves nothing running', { timeout: 120_000 }, async (t) => {
  assert.ok(stackUp, 'the stack is not up (see above)');
  const firstops = await containerOf('firstops');
  const since = new Date(Date.now() - 1000).toISOString();
  const t0 = Date.now();
  const down = await compose(['down', '-v'], 90_000);
  stackDown = true;
  assert.equal(down.code, 0, `podman-compose down failed:\n${(down.stderr + down.stdout).slice(-4000)}`);
  const tookMs = Date.now() - t0;

  await within('the sidecar log to end', 10_000, followerDone);
  const bye = sidecarLogs.lines.find((l) => l.msg === 'drained; bye');
  assert.ok(bye, `no "drained; bye" in the sidecar log:\n${sidecarLogs.raw.slice(-10).join('\n')}`);
  // The exit code, from podman's event log (the container is removed by now).
  const died = await must('podman', ['events', '--stream=false', '--since', since, '--filter', 'event=died',
    '--filter', `container=${firstops}`, '--format', '{{.Name}} {{.ContainerExitCode}}']);
  assert.deepEqual(died.split('\n').filter(Boolean), [`${firstops} 0`], 'the sidecar must exit 0 on SIGTERM');

  const left = await must('podman', ['ps', '-a', '--filter', LABEL, '--format', '{{.Names}}']);
  assert.equal(left.trim(), '', `containers left: ${left}`);
  const pods = await must('podman', ['pod', 'ps', '--filter', `name=pod_${PROJECT}`, '--format', '{{.Name}}']);
  assert.equal(pods.trim(), '', `pods left: ${pods}`);
  const nets = await must('podman', ['network', 'ls', '--filter', LABEL, '--format', '{{.Name}}']);
  assert.equal(nets.trim(), '', `networks left: ${nets}`);
  const vols = await must('podman', ['volume', 'ls', '--filter', LABEL, '--format', '{{.Name}}']);
  assert.equal(vols.trim(), '', `volumes left: ${vols}`);

  // Nothing secret in what the sidecar logged over the whole run.
  assertNoSecrets(sidecarLogs.raw, [AGENT_KEY, privateKeyPem.split('\n')[1]]);
  report.push(`down -> sidecar exit 0 ("drained; bye") in ${tookMs} ms`);
  t.diagnostic(report.at(-1)!);
});
