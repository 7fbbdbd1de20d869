import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, sendJson, type FakeUpstream } from '../helpers/upstream.ts';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { rawRequest } from '../helpers/raw.ts';
import { Waiter } from '../helpers/server.ts';

// default deny: only gpt-4o-mini chat completions and model listings pass.
const POLICY = `
default: deny
default_reason: not on the allow list
rules:
  - id: chat-mini
    match: { tool_name: openai.v1.chat.completions, input: { model: gpt-4o-mini } }
    decision: allow
  - id: models
    match: { tool_name: openai.v1.models }
    decision: allow
  - id: no-images
    match: { tool_name: "openai.v1.images.*" }
    decision: deny
    reason: no image generation
  - id: scrub
    match: { input: { model: scrub } }
    decision: modify
    redact: [{ pattern: secret, replacement: "[x]" }]
`;

let upstream: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let sidecar: TestSidecar;

before(async () => {
  upstream = await startUpstream((_req, res) => sendJson(res, 200, { ok: true }));
  gateway = await startGateway();
  identity = await makeIdentityDir();
  gateway.trust(identity.jkt, identity.agentId);
  const dir = await mkdtemp(join(tmpdir(), 'fo-strict-'));
  await writeFile(join(dir, 'p.yaml'), POLICY);
  sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_POLICY_TIMEOUT_MS: '5000',
  }, [identity.agentId]);
});

after(async () => {
  await sidecar.close();
  await gateway.close();
  await upstream.close();
  await identity.cleanup();
});

const post = (path: string, body: string | Buffer, headers: string[]) =>
  rawRequest(sidecar.sidecar.proxyAddress.port, Buffer.concat([
    Buffer.from([`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', ''].join('\r\n')),
    Buffer.from(body),
  ]));

test('bodies a lenient parser would read are refused, whatever the Content-Type', async () => {
  const before = upstream.requests.length;
  const cases: Array<[string, string | Buffer, string[]]> = [
    ['no Content-Type, BOM', '\ufeff{"model":"o1-pro"}', []],
    ['no Content-Type, NaN', '{"model":"o1-pro","temperature":NaN}', []],
    ['text/plain, trailing comma', '{"model":"o1-pro",}', ['Content-Type: text/plain']],
    ['octet-stream, starts like an array', '  [1,2,', ['Content-Type: application/octet-stream']],
    ['two Content-Types', '{"model":"o1-pro",}', ['Content-Type: text/plain', 'Content-Type: application/json']],
  ];
  for (const [name, body, headers] of cases) {
    const res = await post('/llm/openai/v1/chat/completions', body, headers);
    assert.equal(res.status, 400, name);
    assert.ok(['invalid_json', 'bad_request'].includes(JSON.parse(res.body).error.code), name);
  }
  assert.equal(upstream.requests.length, before, 'none of them was forwarded');
});

test('default deny and tool_name rules apply to bodies that are not JSON objects; the gateway is not asked', async () => {
  const hooks = gateway.hookRequests.length;
  const audio = await post('/llm/openai/v1/audio/transcriptions', Buffer.from([0x00, 0x01, 0xff]), ['Content-Type: application/octet-stream']);
  assert.equal(audio.status, 403);
  assert.match(JSON.parse(audio.body).error.message, /not on the allow list/);
  const images = await post('/llm/openai/v1/images/generations', '[1]', ['Content-Type: application/json']);
  assert.equal(images.status, 403);
  assert.match(JSON.parse(images.body).error.message, /no image generation/);
  const models = await rawRequest(sidecar.sidecar.proxyAddress.port, 'GET /llm/openai/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(models.status, 200);
  assert.equal(gateway.hookRequests.length, hooks, 'only JSON object bodies go to EvaluateHook');
  const chat = await post('/llm/openai/v1/chat/completions', '{"model":"gpt-4o-mini"}', ['Content-Type: application/json']);
  assert.equal(chat.status, 200);
  assert.equal(gateway.hookRequests.length, hooks + 1);
});

test('path spellings that would dodge tool_name rules are refused', async () => {
  for (const path of ['/llm/openai/v1/%69mages/generations', '/llm/openai/v1//images/generations', '/llm/openai/v1/images;x/generations', '/%6clm/openai/v1/images/generations']) {
    const res = await post(path, '{"model":"gpt-4o-mini"}', ['Content-Type: application/json']);
    assert.equal(res.status, 400, path);
    assert.equal(JSON.parse(res.body).error.code, 'bad_request_target', path);
  }
});

test('a __proto__ key survives redaction as a key', async () => {
  const res = await post('/llm/openai/v1/chat/completions', '{"model":"scrub","__proto__":{"a":"secret"},"m":"secret"}', ['Content-Type: application/json']);
  assert.equal(res.status, 200);
  assert.equal(upstream.requests.at(-1)!.body.toString(), '{"model":"scrub","__proto__":{"a":"[x]"},"m":"[x]"}');
});

test('a client that leaves during remote evaluation is a 499, not a policy failure', async () => {
  let release: (() => void) | undefined;
  const entered = new Waiter<true>();
  gateway.onHook(async () => {
    entered.push(true);
    await new Promise<void>((resolve) => { release = resolve; });
    return { body: { decision: 'allow' } };
  });
  const failedBefore = await sidecar.metricValue('firstops_policy_decisions_total', { outcome: 'fail_closed' });
  const controller = new AbortController();
  const pending = fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini"}', signal: controller.signal }).catch(() => 'aborted');
  await entered.next();
  const since = sidecar.logs.lines.length;
  controller.abort();
  assert.equal(await pending, 'aborted');
  const line = await sidecar.logs.waitFor('request', since);
  assert.equal(line.status, 499);
  assert.equal(line.code, 'client_aborted');
  assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { outcome: 'fail_closed' }), failedBefore);
  release?.();
  gateway.onHook(() => ({ body: { decision: 'allow' } }));
});

test('an unusable Host header gets a JSON 400 with a code', async () => {
  const res = await rawRequest(sidecar.sidecar.proxyAddress.port, 'GET /llm/openai/v1/models HTTP/1.1\r\nHost: a@b\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 400);
  assert.equal(JSON.parse(res.body).error.code, 'bad_request');
});
