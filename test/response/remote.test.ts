// Response governance, remote (issue 22): FIRSTOPS_RESPONSE_REMOTE=on asks EvaluateHook with a
// post_tool_use event about each answer (JSON) and each streamed tool call, after the shipped
// example policy's local response rules. The fake gateway verifies every DPoP proof with jose.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startUpstream, sendJson, type FakeUpstream, streamEvents } from '../helpers/upstream.ts';
import { startTrustedGateway, type FakeGateway, type HookReply, type TrustedGateway } from '../helpers/gateway.ts';
import type { TestIdentity } from '../helpers/identity.ts';
import { rawPost } from '../helpers/raw.ts';
import { startTestSidecar, TEST_API_KEY, type TestSidecar } from '../helpers/sidecar.ts';
import { chatCompletionBody, chatToolStream, KEY, SAFE, WITH_KEY, type ToolSpec } from './streams.ts';

const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;
const SEND_MAIL: ToolSpec = { id: 'call_mail', name: 'send_email', args: { to: 'all@example.com', body: 'quarterly numbers' } };
const ASK = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'go' }] };
const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64');

let upstream: FakeUpstream;
let gateway: FakeGateway;
let identity: TestIdentity;
let trusted: TrustedGateway;
/** The answer to the next post_tool_use events; pre_tool_use events are always allowed. */
let onResponse: (event: Record<string, unknown>) => HookReply = () => ({ body: { decision: 'allow' } });
const responseEvents: Array<Record<string, unknown>> = [];

before(async () => {
  upstream = await startUpstream();
  trusted = await startTrustedGateway();
  ({ gateway, identity } = trusted);
  gateway.onHook((event) => {
    if (event.event_type !== 'post_tool_use') return { body: { decision: 'allow' } };
    responseEvents.push(event);
    return onResponse(event);
  });
});

after(async () => {
  await trusted.close();
  await upstream.close();
});

function start(env: Record<string, string>): Promise<TestSidecar> {
  return startTestSidecar({
    FIRSTOPS_IDENTITY_DIR: identity.dir,
    FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: POLICY,
    FIRSTOPS_POLICY_TIMEOUT_MS: '400',
    ...env,
  }, [identity.agentId, identity.privateKeyPem.split('\n')[1]]);
}

/** A streamed chat request on a raw socket: the bytes the client receives, de-chunked. */
function rawStream(sidecar: TestSidecar): Promise<string> {
  return rawPost(Number(new URL(sidecar.url).port), '/llm/openai/v1/chat/completions', JSON.stringify({ ...ASK, stream: true }), { Authorization: `Bearer ${TEST_API_KEY}` });
}

async function postJson(sidecar: TestSidecar): Promise<Response> {
  return fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` },
    body: JSON.stringify(ASK),
  });
}

test('off by default: the gateway sees the request event only', async () => {
  const sidecar = await start({});
  try {
    const before = gateway.hookRequests.length;
    upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody(null, [SAFE])));
    assert.equal((await postJson(sidecar)).status, 200);
    const events = gateway.hookRequests.slice(before).map((r) => JSON.parse(r.body.toString()).event_type);
    assert.deepEqual(events, ['pre_tool_use']);
  } finally {
    await sidecar.close();
  }
});

for (const mode of ['closed', 'open'] as const) {
  describe(`FIRSTOPS_RESPONSE_REMOTE=on, FIRSTOPS_FAIL_MODE=${mode}`, () => {
    let sidecar: TestSidecar;
    const openai = () => new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
    before(async () => {
      sidecar = await start({ FIRSTOPS_RESPONSE_REMOTE: 'on', FIRSTOPS_FAIL_MODE: mode });
    });
    after(() => sidecar.close([KEY]));

    test('JSON: the post_tool_use event carries the request as forwarded and the answer after the local rules', async () => {
      onResponse = () => ({ body: { decision: 'allow', policy_id: 'r-allow' } });
      const answer = chatCompletionBody(null, [WITH_KEY]);
      upstream.handle((_req, res) => sendJson(res, 200, answer));
      const seen = responseEvents.length;
      const res = await postJson(sidecar);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { choices: Array<{ message: { tool_calls: Array<{ function: { arguments: string } }> } }> };
      assert.match(body.choices[0]!.message.tool_calls[0]!.function.arguments, /\[redacted-key\]/, 'the local redaction stands under a remote allow');
      assert.equal(responseEvents.length, seen + 1, 'one gateway call for the answer');
      const event = responseEvents.at(-1)!;
      assert.deepEqual(Object.keys(event), ['event_type', 'agent', 'tool_name', 'tool_input', 'tool_output', 'channel', 'producer_can_apply_modify'], 'the SDK wire order');
      assert.equal(event.event_type, 'post_tool_use');
      assert.equal(event.agent, 'firstops-sdk');
      assert.equal(event.tool_name, 'openai.v1.chat.completions');
      assert.equal(event.channel, 'llm');
      assert.deepEqual(event.tool_input, ASK);
      const output = event.tool_output as { choices: Array<{ message: { tool_calls: Array<{ function: { name: string; arguments: string } }> } }> };
      assert.equal(output.choices[0]!.message.tool_calls[0]!.function.name, WITH_KEY.name);
      assert.ok(!JSON.stringify(output).includes(KEY), 'the gateway sees the locally redacted answer');
      const line = sidecar.logs.requests().at(-1)!;
      assert.equal(line.response_decision, 'allow');
      assert.equal(line.response_policy_id, 'r-allow');
      assert.equal(line.response_source, 'remote');
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'remote', outcome: 'allow', phase: 'response' }), 1);
    });

    test('JSON: modify replaces the answer (correct Content-Length); deny is the provider-shaped 403', async () => {
      const replacement = chatCompletionBody('the gateway rewrote this answer', []);
      onResponse = () => ({ body: { decision: 'modify', policy_id: 'r-mod', modified_payload: b64(replacement) } });
      upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody(null, [SEND_MAIL])));
      const res = await postJson(sidecar);
      const text = await res.text();
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(text)));
      assert.deepEqual(JSON.parse(text), replacement);

      onResponse = () => ({ body: { decision: 'deny', policy_id: 'r-deny', reason: 'no mass mail' } });
      await assert.rejects(openai().chat.completions.create(ASK), (err: Error) => {
        assert.ok(err instanceof OpenAI.PermissionDeniedError, String(err));
        assert.match(err.message, /blocked by FirstOps policy: no mass mail/);
        return true;
      });
      const line = sidecar.logs.requests().at(-1)!;
      assert.equal(line.status, 403);
      assert.deepEqual([line.response_decision, line.response_policy_id, line.response_source], ['deny', 'r-deny', 'remote']);
    });

    test('stream: each complete tool call is asked about with the message assembled so far; deny raises in the SDK, the name never reaches the socket', async () => {
      onResponse = (event) => {
        const output = event.tool_output as { evaluating: string; tool_calls: Array<{ key: string; name: string }> };
        const call = output.tool_calls.find((c) => c.key === output.evaluating)!;
        return { body: call.name === 'send_email' ? { decision: 'deny', policy_id: 'r-mail', reason: 'no mass mail' } : { decision: 'allow' } };
      };
      const events = chatToolStream('Sending it now.', [SAFE, SEND_MAIL]);
      streamEvents(upstream, events);
      const seen = responseEvents.length;
      const raw = await rawStream(sidecar);
      assert.ok(raw.includes(SAFE.name), 'the allowed call passed');
      assert.ok(!raw.includes('send_email') && !raw.includes('all@example.com'), 'the denied call did not');
      assert.match(raw, /^data: \{"error":\{.*blocked by FirstOps policy: no mass mail/m);
      const asked = responseEvents.slice(seen);
      assert.equal(asked.length, 2, 'one gateway call per tool call');
      const output = asked[1]!.tool_output as Record<string, any>;
      assert.equal(output.object, 'firstops.stream_message');
      assert.equal(output.family, 'openai');
      assert.equal(output.text.map((t: { text: string }) => t.text).join(''), 'Sending it now.');
      assert.deepEqual(output.tool_calls.map((c: { name: string }) => c.name), ['get_weather', 'send_email']);
      assert.deepEqual(output.tool_calls[1].arguments, SEND_MAIL.args);
      assert.equal(asked[1]!.event_type, 'post_tool_use');
      assert.deepEqual(asked[1]!.tool_input, { ...ASK, stream: true });

      streamEvents(upstream, events);
      const stream = await openai().chat.completions.create({ ...ASK, stream: true });
      await assert.rejects(async () => {
        for await (const _chunk of stream) { /* read to the error event */ }
      }, (err: Error) => err instanceof OpenAI.APIError && /no mass mail/.test(err.message));
      const line = sidecar.logs.requests().at(-1)!;
      assert.deepEqual([line.response_decision, line.response_policy_id, line.response_source, line.code], ['deny', 'r-mail', 'remote', 'policy_denied']);
      assert.ok(await sidecar.metricValue('firstops_response_hold_seconds', { kind: 'tool_call', outcome: 'deny' }) >= 2);
    });

    test('stream: a modify answer carries the call\'s new arguments, re-emitted in the provider\'s own events', async () => {
      onResponse = () => ({ body: { decision: 'modify', policy_id: 'r-args', modified_payload: b64({ to: 'me@example.com', body: 'draft' }) } });
      streamEvents(upstream, chatToolStream('', [SEND_MAIL]));
      const stream = await openai().chat.completions.create({ ...ASK, stream: true });
      let args = '';
      let name = '';
      for await (const chunk of stream) {
        for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) {
          name += call.function?.name ?? '';
          args += call.function?.arguments ?? '';
        }
      }
      assert.equal(name, 'send_email');
      assert.deepEqual(JSON.parse(args), { to: 'me@example.com', body: 'draft' });
      const line = sidecar.logs.requests().at(-1)!;
      assert.deepEqual([line.response_decision, line.response_policy_id, line.response_source], ['modify', 'r-args', 'remote']);
    });

    test(`a gateway failure: ${mode === 'closed' ? 'refused (503 policy_unavailable; the stream ends with the error event)' : 'passed as the local rules left it, counted fail_open'}`, async () => {
      onResponse = () => ({ status: 500, body: { error: 'boom' } });
      const counter = { source: 'remote', outcome: mode === 'closed' ? 'fail_closed' : 'fail_open', phase: 'response' };
      const before = await sidecar.metricValue('firstops_policy_decisions_total', counter);

      upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody(null, [SEND_MAIL])));
      const res = await postJson(sidecar);
      const json = (await res.json()) as Record<string, any>;
      if (mode === 'closed') {
        assert.equal(res.status, 503);
        assert.equal(json.error.code, 'policy_unavailable');
      } else {
        assert.equal(res.status, 200);
        assert.equal(json.choices[0].message.tool_calls[0].function.name, 'send_email');
      }

      streamEvents(upstream, chatToolStream('Hi.', [SEND_MAIL]));
      const raw = await rawStream(sidecar);
      if (mode === 'closed') {
        assert.ok(!raw.includes('send_email'), 'nothing held passes');
        assert.match(raw, /"code":"policy_unavailable"/);
      } else {
        assert.ok(raw.includes('send_email'));
        assert.ok(raw.includes('[DONE]'));
      }
      assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', counter), before + 2);
      assert.ok(sidecar.logs.lines.some((l) => l.phase === 'response' && l.code === 'policy_unavailable'), 'a warn line says why');
    });
  });
}
