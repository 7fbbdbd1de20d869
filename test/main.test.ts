import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { startUpstream, sendJson } from './helpers/upstream.ts';
import { makeIdentityDir, emptyDir } from './helpers/identity.ts';
import { runSidecar, portsOf } from './helpers/process.ts';
import { Waiter } from './helpers/server.ts';

const BASE_ENV = {
  FIRSTOPS_PORT: '0',
  FIRSTOPS_ADMIN_PORT: '0',
  FIRSTOPS_DEBUG_PORT: '0',
  FIRSTOPS_ADMIN_HOST: '127.0.0.1',
  FIRSTOPS_IDENTITY_DIR: '/nonexistent/identity',
  FIRSTOPS_POLICY_FILE: new URL('../examples/policy.yaml', import.meta.url).pathname,
};

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Opens an SSE request through the sidecar; chunks arrive on the returned waiter. */
function openStream(port: number): Promise<{ chunks: Waiter<string>; ended: Promise<'end' | 'cut'> }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/llm/openai/v1/chat/completions', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks = new Waiter<string>();
      res.on('data', (c: Buffer) => chunks.push(c.toString()));
      const ended = new Promise<'end' | 'cut'>((done) => {
        res.on('end', () => done(res.complete ? 'end' : 'cut'));
        res.on('error', () => done('cut'));
        res.on('aborted', () => done('cut'));
      });
      resolve({ chunks, ended });
    });
    req.on('error', reject);
    req.end('{"model":"gpt-4o","stream":true}');
  });
}

test('SIGTERM: not ready, no new connections, the stream in flight finishes, exit 0', async () => {
  const upstream = await startUpstream();
  const finishStream = new Waiter<true>();
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: before\n\n');
    await finishStream.next();
    res.write('data: after\n\n');
    res.end('data: [DONE]\n\n');
  });
  const sidecar = runSidecar([], { ...BASE_ENV, FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_DRAIN_TIMEOUT_MS: '20000' });
  const { proxy, admin } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 200);

  const stream = await openStream(proxy);
  assert.match(await stream.chunks.next(), /before/);
  sidecar.child.kill('SIGTERM');
  await sidecar.waitFor('draining');
  const ready = await fetch(`http://127.0.0.1:${admin}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { status: 'not_ready', reasons: ['draining'] });
  assert.equal(await connectionRefused(proxy), true, 'new connections are refused while draining');

  finishStream.push(true);
  let text = '';
  while (!text.includes('[DONE]')) text += await stream.chunks.next();
  assert.match(text, /after/);
  assert.equal(await stream.ended, 'end');
  assert.deepEqual(await sidecar.exit(), { code: 0, signal: null });
  const line = sidecar.lines.find((l) => l.msg === 'request');
  assert.equal(line?.status, 200);
  await upstream.close();
});

test('SIGTERM: a stream longer than the drain period is cut when it ends, then exit 0', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: forever\n\n');
  });
  const drainMs = 800;
  const sidecar = runSidecar([], { ...BASE_ENV, FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_DRAIN_TIMEOUT_MS: String(drainMs) });
  const { proxy } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  const stream = await openStream(proxy);
  await stream.chunks.next();
  const signalled = performance.now();
  sidecar.child.kill('SIGTERM');
  assert.equal(await stream.ended, 'cut');
  const cutAfter = performance.now() - signalled;
  assert.ok(cutAfter >= drainMs * 0.9, `cut after ${cutAfter.toFixed(0)} ms, before the ${drainMs} ms drain period`);
  assert.deepEqual(await sidecar.exit(), { code: 0, signal: null });
  await upstream.close();
});

test('bad configuration: exit 2 naming every problem, nothing listens', async () => {
  const sidecar = runSidecar([], { ...BASE_ENV, FIRSTOPS_PORT: 'x', FIRSTOPS_FAIL_MODE: 'maybe', FIRSTOPS_GATEWAY_URL: 'nope' });
  const { code } = await sidecar.exit();
  assert.equal(code, 2);
  const err = sidecar.stderr.join('');
  assert.match(err, /invalid configuration \(3 problems\)/);
  assert.match(err, /FIRSTOPS_PORT="x": expected an integer from 0 to 65535/);
  assert.match(err, /FIRSTOPS_FAIL_MODE="maybe": expected one of closed, open/);
  assert.match(err, /FIRSTOPS_GATEWAY_URL="nope"/);
});

test('a second sidecar on the same ports: exit 2 naming the address and the variable that moves it, nothing left listening', async () => {
  const first = runSidecar([], BASE_ENV);
  const ports = portsOf(await first.waitFor('firstops-sidecar listening'));
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ FIRSTOPS_DEBUG_PORT: String(ports.debug) }, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${ports.debug}: the address is already in use .*set FIRSTOPS_DEBUG_PORT \\(or FIRSTOPS_DEBUG_HOST\\)`)],
    [{ FIRSTOPS_PORT: String(ports.proxy) }, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${ports.proxy}: the address is already in use .*set FIRSTOPS_PORT \\(or FIRSTOPS_LISTEN_HOST\\)`)],
    [{ FIRSTOPS_ADMIN_PORT: String(ports.admin) }, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${ports.admin}: the address is already in use .*set FIRSTOPS_ADMIN_PORT \\(or FIRSTOPS_ADMIN_HOST\\)`)],
  ];
  for (const [env, message] of cases) {
    const second = runSidecar([], { ...BASE_ENV, ...env });
    assert.equal((await second.exit()).code, 2, JSON.stringify(env));
    assert.match(second.stderr.join(''), message);
    const fatal = second.lines.find((l) => l.msg === 'startup failed') as { err?: { code?: string } } | undefined;
    assert.equal(fatal?.err?.code, 'EADDRINUSE', 'the log line keeps the system code');
  }
  first.child.kill('SIGTERM');
  assert.equal((await first.exit()).code, 0);
});

test('an invalid key or policy file stops the start with a clear message', async () => {
  const dir = await emptyDir();
  await writeFile(join(dir.dir, 'agent-id'), 'agt_1');
  await writeFile(join(dir.dir, 'private-key.pem'), generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'sec1' }));
  const badKey = runSidecar([], { ...BASE_ENV, FIRSTOPS_IDENTITY_DIR: dir.dir });
  assert.equal((await badKey.exit()).code, 2);
  assert.match(badKey.stderr.join(''), /secp384r1; P-256 \(prime256v1\) is required/);
  await writeFile(join(dir.dir, 'bad.yaml'), 'rules: [{id: a, decision: nope}]');
  const badPolicy = runSidecar([], { ...BASE_ENV, FIRSTOPS_POLICY_FILE: join(dir.dir, 'bad.yaml') });
  assert.equal((await badPolicy.exit()).code, 2);
  assert.match(badPolicy.stderr.join(''), /\/rules\/0\/decision must be equal to one of the allowed values/);
  await dir.cleanup();
});

test('no identity mounted: starts, says so once, /mcp answers 503 with why', async () => {
  const sidecar = runSidecar([], { ...BASE_ENV });
  const { proxy } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  const res = await fetch(`http://127.0.0.1:${proxy}/mcp/proxy/x`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /no agent identity is mounted at \/nonexistent\/identity/);
  await fetch(`http://127.0.0.1:${proxy}/mcp/proxy/x`, { method: 'POST', body: '{}' });
  sidecar.child.kill('SIGTERM');
  await sidecar.exit();
  assert.equal(sidecar.lines.filter((l) => String(l.msg).startsWith('no agent identity is mounted')).length, 1);
});

test('check prints the resolved config without secrets; healthcheck follows /readyz', async () => {
  const identity = await makeIdentityDir();
  const ok = runSidecar(['check'], { ...BASE_ENV, FIRSTOPS_IDENTITY_DIR: identity.dir, FIRSTOPS_UPSTREAM_OPENAI: 'https://gw.internal/openai' });
  assert.equal((await ok.exit()).code, 0);
  const report = JSON.parse(ok.lines.map((l) => (l.unparsed ? l.msg : JSON.stringify(l))).join('\n')) as Record<string, any>;
  assert.equal(report.config.upstreams.openai, 'https://gw.internal/openai');
  assert.equal(report.identity.status, 'loaded');
  assert.equal(report.identity.jkt, identity.jkt);
  assert.deepEqual(report.problems, []);
  const printed = ok.lines.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!printed.includes(identity.agentId) && !printed.includes('PRIVATE KEY'), 'no identity material printed');

  const bad = runSidecar(['check'], { ...BASE_ENV, FIRSTOPS_FAIL_MODE: 'x' });
  assert.equal((await bad.exit()).code, 1);

  const upstream = await startUpstream((_req, res) => sendJson(res, 200, {}));
  const sidecar = runSidecar([], { ...BASE_ENV, FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  const { admin } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  const healthy = runSidecar(['healthcheck'], { FIRSTOPS_ADMIN_PORT: String(admin), FIRSTOPS_ADMIN_HOST: '127.0.0.1' });
  assert.equal((await healthy.exit()).code, 0);
  sidecar.child.kill('SIGTERM');
  await sidecar.exit();
  const down = runSidecar(['healthcheck'], { FIRSTOPS_ADMIN_PORT: String(admin), FIRSTOPS_ADMIN_HOST: '127.0.0.1' });
  assert.equal((await down.exit()).code, 1);
  const unknown = runSidecar(['frobnicate'], {});
  assert.equal((await unknown.exit()).code, 2);
  await upstream.close();
  await identity.cleanup();
});

test('check shows the response rules of the policy file: count, and per rule its id, decision and what it matches', async () => {
  const check = runSidecar(['check'], BASE_ENV);
  assert.equal((await check.exit()).code, 0);
  const report = JSON.parse(check.lines.map((l) => (l.unparsed ? l.msg : JSON.stringify(l))).join('\n')) as Record<string, any>;
  assert.equal(report.policy.rules, 2);
  assert.equal(report.policy.response_rules, 2);
  assert.deepEqual(report.policy.responses, [
    {
      id: 'no-destructive-shell', decision: 'deny', target: 'tool_call',
      matches: { tool_name: ['*shell*', '*bash*', '*exec*', '*terminal*'], arguments: { '**': '*rm -rf*' } },
    },
    { id: 'redact-keys-in-tool-calls', decision: 'modify', target: 'tool_call', matches: 'every tool call', redacts: ['api-key'] },
  ]);
  const printed = check.lines.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!printed.includes('sk-[A-Za-z0-9'), 'redaction patterns are named, not printed');
});

test('package version and build info agree', async () => {
  const pkg = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const { VERSION } = await import('../src/metrics.ts');
  assert.equal(VERSION, pkg.version);
});
void once;

test('a pattern RE2 cannot run is refused by serve (exit 2), by check, and by hot reload (the old rules stay)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fo-re2-'));
  const file = join(dir, 'policy.yaml');
  const lookahead = 'rules:\n  - id: scrub-keys\n    decision: modify\n    redact:\n      - pattern: "(?=sk-)\\\\w+"\n';
  await writeFile(file, lookahead);
  const env = { ...BASE_ENV, FIRSTOPS_POLICY_FILE: file };

  const serve = runSidecar([], env);
  const exit = await serve.exit();
  assert.equal(exit.code, 2);
  const fatal = serve.lines.find((l) => l.msg === 'startup failed')!;
  assert.match(String((fatal.err as { message: string }).message), /rules\[0\] \(id "scrub-keys"\)\.redact\[0\]: pattern "\(\?=sk-\)\\\\w\+" cannot be used: invalid perl operator: \(\?=/);

  const check = runSidecar(['check'], env);
  assert.equal((await check.exit()).code, 1);
  const report = JSON.parse(check.lines.map((l) => (l.unparsed ? l.msg : JSON.stringify(l))).join('\n')) as { problems: string[] };
  assert.equal(report.problems.length, 1);
  assert.match(report.problems[0]!, /^policy: rules\[0\] \(id "scrub-keys"\)\.redact\[0\]: pattern .*RE2 syntax/);

  // Hot reload: start on good rules, then break them.
  await writeFile(file, 'rules:\n  - id: no-preview\n    match: { input: { model: "*-preview" } }\n    decision: deny\n');
  const upstream = await startUpstream((_req, res) => sendJson(res, 200, {}));
  const sidecar = runSidecar([], { ...env, FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_RELOAD_INTERVAL_MS: '100' });
  const { proxy } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  await writeFile(`${file}.tmp`, lookahead);
  await rename(`${file}.tmp`, file);
  const rejected = await sidecar.waitFor('policy file rejected; keeping the rules in force');
  assert.match(String((rejected.err as { message: string }).message), /"scrub-keys".*invalid perl operator/);
  const denied = await fetch(`http://127.0.0.1:${proxy}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"x-preview"}' });
  assert.equal(denied.status, 403, 'the rules in force still apply');
  sidecar.child.kill('SIGTERM');
  assert.equal((await sidecar.exit()).code, 0);
  await upstream.close();
});
