import { test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createPolicyChain } from '../../src/policy/chain.ts';
import { createInspector } from '../../src/policy/pool.ts';
import { createLlmHandler } from '../../src/routes/llm.ts';
import { createBodyBudget } from '../../src/memory/budget.ts';
import { createProxyRoutes, type RouteHandler } from '../../src/routes/proxy.ts';
import { createProxyServer, listen } from '../../src/http/listener.ts';
import { SENT } from '../../src/routes/respond.ts';
import { createDispatcher } from '../../src/egress/upstream.ts';
import { LogCapture } from '../helpers/logs.ts';

/** The first `n` request log lines, once written (each is written just after its response closes). */
async function requestLines(logs: LogCapture, n: number): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  let since = 0;
  while (lines.length < n) {
    const line = await logs.waitFor('request', since);
    lines.push(line);
    since = logs.lines.indexOf(line) + 1;
  }
  return lines;
}

/** The proxy listener on a real socket, with the real LLM route (no policy, no upstream reached) and `mcp` as given. */
async function proxy(mcp: RouteHandler = async (x) => {
  x.res.end('mcp');
  return SENT;
}): Promise<{ url: string; logs: LogCapture; close: () => Promise<void> }> {
  const config = loadConfig({});
  const metrics = createMetrics({ defaultMetrics: false });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'info', destination: logs });
  const chain = createPolicyChain({ local: () => undefined, remote: () => undefined, inspector: createInspector({ workers: 1, offloadBytes: 65536, budgetMs: 1000, maxQueue: 1 }), failMode: 'closed', metrics, logger });
  const llm = createLlmHandler({ config, chain, dispatcher: createDispatcher({ connectTimeoutMs: 1000, headersTimeoutMs: 1000 }), metrics, budget: createBodyBudget({ bytes: 1 << 30, smallBytes: 65536 }) });
  const { server } = createProxyServer({ handle: createProxyRoutes({ llm, mcp, logger }), metrics, logger });
  const address: AddressInfo = await listen(server, 0, '127.0.0.1', { host: 'H', port: 'P' });
  return {
    url: `http://127.0.0.1:${address.port}`,
    logs,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

test('routing and refusals before any body is read', async (t) => {
  const p = await proxy();
  t.after(p.close);
  const call = (path: string, method: 'GET' | 'POST' = 'GET') => request(p.url + path, { method });
  const notFound = await call('/v1/chat/completions', 'POST');
  assert.equal(notFound.statusCode, 404);
  assert.equal(notFound.headers['content-type'], 'application/json');
  assert.equal(((await notFound.body.json()) as { error: { code: string } }).error.code, 'not_found');

  const unknown = await call('/llm/mistral/v1/chat', 'POST');
  assert.equal(unknown.statusCode, 502);
  assert.match(((await unknown.body.json()) as { error: { message: string } }).error.message, /unknown LLM provider: mistral/);

  const ungoverned = await call('/llm/anthropic/v1/messages', 'POST');
  assert.equal(ungoverned.statusCode, 503);
  const body = (await ungoverned.body.json()) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error', 'anthropic-shaped envelope');
  assert.match(body.error.message, /^LLM governance not configured/);

  const traversal = await call('/llm/openai/%252e%252e/admin');
  assert.equal(traversal.statusCode, 400);
  assert.equal(((await traversal.body.json()) as { error: { code: string } }).error.code, 'path_traversal');
  // Routed on the raw path: an encoded prefix is neither route.
  const encoded = await call('/%6Clm/openai/v1/models');
  assert.equal(encoded.statusCode, 400);
  await encoded.body.dump();
  assert.equal(await (await call('/mcp/x')).body.text(), 'mcp');
  const codes = (await requestLines(p.logs, 6)).map((l) => [l.route, l.status, l.code]);
  assert.deepEqual(codes, [
    ['other', 404, 'not_found'],
    ['llm', 502, 'unknown_provider'],
    ['llm', 503, 'governance_not_configured'],
    ['llm', 400, 'path_traversal'],
    ['other', 400, 'bad_request_target'],
    ['mcp', 200, undefined],
  ]);
});

test('a route that fails unexpectedly answers 500 internal, or cuts a response already started; the log keeps only the message', async (t) => {
  const p = await proxy(async (x) => {
    if (x.req.url === '/mcp/started') {
      x.res.writeHead(200, { 'content-type': 'text/event-stream' });
      x.res.write('data: 1\n\n');
    }
    throw new Error('route bug');
  });
  t.after(p.close);
  const failed = await request(`${p.url}/mcp/x?secret=1`, { method: 'POST', body: 'prompt text' });
  assert.equal(failed.statusCode, 500);
  assert.deepEqual(await failed.body.json(), { error: { code: 'internal', message: 'internal error' } });
  const started = await request(`${p.url}/mcp/started`);
  assert.equal(started.statusCode, 200);
  await assert.rejects(started.body.text(), 'a stream the route cannot finish is cut, never ended as if complete');
  const errors = p.logs.lines.filter((l) => l.msg === 'unhandled error in request handler');
  assert.equal(errors.length, 2);
  assert.equal((errors[0]!.err as { message: string }).message, 'route bug');
  assert.ok(!p.logs.raw.some((l) => l.includes('prompt text') || l.includes('secret=1')));
  const lines = await requestLines(p.logs, 2);
  assert.deepEqual(lines.map((l) => [l.status, l.code]), [[500, 'internal'], [200, 'internal']]);
});

test('an LLM handler asked to evaluate answers remotely without a logger is refused when built, not silently skipped', () => {
  const config = loadConfig({});
  const metrics = createMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent', destination: new LogCapture() });
  const chain = createPolicyChain({ local: () => undefined, remote: () => undefined, inspector: createInspector({ workers: 1, offloadBytes: 65536, budgetMs: 1000, maxQueue: 1 }), failMode: 'closed', metrics, logger });
  const deps = { config, chain, dispatcher: createDispatcher({ connectTimeoutMs: 1000, headersTimeoutMs: 1000 }), metrics, budget: createBodyBudget({ bytes: 1 << 30, smallBytes: 65536 }), responseRemote: () => undefined };
  assert.throws(() => createLlmHandler(deps), /responseRemote needs a logger/);
  assert.equal(typeof createLlmHandler({ ...deps, logger }), 'function');
});
