import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { startTrustedGateway, type FakeGateway, type HookReply, type TrustedGateway } from '../helpers/gateway.ts';
import type { TestIdentity } from '../helpers/identity.ts';
import { startTestSidecar, TEST_API_KEY, type TestSidecar } from '../helpers/sidecar.ts';

const POLICY = `
rules:
  - id: local-deny
    match: { input: { model: local-deny } }
    decision: deny
    reason: denied locally
  - id: local-scrub
    match: { channel: llm }
    decision: modify
    redact: [{ pattern: "secret@example\\\\.com", replacement: "[email]" }]
`;

/** 2 MiB of every byte value: a payload that is no JSON, no UTF-8, and large. */
const BINARY = Buffer.from(Array.from({ length: 2 * 1024 * 1024 }, (_, i) => (i * 7919 + (i >> 11)) % 256));

/** The model name scripts the gateway's answer. */
const SCRIPT: Record<string, HookReply> = {
  allow: { body: { decision: 'allow', policy_id: 'p-allow' } },
  deny: { body: { decision: 'deny', reason: 'remote says no', policy_id: 'p-deny' } },
  ask: { body: { decision: 'ask', reason: 'needs a human', policy_id: 'p-ask' } },
  modify: { body: { decision: 'modify', policy_id: 'p-mod', modified_payload: Buffer.from('{"model":"rewritten","messages":[]}').toString('base64') } },
  'null-decision': { body: { decision: null, policy_id: 'p-null' } },
  'empty-decision': { body: { decision: '', policy_id: 'p-empty' } },
  'modify-text': { body: { decision: 'modify', policy_id: 'p-text', modified_payload: Buffer.from('not json at all').toString('base64') } },
  'modify-binary': { body: { decision: 'modify', policy_id: 'p-bin', modified_payload: BINARY.toString('base64') } },
  'fail-500': { status: 500, body: { error: 'boom' } },
  'fail-401': { status: 401, body: { error: 'invalid_token' } },
  'fail-timeout': { delayMs: 1500, body: { decision: 'allow' } },
  'fail-nonjson': { raw: '<html>bad gateway</html>' },
  'fail-unknown': { body: { decision: 'escalate' } },
  'fail-b64': { body: { decision: 'modify', modified_payload: '***not base64***' } },
  'fail-nopayload': { body: { decision: 'modify', reason: 'x' } },
  'fail-reset': { destroy: true },
};
const FAILURES = Object.keys(SCRIPT).filter((k) => k.startsWith('fail-'));

let upstream: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let trusted: TrustedGateway;
let policyFile: string;

async function post(sidecar: TestSidecar, body: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

before(async () => {
  upstream = await startUpstream();
  trusted = await startTrustedGateway({ prefix: '/gw', format: 'sec1' });
  ({ gateway, identity } = trusted);
  gateway.onHook((event) => SCRIPT[(event.tool_input as { model: string }).model] ?? { body: { decision: 'allow' } });
  const dir = await mkdtemp(join(tmpdir(), 'fo-policy-'));
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
});

after(async () => {
  await trusted.close();
  await upstream.close();
});

for (const mode of ['closed', 'open'] as const) {
  describe(`FIRSTOPS_FAIL_MODE=${mode}`, () => {
    let sidecar: TestSidecar;
    before(async () => {
      sidecar = await startTestSidecar({
        FIRSTOPS_IDENTITY_DIR: identity.dir,
        FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
        FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
        FIRSTOPS_POLICY_FILE: policyFile,
        FIRSTOPS_FAIL_MODE: mode,
        FIRSTOPS_POLICY_TIMEOUT_MS: '400',
      }, [identity.agentId, identity.privateKeyPem.split('\n')[1]]);
    });
    after(() => sidecar.close());

    test('allow: the event goes out in the SDK wire form with a verified proof, then forwards', async () => {
      const proofsBefore = gateway.proofs.length;
      const { status } = await post(sidecar, { model: 'allow', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(status, 200);
      const event = JSON.parse(gateway.hookRequests.at(-1)!.body.toString());
      assert.deepEqual(event, {
        event_type: 'pre_tool_use',
        agent: 'firstops-sdk',
        tool_name: 'openai.v1.chat.completions',
        channel: 'llm',
        tool_input: { model: 'allow', messages: [{ role: 'user', content: 'hi' }] },
        producer_can_apply_modify: true,
      });
      const proof = gateway.proofs.at(-1)!;
      assert.equal(gateway.proofs.length, proofsBefore + 1);
      assert.equal(proof.htu, `${gateway.baseUrl}/api/v1/daemon/evaluate-hook`);
      assert.equal(proof.jkt, identity.jkt);
      assert.equal(sidecar.logs.requests().at(-1)!.policy_id, 'p-allow');
    });

    test('deny and ask answer 403 and nothing reaches the upstream', async () => {
      const before = upstream.requests.length;
      const deny = await post(sidecar, { model: 'deny' });
      assert.equal(deny.status, 403);
      assert.equal(deny.json.error.message, 'blocked by FirstOps policy: remote says no');
      assert.equal(deny.json.error.policy_id, 'p-deny');
      const ask = await post(sidecar, { model: 'ask' });
      assert.equal(ask.status, 403);
      assert.match(ask.json.error.message, /approval required.*needs a human/);
      assert.equal(upstream.requests.length, before);
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'ask' }), 1);
    });

    test('modify forwards the decoded modified_payload', async () => {
      await post(sidecar, { model: 'modify', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(upstream.requests.at(-1)!.body.toString(), '{"model":"rewritten","messages":[]}');
      assert.equal(upstream.requests.at(-1)!.headers['content-length'], '35');
    });

    test('a null or empty decision is a clean allow, as in the SDK', async () => {
      for (const model of ['null-decision', 'empty-decision']) {
        const before = upstream.requests.length;
        const { status } = await post(sidecar, { model, messages: [] });
        assert.equal(status, 200, model);
        assert.equal(upstream.requests.length, before + 1);
        assert.equal(sidecar.logs.requests().at(-1)!.decision, 'allow');
      }
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_open' }), 0);
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'fail_closed' }), 0);
    });

    test('a modify payload is forwarded byte-exact whatever it holds, with a true Content-Length and the client\'s Content-Type', async () => {
      for (const [model, bytes] of [['modify-text', Buffer.from('not json at all')], ['modify-binary', BINARY]] as const) {
        const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${TEST_API_KEY}` },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'mail secret@example.com' }] }),
        });
        assert.equal(res.status, 200, model);
        await res.arrayBuffer();
        const seen = upstream.requests.at(-1)!;
        assert.ok(seen.body.equals(bytes), `${model}: the gateway's bytes, not the original`);
        assert.equal(seen.headers['content-length'], String(bytes.length));
        assert.equal(seen.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(sidecar.logs.requests().at(-1)!.decision, 'modify');
        assert.ok(!seen.body.includes('secret@example.com'));
      }
    });

    test('a local deny stops the chain; a local redaction is what the gateway sees', async () => {
      const hooks = gateway.hookRequests.length;
      assert.equal((await post(sidecar, { model: 'local-deny' })).status, 403);
      assert.equal(gateway.hookRequests.length, hooks, 'the gateway was not asked');
      await post(sidecar, { model: 'allow', messages: [{ role: 'user', content: 'mail secret@example.com' }] });
      const event = JSON.parse(gateway.hookRequests.at(-1)!.body.toString());
      assert.equal(event.tool_input.messages[0].content, 'mail [email]');
      assert.equal(JSON.parse(upstream.requests.at(-1)!.body.toString()).messages[0].content, 'mail [email]');
    });

    for (const failure of FAILURES) {
      test(`${failure}: ${mode === 'closed' ? '503 and nothing forwarded' : 'forwarded and counted as fail_open'}`, async () => {
        const before = upstream.requests.length;
        const counted = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: mode === 'closed' ? 'fail_closed' : 'fail_open' });
        const { status, json } = await post(sidecar, { model: failure });
        if (mode === 'closed') {
          assert.equal(status, 503);
          assert.equal(json.error.code, 'policy_unavailable');
          assert.equal(upstream.requests.length, before);
        } else {
          assert.equal(status, 200);
          assert.equal(upstream.requests.length, before + 1);
          assert.equal(JSON.parse(upstream.requests.at(-1)!.body.toString()).model, failure);
          const warn = sidecar.logs.lines.filter((l) => l.level === 'warn' && String(l.msg).includes('FIRSTOPS_FAIL_MODE=open')).at(-1);
          assert.ok(warn, 'fail-open is logged');
        }
        assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: mode === 'closed' ? 'fail_closed' : 'fail_open' }), counted + 1);
        assert.equal(sidecar.logs.requests().at(-1)!.decision, mode === 'closed' ? 'fail_closed' : 'fail_open');
      });
    }
  });
}

test('gateway down: closed refuses, never forwards', async () => {
  const sidecar = await startTestSidecar({
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: 'http://127.0.0.1:1',
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_TIMEOUT_MS: '2000',
  });
  const before = upstream.requests.length;
  const { status, json } = await post(sidecar, { model: 'allow' });
  assert.equal(status, 503);
  assert.match(json.error.message, /gateway unreachable/);
  assert.equal(upstream.requests.length, before);
  await sidecar.close();
});

test('DPoP nonce: one retry on use_dpop_nonce, then the nonce is reused', async () => {
  const sidecar = await startTestSidecar({
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
  });
  gateway.requireNonce('nonce-1');
  try {
    assert.equal((await post(sidecar, { model: 'allow' })).status, 200);
    assert.equal(gateway.proofs.at(-1)!.nonce, 'nonce-1');
    assert.equal(await sidecar.metricValue('firstops_dpop_nonce_retries_total'), 1);
    assert.equal((await post(sidecar, { model: 'allow' })).status, 200);
    assert.equal(await sidecar.metricValue('firstops_dpop_nonce_retries_total'), 1, 'the second request carried the nonce already');
  } finally {
    gateway.requireNonce(undefined);
    await sidecar.close();
  }
});

test('no policy source at all: 503 LLM governance not configured', async () => {
  const sidecar = await startTestSidecar({ FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  const { status, json } = await post(sidecar, { model: 'x' });
  assert.equal(status, 503);
  assert.match(json.error.message, /^LLM governance not configured/);
  await sidecar.close();
});
