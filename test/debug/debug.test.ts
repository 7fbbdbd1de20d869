import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, sendJson, chatCompletion, type FakeUpstream } from '../helpers/upstream.ts';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar, TEST_API_KEY, PROMPT_MARKER, type TestSidecar } from '../helpers/sidecar.ts';
import { rawRequest } from '../helpers/raw.ts';
import { Waiter } from '../helpers/server.ts';

const POLICY = `
rules:
  - id: deny-preview
    match: { input: { model: "*-preview" } }
    decision: deny
    reason: preview models are not approved
  - id: scrub-email
    match: { input: { model: scrub } }
    decision: modify
    reason: e-mail scrubbed
    redact: [{ pattern: "secret@example\\\\.com", replacement: "[email]" }]
`;

const FIELDS = ['time', 'route', 'provider', 'method', 'path', 'status', 'duration_ms', 'decision', 'policy_id', 'reason', 'source', 'code', 'bytes_in', 'bytes_out'];

let upstream: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let policyFile: string;
let sidecar: TestSidecar;
/** Every response body the debug listener sent, scanned for secrets at the end. */
const seen: string[] = [];

async function debugGet(path: string): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(`${sidecar.debugUrl}${path}`);
  const text = await res.text();
  seen.push(text);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

async function debugSend(method: string, path: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sidecar.debugUrl}${path}`, { method, headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  seen.push(text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${method} ${path} answers JSON`);
  return { status: res.status, json: JSON.parse(text) };
}

async function chat(model: string, query = ''): Promise<number> {
  const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: `${PROMPT_MARKER} secret@example.com` }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

before(async () => {
  upstream = await startUpstream((_req, res) => sendJson(res, 200, chatCompletion()));
  gateway = await startGateway({ prefix: '/gw' });
  identity = await makeIdentityDir();
  gateway.trust(identity.jkt, identity.agentId);
  gateway.onHook((event) => {
    const model = (event.tool_input as { model?: string } | undefined)?.model;
    if (model === 'remote-deny') return { body: { decision: 'deny', policy_id: 'gw-deny', reason: 'the gateway says no' } };
    if (model === 'gpt-4o') return { body: { decision: 'allow', policy_id: 'gw-allow', reason: 'fine' } };
    return { body: { decision: 'allow' } };
  });
  const dir = await mkdtemp(join(tmpdir(), 'fo-debug-'));
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
  sidecar = await startTestSidecar({
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: policyFile,
  }, [identity.privateKeyPem.split('\n')[1]]);
});

after(async () => {
  await sidecar.close();
  // No response of the debug listener holds the agent's key, its bearer, a proof, the client's key or prompt text.
  const proofs = gateway.hookRequests.map((r) => String(r.headers.dpop));
  assert.ok(proofs.length > 0, 'the gateway saw proofs to look for');
  const secrets = [TEST_API_KEY, PROMPT_MARKER, `fo_agent_${identity.agentId}`, ...identity.privateKeyPem.split('\n').filter((l) => l.length > 20), ...proofs];
  for (const secret of secrets) {
    const hit = seen.find((body) => body.includes(secret));
    assert.equal(hit, undefined, `a debug response leaks ${secret.slice(0, 16)}…`);
  }
  assert.ok(seen.length > 20, 'responses were collected');
  assert.deepEqual(gateway.rejected, []);
  await gateway.close();
  await upstream.close();
  await identity.cleanup();
});

test('the debug listener is on loopback, separate from the proxy and admin listeners', async () => {
  assert.equal(sidecar.sidecar.debugAddress?.address, '127.0.0.1');
  for (const base of [sidecar.url, sidecar.adminUrl]) {
    for (const path of ['/debug/requests', '/debug/config', '/']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, `${base}${path}`);
      await res.arrayBuffer();
    }
  }
  const proxied = await debugGet('/llm/openai/v1/models');
  assert.equal(proxied.status, 404);
  assert.equal(proxied.json.error.code, 'debug_not_found');
});

test('a Host that is not loopback is refused (DNS rebinding), a loopback one served', async () => {
  const port = sidecar.sidecar.debugAddress!.port;
  const evil = await rawRequest(port, `GET /debug/config HTTP/1.1\r\nHost: attacker.example:${port}\r\nConnection: close\r\n\r\n`);
  assert.equal(evil.status, 403);
  assert.equal(JSON.parse(evil.body).error.code, 'debug_host_refused');
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
    const ok = await rawRequest(port, `GET /debug/log-level HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200, host);
  }
});

test('/debug/requests: newest first, the documented fields only, query cut from the path, filters', async () => {
  assert.equal(await chat('gpt-4o', `?api_key=${TEST_API_KEY}`), 200);
  assert.equal(await chat('gpt-4-preview'), 403);
  assert.equal(await chat('scrub'), 200);
  const missing = await fetch(`${sidecar.url}/nowhere`);
  await missing.arrayBuffer();

  // The line is written once the response is done: poll until the last one is in.
  let requests: any[] = [];
  for (let i = 0; i < 200 && requests[0]?.status !== 404; i++) {
    requests = (await debugGet('/debug/requests')).json.requests;
    if (requests[0]?.status !== 404) await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(requests[0].status, 404);
  assert.equal(requests[0].route, 'other');
  const [deny] = requests.filter((r) => r.decision === 'deny');
  assert.deepEqual(Object.keys(deny).sort(), [...FIELDS].sort());
  assert.equal(deny.status, 403);
  assert.equal(deny.policy_id, 'deny-preview');
  assert.equal(deny.reason, 'preview models are not approved');
  assert.equal(deny.source, 'local');
  assert.equal(deny.code, 'policy_denied');
  assert.equal(deny.method, 'POST');
  assert.equal(deny.path, '/llm/openai/v1/chat/completions');
  assert.equal(deny.provider, 'openai');
  assert.ok(deny.bytes_in > 0);
  assert.ok(!Number.isNaN(Date.parse(deny.time)));
  const modify = requests.find((r) => r.decision === 'modify');
  assert.equal(modify.policy_id, 'scrub-email');
  assert.equal(modify.reason, 'e-mail scrubbed');
  const allow = requests.find((r) => r.decision === 'allow');
  assert.equal(allow.path, '/llm/openai/v1/chat/completions', 'no query string');
  assert.equal(allow.source, 'remote', 'the gateway allowed it');
  assert.equal(allow.policy_id, 'gw-allow');
  assert.ok(allow.bytes_out > 0);
  const times = requests.map((r) => Date.parse(r.time));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');

  const denied = (await debugGet('/debug/requests?status=403')).json.requests;
  assert.ok(denied.length >= 1 && denied.every((r: any) => r.status === 403));
  const byDecision = (await debugGet('/debug/requests?decision=modify')).json.requests;
  assert.ok(byDecision.length >= 1 && byDecision.every((r: any) => r.decision === 'modify'));
  const byProvider = (await debugGet('/debug/requests?provider=openai&limit=2')).json.requests;
  assert.equal(byProvider.length, 2);
  assert.ok(byProvider.every((r: any) => r.provider === 'openai'));
  assert.equal((await debugGet('/debug/requests?limit=1')).json.requests.length, 1);

  for (const bad of ['status=abc', 'status=42', 'limit=0', 'limit=100000', 'decision=%3Cscript%3E', 'colour=red']) {
    const res = await debugGet(`/debug/requests?${bad}`);
    assert.equal(res.status, 400, bad);
    assert.equal(res.json.error.code, 'debug_invalid_input', bad);
  }
});

/**
 * Waits until the sidecar's history holds `count` requests: the ring is
 * pushed right after the request's log line is written, so the line (or its
 * absence) is then final.
 */
async function recorded(t: TestSidecar, count: number): Promise<void> {
  for (;;) {
    const size = ((await (await fetch(`${t.debugUrl}/debug/config`)).json()) as any).history.size;
    if (size >= count) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Reads an SSE stream's `data:` events as they arrive. */
function openStream(): Promise<{ events: Waiter<any>; res: IncomingMessage; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = get(`${sidecar.debugUrl}/debug/requests/stream`, (res) => {
      const events = new Waiter<any>();
      let buffer = '';
      let opened = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        seen.push(chunk);
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!opened && event.startsWith(': connected')) {
            opened = true;
            resolve({ events, res, close: () => req.destroy() });
          }
          if (event.startsWith('data: ')) events.push(JSON.parse(event.slice(6)));
        }
      });
    });
    req.on('error', reject);
  });
}

test('/debug/requests/stream: the same records, live, as server-sent events', async () => {
  const stream = await openStream();
  assert.match(String(stream.res.headers['content-type']), /^text\/event-stream/);
  assert.equal(await chat('gpt-4-preview'), 403);
  const event = await stream.events.next();
  assert.deepEqual(Object.keys(event).sort(), [...FIELDS].sort());
  assert.equal(event.decision, 'deny');
  assert.equal(event.policy_id, 'deny-preview');
  const listed = (await debugGet('/debug/requests?limit=1')).json.requests[0];
  assert.deepEqual(listed, event, 'the stream and the list carry the same record');
  assert.equal((await debugGet('/debug/config')).json.history.stream_readers, 1);
  stream.close();
});

test('/debug/config: configuration, identity, policy, upstreams, fail mode and versions, no secrets', async () => {
  const { status, json } = await debugGet('/debug/config');
  assert.equal(status, 200);
  assert.equal(json.identity.agent_id, identity.agentId);
  assert.equal(json.identity.jkt, identity.jkt);
  assert.equal(json.identity.loaded, true);
  assert.ok(Date.parse(json.identity.loaded_at) > 0);
  assert.equal(json.policy.file, policyFile);
  assert.equal(json.policy.sha256, createHash('sha256').update(POLICY).digest('hex'));
  assert.deepEqual(json.policy.rule_ids, ['deny-preview', 'scrub-email']);
  assert.deepEqual(json.policy.response_rule_ids, [], 'this policy has no responses section');
  assert.equal(json.response_remote, 'off');
  assert.equal(json.policy.last_reload_error, null);
  assert.equal(json.upstreams.openai, upstream.url);
  assert.equal(json.fail_mode, 'closed');
  assert.equal(json.versions.sidecar, '0.1.0');
  assert.equal(json.versions.node, process.versions.node);
  assert.equal(json.config.debugPort, 0);
  assert.equal(json.config.gatewayUrl, gateway.baseUrl);
  assert.equal(json.log.level, 'debug');

  // A rejected reload: the rules in force stay, the error is shown.
  await writeFile(policyFile, 'rules: [{ id: broken }]\n');
  await sidecar.sidecar.policy!.reload();
  const after = (await debugGet('/debug/config')).json;
  assert.equal(after.policy.sha256, json.policy.sha256, 'the rules in force did not change');
  assert.match(after.policy.last_reload_error, /policy/);
  assert.equal(after.policy.last_reload.result, 'failure');
  // A good one: new hash, new ids, the error cleared.
  const next = `${POLICY}  - id: third\n    match: { input: { model: third } }\n    decision: deny\n`;
  await writeFile(policyFile, next);
  await sidecar.sidecar.policy!.reload();
  const good = (await debugGet('/debug/config')).json;
  assert.equal(good.policy.sha256, createHash('sha256').update(next).digest('hex'));
  assert.deepEqual(good.policy.rule_ids, ['deny-preview', 'scrub-email', 'third']);
  assert.equal(good.policy.last_reload_error, null);
  assert.equal(good.policy.last_reload.result, 'success');
  await writeFile(policyFile, POLICY);
  await sidecar.sidecar.policy!.reload();
});

test('/debug/evaluate: a dry run of the chain, nothing forwarded, local unless asked', async () => {
  const forwarded = upstream.requests.length;
  const asked = gateway.hookRequests.length;
  const path = '/llm/openai/v1/chat/completions';

  const deny = await debugSend('POST', '/debug/evaluate', { path, body: { model: 'gpt-4-preview' } });
  assert.equal(deny.status, 200);
  assert.deepEqual(deny.json, { phase: 'request', tool_name: 'openai.v1.chat.completions', decision: 'deny', policy_id: 'deny-preview', reason: 'preview models are not approved', source: 'local' });

  const modify = await debugSend('POST', '/debug/evaluate', { path, body: { model: 'scrub', messages: [{ role: 'user', content: 'mail secret@example.com' }] } });
  assert.equal(modify.json.decision, 'modify');
  assert.equal(modify.json.source, 'local');
  assert.equal(modify.json.policy_id, 'scrub-email');
  assert.deepEqual(modify.json.body, { model: 'scrub', messages: [{ role: 'user', content: 'mail [email]' }] });

  const local = await debugSend('POST', '/debug/evaluate', { path, body: { model: 'remote-deny' } });
  assert.equal(local.json.decision, 'allow', 'remote not asked by default');
  assert.equal(local.json.source, null);
  assert.equal(gateway.hookRequests.length, asked);

  const remote = await debugSend('POST', '/debug/evaluate', { path, body: { model: 'remote-deny' }, remote: true });
  assert.deepEqual(remote.json, { phase: 'request', tool_name: 'openai.v1.chat.completions', decision: 'deny', policy_id: 'gw-deny', reason: 'the gateway says no', source: 'remote' });
  assert.equal(gateway.hookRequests.length, asked + 1);

  const noBody = await debugSend('POST', '/debug/evaluate', { path: '/llm/openai/v1/models' });
  assert.equal(noBody.json.tool_name, 'openai.v1.models');
  assert.equal(noBody.json.decision, 'allow');
  assert.equal(upstream.requests.length, forwarded, 'a dry run forwards nothing');

  const bad: Array<[unknown, string?]> = [
    ['{"path":', undefined],
    ['[]', undefined],
    ['{"path":"/llm/openai/v1/x","path":"/llm/openai/v1/y"}', undefined],
    [{ path: '/mcp/x' }],
    [{ path: 42 }],
    [{ path: '/llm/mistral/v1/chat' }],
    [{ path: '/llm/openai/v1/../../admin' }],
    [{ path, body: [1, 2] }],
    [{ path, body: 'text' }],
    [{ path, remote: 'yes' }],
    [{ path, extra: 1 }],
    [{ path }, 'text/plain'],
  ];
  for (const [body, type] of bad) {
    const res = await debugSend('POST', '/debug/evaluate', body, type);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.code, 'debug_invalid_input', JSON.stringify(body));
  }
});

test('PUT /debug/log-level changes every logger at run time and reverts after the TTL', async () => {
  // Its own sidecar at warn: no request lines, no component info lines.
  const quiet = await startTestSidecar({ FIRSTOPS_LOG_LEVEL: 'warn', FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_POLICY_FILE: policyFile });
  const put = async (body: unknown) => {
    const res = await fetch(`${quiet.debugUrl}/debug/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const hit = async (): Promise<void> => {
    const res = await fetch(`${quiet.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4-preview"}' });
    await res.arrayBuffer();
  };
  try {
    await hit();
    await recorded(quiet, 1);
    assert.equal(quiet.logs.requests().length, 0, 'warn hides the request line');

    for (const bad of [{ level: 'verbose' }, { level: 'info', ttl_seconds: 0 }, { level: 'info', ttl_seconds: 1.5 }, { level: 'info', ttl_seconds: '60' }, {}]) {
      const res = await put(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.json.error.code, 'debug_invalid_input');
    }

    const since = quiet.logs.lines.length;
    const set = await put({ level: 'info', ttl_seconds: 1 });
    assert.equal(set.status, 200);
    assert.equal(set.json.level, 'info');
    assert.equal(set.json.configured, 'warn');
    assert.ok(Date.parse(set.json.revert_at) > Date.now());
    const changed = await quiet.logs.waitFor('log level changed on the debug listener', since);
    assert.equal(changed.log_level, 'info');
    assert.equal(changed.previous_log_level, 'warn');

    await hit();
    const line = await quiet.logs.waitFor('request', since);
    assert.equal(line.component, 'request', 'the request child follows the root level');
    await writeFile(policyFile, `${POLICY}\n`);
    await quiet.sidecar.policy!.reload();
    const reloaded = await quiet.logs.waitFor('local policy reloaded', since);
    assert.equal(reloaded.component, 'policy', 'component children follow too');
    assert.equal((await (await fetch(`${quiet.debugUrl}/debug/config`)).json() as any).log.level, 'info');

    const reverted = await quiet.logs.waitFor('log level reverted to FIRSTOPS_LOG_LEVEL', since);
    assert.equal(reverted.log_level, 'warn');
    const requestsBefore = quiet.logs.requests().length;
    await hit();
    await recorded(quiet, 3);
    assert.equal(quiet.logs.requests().length, requestsBefore, 'back at warn: no request line');
    const state = (await (await fetch(`${quiet.debugUrl}/debug/log-level`)).json()) as any;
    assert.deepEqual(state, { level: 'warn', configured: 'warn', revert_at: null });
  } finally {
    await writeFile(policyFile, POLICY);
    await quiet.close();
  }
});

test('GET / is one self-contained page, with a CSP that allows nothing else', async () => {
  const page = await debugGet('/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.doesNotMatch(page.text, /<link|<script[^>]+src=|<img|https?:\/\//i, 'no external assets');
  for (const id of ['rows', 'dry-run', 'level-form', 'config']) assert.match(page.text, new RegExp(`id="${id}"`));
});

test('FIRSTOPS_DEBUG_PORT=off starts no listener; ALLOW_REMOTE lifts the Host guard', async () => {
  const off = await startTestSidecar({ FIRSTOPS_DEBUG_PORT: 'off', FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  try {
    assert.equal(off.sidecar.debugAddress, undefined);
    assert.equal((await off.logs.waitFor('firstops-sidecar listening')).debug, 'off');
  } finally {
    await off.close();
  }
  const open = await startTestSidecar({ FIRSTOPS_DEBUG_ALLOW_REMOTE: 'true', FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  try {
    const port = open.sidecar.debugAddress!.port;
    const res = await rawRequest(port, `GET /debug/log-level HTTP/1.1\r\nHost: pod.example:${port}\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 200);
  } finally {
    await open.close();
  }
});
