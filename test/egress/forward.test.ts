// http:// targets through HTTP_PROXY (forwarded in absolute form), in process:
// the LLM route with the OpenAI SDK, the MCP route and remote evaluation, proxy
// credentials, NO_PROXY, and a proxy that is down or refuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { startUpstream, chatCompletion, sendJson, type FakeUpstream } from '../helpers/upstream.ts';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { startTestSidecar, TEST_API_KEY, PROMPT_MARKER } from '../helpers/sidecar.ts';
import { closedPort } from '../faults/lib.ts';

const PROXY_PASSWORD = 'proxy-PASSWORD-must-not-leak';
const CREDENTIALS = `egress-user:${PROXY_PASSWORD}`;

let upstream: FakeUpstream;
let bypassed: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let proxy: TestProxy;
let policyFile: string;

before(async () => {
  upstream = await startUpstream();
  bypassed = await startUpstream();
  gateway = await startGateway({ prefix: '/gw' });
  identity = await makeIdentityDir();
  gateway.trust(identity.jkt, identity.agentId);
  const streamable = new Map<string, StreamableHTTPServerTransport>();
  gateway.onMcp(async (_recorded, res, req) => {
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? streamable.get(id) : undefined;
    if (!transport) {
      const created = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (sid) => void streamable.set(sid, created) });
      const server = new McpServer({ name: 'gw', version: '1.0.0' });
      server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }));
      await server.connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res);
  });
  proxy = await startProxy({ credentials: CREDENTIALS });
  const dir = await mkdtemp(join(tmpdir(), 'fo-egress-policy-'));
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, 'rules: []\n');
});

after(async () => {
  assert.deepEqual(gateway.rejected, [], 'every DPoP proof verified at the gateway');
  await Promise.all([upstream.close(), bypassed.close(), gateway.close(), proxy.close()]);
  await identity.cleanup();
});

function proxyUrl(credentials = CREDENTIALS, port = proxy.port): string {
  return `http://${credentials}@127.0.0.1:${port}`;
}

test('LLM, MCP and remote evaluation all go through HTTP_PROXY with its credentials; htu stays the gateway URL', async () => {
  const sidecar = await startTestSidecar({
    http_proxy: proxyUrl(),
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: `${upstream.url}/prefix`,
    FIRSTOPS_POLICY_FILE: policyFile,
  }, [PROXY_PASSWORD, Buffer.from(CREDENTIALS).toString('base64'), identity.agentId]);
  const hitsBefore = proxy.hits.length;
  const openai = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletion('through the proxy')));
  const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT_MARKER }] });
  assert.equal(completion.choices[0]?.message.content, 'through the proxy');
  assert.equal(upstream.requests.at(-1)!.url, '/prefix/v1/chat/completions');
  assert.equal(upstream.requests.at(-1)!.headers['proxy-authorization'], undefined, 'the proxy credentials stop at the proxy');

  const client = new Client({ name: 'agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${sidecar.url}/mcp/proxy/conn-1`));
  await client.connect(transport);
  const result = await client.callTool({ name: 'echo', arguments: { text: 'via proxy' } });
  assert.deepEqual(result.content, [{ type: 'text', text: 'echo: via proxy' }]);
  await client.close();

  const hits = proxy.hits.slice(hitsBefore);
  const expectedAuth = `Basic ${Buffer.from(CREDENTIALS).toString('base64')}`;
  assert.ok(hits.length >= 3);
  for (const hit of hits) {
    assert.equal(hit.kind, 'forward', 'http:// targets are forwarded, not tunnelled');
    assert.equal(hit.authorization, expectedAuth);
  }
  const targets = hits.map((h) => h.target);
  assert.ok(targets.includes(`${gateway.baseUrl}/api/v1/daemon/evaluate-hook`), 'remote evaluation went through the proxy');
  assert.ok(targets.includes(`${upstream.url}/prefix/v1/chat/completions`), 'the LLM call went through the proxy');
  assert.ok(targets.includes(`${gateway.baseUrl}/mcp/proxy/conn-1`), 'MCP went through the proxy');
  for (const proof of gateway.proofs) assert.ok(proof.htu.startsWith(`${gateway.baseUrl}/`), `htu ${proof.htu} is the gateway URL`);

  const egress = sidecar.logs.lines.find((l) => l.msg === 'egress')!;
  assert.deepEqual(egress.targets, {
    'upstream openai': `via http://***@127.0.0.1:${proxy.port} (http_proxy)`,
    'upstream anthropic': 'direct (no HTTPS_PROXY or ALL_PROXY)',
    gateway: `via http://***@127.0.0.1:${proxy.port} (http_proxy)`,
  });
  await sidecar.close();
});

test('NO_PROXY: a listed host:port goes direct, the others still through the proxy', async () => {
  const sidecar = await startTestSidecar({
    HTTP_PROXY: proxyUrl(),
    NO_PROXY: `example.internal, 127.0.0.1:${bypassed.port}`,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_UPSTREAM_LOCAL: bypassed.url,
    FIRSTOPS_POLICY_FILE: policyFile,
  }, [PROXY_PASSWORD]);
  const hitsBefore = proxy.hits.length;
  const direct = await fetch(`${sidecar.url}/llm/local/v1/models`);
  assert.equal(direct.status, 200);
  await direct.arrayBuffer();
  assert.equal(bypassed.requests.length, 1);
  assert.equal(proxy.hits.length, hitsBefore, 'NO_PROXY host bypassed the proxy');
  const proxied = await fetch(`${sidecar.url}/llm/openai/v1/models`);
  assert.equal(proxied.status, 200);
  await proxied.arrayBuffer();
  assert.deepEqual(proxy.hits.slice(hitsBefore).map((h) => h.target), [`${upstream.url}/v1/models`]);
  await sidecar.close();
});

test('repeated request headers reach the upstream through the proxy as separate lines', async () => {
  const sidecar = await startTestSidecar({ HTTP_PROXY: proxyUrl(), FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_POLICY_FILE: policyFile }, [PROXY_PASSWORD]);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${sidecar.url}/llm/openai/v1/models`, { headers: ['host', new URL(sidecar.url).host, 'x-tag', 'a', 'x-tag', 'b', 'proxy-authorization', 'Basic client-own'] }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 200);
  const seen = upstream.requests.at(-1)!;
  const tags = seen.rawHeaders.filter((_v, i) => i % 2 === 0 && seen.rawHeaders[i]!.toLowerCase() === 'x-tag').length;
  assert.equal(tags, 2, 'both x-tag lines arrived');
  assert.equal(seen.headers['x-tag'], 'a, b');
  assert.equal(proxy.hits.at(-1)!.authorization, `Basic ${Buffer.from(CREDENTIALS).toString('base64')}`, 'the client cannot replace the proxy credentials');
  await sidecar.close();
});

test('proxy down: a clear 502 proxy_unreachable on both routes, credentials never shown', async () => {
  const port = await closedPort();
  const sidecar = await startTestSidecar({
    HTTP_PROXY: proxyUrl(CREDENTIALS, port),
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: policyFile,
    FIRSTOPS_REMOTE_POLICY: 'off',
  }, [PROXY_PASSWORD]);
  const before = upstream.requests.length;
  const llm = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m"}' });
  assert.equal(llm.status, 502);
  const body = await llm.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'proxy_unreachable');
  assert.ok(body.error.message.includes(`http://***@127.0.0.1:${port}`), body.error.message);
  assert.ok(!body.error.message.includes(PROXY_PASSWORD));
  assert.equal(upstream.requests.length, before, 'no direct attempt behind the proxy\'s back');

  const mcp = await fetch(`${sidecar.url}/mcp/proxy/x`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
  assert.equal(mcp.status, 502);
  assert.equal(((await mcp.json()) as { error: { code: string } }).error.code, 'proxy_unreachable');
  assert.equal(await sidecar.metricValue('firstops_upstream_errors_total', { route: 'llm', code: 'proxy_unreachable' }), 1);
  await sidecar.close();
});

test('remote evaluation with the proxy down: policy_unavailable naming the proxy failure, nothing forwarded', async () => {
  const port = await closedPort();
  const sidecar = await startTestSidecar({
    HTTP_PROXY: `127.0.0.1:${port}`,
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
  });
  const before = upstream.requests.length;
  const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m"}' });
  assert.equal(res.status, 503);
  const body = await res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'policy_unavailable');
  assert.match(body.error.message, /proxy_unreachable/);
  assert.equal(upstream.requests.length, before);
  await sidecar.close();
});

test('a proxy that refuses the credentials (407) is proxy_refused, not an upstream answer', async () => {
  const sidecar = await startTestSidecar({ HTTP_PROXY: proxyUrl('egress-user:wrong'), FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_POLICY_FILE: policyFile });
  const res = await fetch(`${sidecar.url}/llm/openai/v1/models`);
  assert.equal(res.status, 502);
  const body = await res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'proxy_refused');
  assert.match(body.error.message, /407/);
  await sidecar.close(['egress-user:wrong']);
});

test('FIRSTOPS_PROXY_MODE=off ignores the proxy variables', async () => {
  const sidecar = await startTestSidecar({
    FIRSTOPS_PROXY_MODE: 'off',
    HTTP_PROXY: proxyUrl(),
    ALL_PROXY: 'socks5://127.0.0.1:1080',
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: policyFile,
  });
  const hitsBefore = proxy.hits.length;
  const res = await fetch(`${sidecar.url}/llm/openai/v1/models`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.equal(proxy.hits.length, hitsBefore);
  await sidecar.close([PROXY_PASSWORD]);
});
