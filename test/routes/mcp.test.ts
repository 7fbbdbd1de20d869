import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { calculateJwkThumbprint } from 'jose';
import { z } from 'zod';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { generateKey } from '../helpers/identity.ts';
import { kubeSecretDir } from '../helpers/secret-dir.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { readAll, Waiter } from '../helpers/server.ts';
import { sendJson } from '../helpers/upstream.ts';

const AGENT = 'agt_mcp_test';
let gateway: FakeGateway;
let sidecar: TestSidecar;
let secret: Awaited<ReturnType<typeof kubeSecretDir>>;
let key = generateKey('sec1');
const servers: McpServer[] = [];
const streamable = new Map<string, StreamableHTTPServerTransport>();
const legacy = new Map<string, SSEServerTransport>();
const gatewayGets = new Waiter<IncomingMessage>();

function newMcpServer(): McpServer {
  const server = new McpServer({ name: 'fake-gateway-tools', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echo text back', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }));
  servers.push(server);
  return server;
}

/** The gateway's MCP side: Streamable HTTP under /mcp/proxy/, legacy HTTP+SSE under /mcp/sse. */
async function routeMcp(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (path.startsWith('/mcp/proxy/')) {
    if (req.method === 'GET') gatewayGets.push(req);
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? streamable.get(sessionId) : undefined;
    if (!transport) {
      transport = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void streamable.set(id, transport!) });
      await newMcpServer().connect(transport);
    }
    await transport.handleRequest(req, res);
    return;
  }
  if (path === '/mcp/sse' && req.method === 'GET') {
    // Announce an ABSOLUTE message URL, as the FirstOps gateway does, written in
    // two TCP writes split inside the URL.
    const write = res.write.bind(res) as (chunk: string) => boolean;
    (res as { write: (chunk: string) => boolean }).write = (chunk: string) => {
      if (!chunk.startsWith('event: endpoint')) return write(chunk);
      const absolute = chunk.replace('data: /', `data: http://127.0.0.1:${gateway.port}/`);
      const cut = absolute.indexOf('/mcp/sse/mes') + 7;
      write(absolute.slice(0, cut));
      setImmediate(() => write(absolute.slice(cut)));
      return true;
    };
    const transport = new SSEServerTransport('/gw/mcp/sse/message', res);
    legacy.set(transport.sessionId, transport);
    await newMcpServer().connect(transport);
    return;
  }
  if (path.startsWith('/mcp/sse/message') && req.method === 'POST') {
    const id = new URL(path, 'http://x').searchParams.get('sessionId') ?? '';
    const transport = legacy.get(id);
    if (!transport) return sendJson(res, 404, { error: 'no session' });
    await transport.handlePostMessage(req, res);
    return;
  }
  sendJson(res, 404, { error: `no route ${path}` });
}

before(async () => {
  gateway = await startGateway({ prefix: '/gw' });
  gateway.trust(await calculateJwkThumbprint(key.publicJwk, 'sha256'), AGENT);
  gateway.onMcp((recorded, res, req) => routeMcp(recorded.url, req, res));
  secret = await kubeSecretDir({ 'agent-id': `fo_agent_${AGENT}\n`, 'private-key.pem': key.pem });
  sidecar = await startTestSidecar({
    FIRSTOPS_IDENTITY_DIR: secret.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_MAX_BODY_BYTES: '65536',
  }, [AGENT, key.pem.split('\n')[1]]);
});

after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  await sidecar.close();
  await gateway.close();
  await secret.cleanup();
  assert.deepEqual(gateway.rejected, [], 'every proof verified at the gateway');
});

test('Streamable HTTP: initialize, list, call, GET-stream notification, DELETE — every hop DPoP-signed', async () => {
  const client = new Client({ name: 'agent', version: '1.0.0' });
  const notified = new Waiter<true>();
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => notified.push(true));
  const transport = new StreamableHTTPClientTransport(new URL(`${sidecar.url}/mcp/proxy/conn-1`));
  const proofsBefore = gateway.proofs.length;
  await client.connect(transport);
  assert.ok(transport.sessionId, 'Mcp-Session-Id came back through the sidecar');

  const tools = await client.listTools();
  assert.deepEqual(tools.tools.map((t) => t.name), ['echo']);
  const result = await client.callTool({ name: 'echo', arguments: { text: 'héllo' } });
  assert.deepEqual(result.content, [{ type: 'text', text: 'echo: héllo' }]);

  // The standalone GET stream: wait until the gateway has it, then notify.
  const get = await gatewayGets.next();
  assert.equal(get.headers['mcp-session-id'], transport.sessionId);
  assert.ok(get.headers['mcp-protocol-version'], 'MCP-Protocol-Version is forwarded');
  servers.at(-1)!.sendToolListChanged();
  await notified.next();

  await transport.terminateSession();
  await client.close();
  const methods = new Set(gateway.proofs.slice(proofsBefore).map((p) => p.method));
  assert.deepEqual([...methods].sort(), ['DELETE', 'GET', 'POST']);
  for (const proof of gateway.proofs.slice(proofsBefore)) assert.equal(proof.htu, `${gateway.baseUrl}/mcp/proxy/conn-1`);
  const lines = sidecar.logs.requests().filter((l) => l.route === 'mcp');
  assert.ok(lines.some((l) => l.method === 'DELETE' && l.status === 200));
  assert.ok((await sidecar.metricValue('firstops_requests_total', { route: 'mcp', method: 'POST', status: '200' })) >= 3);
});

test('legacy HTTP+SSE: the absolute endpoint is rewritten to the sidecar and the tool call succeeds', async () => {
  const client = new Client({ name: 'legacy-agent', version: '1.0.0' });
  const transport = new SSEClientTransport(new URL(`${sidecar.url}/mcp/sse`));
  await client.connect(transport);
  const result = await client.callTool({ name: 'echo', arguments: { text: 'old transport' } });
  assert.deepEqual(result.content, [{ type: 'text', text: 'echo: old transport' }]);
  await client.close();
  const posts = sidecar.logs.requests().filter((l) => l.route === 'mcp' && l.method === 'POST' && l.path === '/mcp/sse/message');
  assert.ok(posts.length >= 2, 'messages went through the sidecar');
});

test('client headers: MCP ones forwarded, the client\'s own credentials and cookies never', async () => {
  let seen: IncomingMessage['headers'] = {};
  let seenUrl = '';
  gateway.onMcp((recorded, res, req) => {
    if (!recorded.url.startsWith('/mcp/headers')) return routeMcp(recorded.url, req, res);
    seen = req.headers;
    seenUrl = recorded.url;
    return sendJson(res, 200, { ok: true }, { 'mcp-session-id': 's-1', 'x-gateway': 'g' });
  });
  const res = await fetch(`${sidecar.url}/mcp/headers?x=1`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 's-1',
      'mcp-protocol-version': '2025-06-18', 'last-event-id': 'ev-9', authorization: 'Bearer client-own', cookie: 'a=b',
      'proxy-authorization': 'Basic x', 'x-forwarded-for': '1.2.3.4',
    },
    body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('mcp-session-id'), 's-1');
  assert.equal(res.headers.get('x-gateway'), 'g');
  assert.equal(seenUrl, '/mcp/headers?x=1', 'path and query reach the gateway as sent');
  assert.equal(seen['mcp-protocol-version'], '2025-06-18');
  assert.equal(seen['last-event-id'], 'ev-9');
  assert.equal(seen['mcp-session-id'], 's-1');
  assert.equal(seen.authorization, `Bearer fo_agent_${AGENT}`);
  for (const gone of ['cookie', 'proxy-authorization', 'x-forwarded-for']) assert.equal(seen[gone], undefined, gone);
  gateway.onMcp((recorded, r, req) => routeMcp(recorded.url, req, r));
});

test('body cap: 413 before the gateway is called', async () => {
  const before = gateway.proofs.length;
  const res = await fetch(`${sidecar.url}/mcp/proxy/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(70_000) }) });
  assert.equal(res.status, 413);
  assert.equal(gateway.proofs.length, before);
});

test('nonce challenge on an MCP POST: retried once with the nonce', async () => {
  gateway.requireNonce('mcp-nonce-1');
  gateway.onMcp((recorded, res) => sendJson(res, 200, { path: recorded.url }));
  try {
    const res = await fetch(`${sidecar.url}/mcp/nonce`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(res.status, 200);
    assert.equal(gateway.proofs.at(-1)!.nonce, 'mcp-nonce-1');
    assert.ok((await sidecar.metricValue('firstops_dpop_nonce_retries_total')) >= 1);
  } finally {
    gateway.requireNonce(undefined);
    gateway.onMcp((recorded, r, req) => routeMcp(recorded.url, req, r));
  }
});

test('client disconnect aborts the gateway stream; gateway down answers 502', async () => {
  const closed = new Waiter<true>();
  gateway.onMcp((_recorded, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: message\ndata: {}\n\n');
    res.on('close', () => closed.push(true));
  });
  const controller = new AbortController();
  const res = await fetch(`${sidecar.url}/mcp/stream`, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  await res.body!.getReader().read();
  controller.abort();
  await closed.next();
  gateway.onMcp((recorded, r, req) => routeMcp(recorded.url, req, r));
});

test('key rotation by symlink swap: the open stream lives on, the next request uses the new key', async () => {
  const streamOpen = new Waiter<ServerResponse>();
  gateway.onMcp((recorded, res) => {
    if (recorded.url === '/mcp/long') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      streamOpen.push(res);
      return;
    }
    return sendJson(res, 200, { ok: true });
  });
  const stream = await fetch(`${sidecar.url}/mcp/long`, { headers: { accept: 'text/event-stream' } });
  const reader = stream.body!.getReader();
  await reader.read();
  const upstreamRes = await streamOpen.next();

  const next = generateKey('pkcs8');
  const nextJkt = await calculateJwkThumbprint(next.publicJwk, 'sha256');
  gateway.trust(nextJkt, AGENT);
  const since = sidecar.logs.lines.length;
  await secret.update({ 'agent-id': AGENT, 'private-key.pem': next.pem });
  await sidecar.logs.waitFor('agent identity rotated', since);

  upstreamRes.end('data: two\n\n');
  let text = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += Buffer.from(r.value).toString();
  assert.match(text, /two/, 'the stream opened with the old key completed');

  const res = await fetch(`${sidecar.url}/mcp/after`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 200);
  assert.equal(gateway.proofs.at(-1)!.jkt, nextJkt);

  // A broken new key keeps the current one and shows in the metric.
  const before = await sidecar.metricValue('firstops_identity_reloads_total', { result: 'failure' });
  const since2 = sidecar.logs.lines.length;
  await secret.update({ 'agent-id': AGENT, 'private-key.pem': '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n' });
  await sidecar.logs.waitFor('new identity rejected; keeping the current one', since2);
  assert.equal(await sidecar.metricValue('firstops_identity_reloads_total', { result: 'failure' }), before + 1);
  const still = await fetch(`${sidecar.url}/mcp/after`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(still.status, 200);
  assert.equal(gateway.proofs.at(-1)!.jkt, nextJkt);
  key = next;
  gateway.onMcp((recorded, r, req) => routeMcp(recorded.url, req, r));
  void readAll;
});
