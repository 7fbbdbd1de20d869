import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createPolicyChain } from '../../src/policy/chain.ts';
import { createInspector } from '../../src/policy/pool.ts';
import { createLlmHandler } from '../../src/routes/llm.ts';
import { createBodyBudget } from '../../src/memory/budget.ts';
import { createProxyApp } from '../../src/routes/proxy.ts';
import { createDispatcher } from '../../src/egress/upstream.ts';
import { LogCapture } from '../helpers/logs.ts';

/** The proxy app without a socket: everything decided before a body is read or a hop is made. */
function app() {
  const config = loadConfig({});
  const metrics = createMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent', destination: new LogCapture() });
  const chain = createPolicyChain({ local: () => undefined, remote: () => undefined, inspector: createInspector({ workers: 1, offloadBytes: 65536, budgetMs: 1000, maxQueue: 1 }), failMode: 'closed', metrics, logger });
  const llm = createLlmHandler({ config, chain, dispatcher: createDispatcher({ connectTimeoutMs: 1000, headersTimeoutMs: 1000 }), metrics, budget: createBodyBudget({ bytes: 1 << 30, smallBytes: 65536 }) });
  const mcp = async (): Promise<Response> => new Response('mcp');
  return createProxyApp({ llm, mcp, logger });
}

test('routing and refusals before any body is read', async () => {
  const proxy = app();
  const notFound = await proxy.request('/v1/chat/completions', { method: 'POST' });
  assert.equal(notFound.status, 404);
  assert.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'not_found');

  const unknown = await proxy.request('/llm/mistral/v1/chat', { method: 'POST' });
  assert.equal(unknown.status, 502);
  assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /unknown LLM provider: mistral/);

  const ungoverned = await proxy.request('/llm/anthropic/v1/messages', { method: 'POST' });
  assert.equal(ungoverned.status, 503);
  const body = (await ungoverned.json()) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error', 'anthropic-shaped envelope');
  assert.match(body.error.message, /^LLM governance not configured/);

  const traversal = await proxy.request('/llm/openai/%252e%252e/admin');
  assert.equal(traversal.status, 400);
  assert.equal(((await traversal.json()) as { error: { code: string } }).error.code, 'path_traversal');
  assert.equal(await (await proxy.request('/mcp/x')).text(), 'mcp');
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
