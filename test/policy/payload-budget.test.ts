// A gateway rewrite that does not fit the in-flight memory budget: the gateway
// decided modify and the sidecar cannot hold its payload now. No fail mode may
// forward the original instead: the client gets 503 body_budget_exhausted with
// Retry-After, as for a body that does not fit, and nothing reaches the upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, sendJson, chatCompletion, type FakeUpstream } from '../helpers/upstream.ts';
import { startTrustedGateway, type FakeGateway, type TrustedGateway } from '../helpers/gateway.ts';
import type { TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar } from '../helpers/sidecar.ts';

const KIB = 1024;
let upstream: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let trusted: TrustedGateway;
let forwarded = 0;

before(async () => {
  upstream = await startUpstream((_req, res) => {
    forwarded++;
    sendJson(res, 200, chatCompletion());
  });
  trusted = await startTrustedGateway();
  ({ gateway, identity } = trusted);
  // The rewrite is larger than what the budget has left once the body holds its share.
  const rewrite = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'y'.repeat(900 * KIB) }] }));
  gateway.onHook(() => ({ body: { decision: 'modify', policy_id: 'pol_rewrite', modified_payload: rewrite.toString('base64') } }));
});

after(async () => {
  await trusted.close();
  await upstream.close();
});

for (const mode of ['closed', 'open'] as const) {
  test(`FIRSTOPS_FAIL_MODE=${mode}: a modify payload over the budget is a 503 body_budget_exhausted with Retry-After; the original is not forwarded`, async () => {
    const sidecar = await startTestSidecar({
      FIRSTOPS_IDENTITY_DIR: identity.dir,
      FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_FAIL_MODE: mode,
      FIRSTOPS_MEMORY_BUDGET_BYTES: String(1024 * KIB),
      FIRSTOPS_MAX_BODY_BYTES: String(2048 * KIB),
    }, [identity.agentId, identity.privateKeyPem.split('\n')[1]]);
    try {
      const before = forwarded;
      const refusals = await sidecar.metricValue('firstops_memory_budget_refusals_total', { route: 'llm' });
      const asked = gateway.hookRequests.length;
      const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(300 * KIB) }] }),
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'body_budget_exhausted');
      assert.equal(gateway.hookRequests.length, asked + 1, 'the gateway was asked and answered modify');
      assert.equal(forwarded, before, 'neither the original nor the rewrite reached the upstream');
      assert.equal(await sidecar.metricValue('firstops_memory_budget_refusals_total', { route: 'llm' }), refusals + 1);
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { outcome: 'fail_open' }), 0, 'not a fail-open pass');
      const line = sidecar.logs.lines.find((l) => l.code === 'body_budget_exhausted' && l.source === 'remote');
      assert.ok(line, 'a warning names the code and the source');
    } finally {
      await sidecar.close();
    }
  });
}
