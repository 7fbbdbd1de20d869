// Faults of the FirstOps gateway during remote policy evaluation, in both
// fail modes: `closed` forwards nothing, `open` forwards and counts every such
// pass as fail_open. Also the MCP hop to a dead or slow gateway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type FakeGateway, type HookReply } from '../helpers/gateway.ts';
import { makeIdentityDir, type TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { chatBody, closedPort, errorCode, send } from './lib.ts';

const POLICY_TIMEOUT_MS = 300;

const FAULTS: Array<{ name: string; down?: true; reply?: HookReply }> = [
  { name: 'gateway down (connection refused)', down: true },
  { name: 'gateway slower than FIRSTOPS_POLICY_TIMEOUT_MS', reply: { delayMs: POLICY_TIMEOUT_MS * 4, body: { decision: 'allow' } } },
  { name: 'gateway answers 500', reply: { status: 500, body: { error: 'boom' } } },
  { name: 'gateway answers 401', reply: { status: 401, body: { error: 'invalid_token' } } },
  { name: 'gateway answers garbage', reply: { raw: '<html>not json' } },
  { name: 'gateway answers an unknown decision', reply: { body: { decision: 'maybe' } } },
  { name: 'gateway answers modify with a broken payload', reply: { body: { decision: 'modify', modified_payload: '!!notbase64' } } },
  { name: 'gateway resets the connection', reply: { destroy: true } },
];

for (const failMode of ['closed', 'open'] as const) {
  describe(`gateway faults, FIRSTOPS_FAIL_MODE=${failMode}`, () => {
    let identity: TestIdentity;
    let gateway: FakeGateway;
    let upstream: FakeUpstream;
    let live: TestSidecar;
    let dead: TestSidecar;

    before(async () => {
      identity = await makeIdentityDir();
      gateway = await startGateway();
      gateway.trust(identity.jkt, identity.agentId);
      upstream = await startUpstream();
      const env = {
        FIRSTOPS_IDENTITY_DIR: identity.dir,
        FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
        FIRSTOPS_FAIL_MODE: failMode,
        FIRSTOPS_POLICY_TIMEOUT_MS: String(POLICY_TIMEOUT_MS),
        FIRSTOPS_RESPONSE_TIMEOUT_MS: '600',
        FIRSTOPS_CONNECT_TIMEOUT_MS: '500',
      };
      const secrets = [identity.privateKeyPem.split('\n')[1], `fo_agent_${identity.agentId}`];
      live = await startTestSidecar({ ...env, FIRSTOPS_GATEWAY_URL: gateway.baseUrl }, secrets);
      dead = await startTestSidecar({ ...env, FIRSTOPS_GATEWAY_URL: `http://127.0.0.1:${await closedPort()}` }, secrets);
    });

    after(async () => {
      await live.close();
      await dead.close();
      await gateway.close();
      await upstream.close();
      await identity.cleanup();
      assert.deepEqual(gateway.rejected, [], 'the fake gateway refused a proof');
    });

    test('a healthy gateway allows (baseline)', async () => {
      gateway.onHook(() => ({ body: { decision: 'allow' } }));
      const before = upstream.requests.length;
      const r = await send(live.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
      assert.equal(r.status, 200, r.body);
      assert.equal(upstream.requests.length, before + 1);
    });

    for (const fault of FAULTS) {
      test(fault.name, async () => {
        const sidecar = fault.down ? dead : live;
        if (fault.reply) {
          const reply = fault.reply;
          gateway.onHook(() => reply);
        }
        const forwardedBefore = upstream.requests.length;
        const failOpenBefore = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_open' });
        const failClosedBefore = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_closed' });
        const started = performance.now();
        const r = await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody('governed prompt') });
        const ms = performance.now() - started;
        assert.ok(ms < POLICY_TIMEOUT_MS + 1500, `answered after ${ms} ms`);
        const failOpen = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_open' });
        const failClosed = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_closed' });
        if (failMode === 'closed') {
          assert.equal(r.status, 503, r.body);
          assert.equal(errorCode(r), 'policy_unavailable');
          assert.equal(upstream.requests.length, forwardedBefore, 'a request reached the upstream in closed mode');
          assert.equal(failClosed, failClosedBefore + 1);
          assert.equal(failOpen, failOpenBefore);
        } else {
          assert.equal(r.status, 200, r.body);
          assert.equal(upstream.requests.length, forwardedBefore + 1);
          assert.equal(failOpen, failOpenBefore + 1, 'the pass was not counted as fail_open');
          assert.equal(failClosed, failClosedBefore);
          const line = sidecar.logs.requests().at(-1);
          assert.equal(line?.decision, 'fail_open');
        }
        // Never counted as an allow from the remote.
        gateway.onHook(() => ({ body: { decision: 'allow' } }));
        const next = await send(live.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
        assert.equal(next.status, 200, 'the next request after the fault was not served normally');
      });
    }

    test('MCP to a dead gateway: 502 gateway_unreachable', async () => {
      const r = await send(dead.url, { path: '/mcp/v1', body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(r.status, 502);
      assert.equal(errorCode(r), 'gateway_unreachable');
    });

    test('MCP to a gateway that never answers: 504 gateway_timeout within FIRSTOPS_RESPONSE_TIMEOUT_MS', async () => {
      let release: (() => void) | undefined;
      gateway.onMcp(async (_req, res) => {
        await new Promise<void>((resolve) => { release = resolve; });
        res.end();
      });
      const started = performance.now();
      const r = await send(live.url, { path: '/mcp/v1', body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      const ms = performance.now() - started;
      release?.();
      assert.equal(r.status, 504, r.body);
      assert.equal(errorCode(r), 'gateway_timeout');
      assert.ok(ms < 600 + 1500, `answered after ${ms} ms`);
    });
  });
}
