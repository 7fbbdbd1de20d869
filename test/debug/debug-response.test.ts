import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.ts';
import { createDebugListener, type DebugListener } from '../../src/debug/listener.ts';
import { createLogger } from '../../src/log.ts';
import type { PolicyChain } from '../../src/policy/chain.ts';
import { LogCapture } from '../helpers/logs.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { STREAM_CASES } from '../response/cases.ts';
import { KEY, SAFE, SHELL_RM, WITH_KEY, anthropicBody, chatCompletionBody, chatToolStream } from '../response/streams.ts';
import { readFile } from 'node:fs/promises';
import { dryRunResponse } from '../../src/debug/response-dry-run.ts';
import { compilePolicy } from '../../src/policy/local.ts';
import { MAX_GOVERNED_RESPONSE_BYTES } from '../../src/response/index.ts';

// The shipped policy: its response rules deny `rm -rf` in a shell-like tool and redact API keys in arguments.
const EXAMPLE_POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;
const CHAT = '/llm/openai/v1/chat/completions';
const MESSAGES = '/llm/anthropic/v1/messages';
/** Argument values of the denied call, which no answer may carry. */
const DENIED_VALUES = ['rm -rf', '/var/lib/app'];
/** The body cap the dry run's envelope bound derives from (the proxy's cap plus 64 KiB). */
const MAX_BODY_BYTES = 256 * 1024;

let sidecar: TestSidecar;

async function evaluate(input: unknown, base = sidecar.debugUrl): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(`${base}/debug/evaluate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof input === 'string' ? input : JSON.stringify(input) });
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), text };
}

before(async () => {
  sidecar = await startTestSidecar({
    FIRSTOPS_UPSTREAM_OPENAI: 'http://127.0.0.1:9',
    FIRSTOPS_UPSTREAM_ANTHROPIC: 'http://127.0.0.1:9',
    FIRSTOPS_POLICY_FILE: EXAMPLE_POLICY,
    FIRSTOPS_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
  });
});

after(async () => {
  await sidecar.close([KEY]);
});

test('response dry run: an allowed tool call, JSON and streamed, names only in the answer', async () => {
  const json = await evaluate({ path: CHAT, response: chatCompletionBody(null, [SAFE]) });
  assert.equal(json.status, 200);
  assert.deepEqual(json.json, {
    phase: 'response', tool_name: 'openai.v1.chat.completions', decision: 'allow', policy_id: null, reason: null, source: null,
    tool_calls: [{ id: SAFE.id, name: SAFE.name }],
  });

  const stream = await evaluate({ path: CHAT, response_stream: chatToolStream('Looking it up.', [SAFE]).join('') });
  assert.equal(stream.status, 200);
  assert.deepEqual(stream.json, {
    phase: 'response', tool_name: 'openai.v1.chat.completions', decision: 'allow', policy_id: null, reason: null, source: null,
    tool_calls: [{ id: SAFE.id, name: SAFE.name }],
  });
  assert.ok(!stream.text.includes('Paris'), 'an allowed call\'s arguments are not echoed');
});

test('response dry run: run_shell with rm -rf is denied by the example rule; no argument value in the answer', async () => {
  const json = await evaluate({ path: MESSAGES, response: anthropicBody('I will clean up.', [SHELL_RM]) });
  assert.equal(json.status, 200);
  assert.equal(json.json.phase, 'response');
  assert.equal(json.json.tool_name, 'anthropic.v1.messages');
  assert.equal(json.json.decision, 'deny');
  assert.equal(json.json.policy_id, 'no-destructive-shell');
  assert.equal(json.json.reason, 'destructive shell command in a tool call');
  assert.equal(json.json.source, 'local');
  assert.deepEqual(json.json.tool_calls, [{ id: SHELL_RM.id, name: 'run_shell' }]);
  assert.equal(json.json.status, 403);
  assert.equal(json.json.error_body.type, 'error', 'the Anthropic error envelope the SDK raises on');
  assert.match(json.json.error_body.error.message, /destructive shell command/);

  for (const c of STREAM_CASES) {
    const path = c.provider === 'openai' ? CHAT : c.provider === 'anthropic' ? MESSAGES : undefined;
    if (!path) continue;
    const res = await evaluate({ path, response_stream: c.build('Cleaning up now.', [SAFE, SHELL_RM]).join('') });
    assert.equal(res.status, 200, c.name);
    assert.equal(res.json.decision, 'deny', c.name);
    assert.equal(res.json.policy_id, 'no-destructive-shell', c.name);
    assert.equal(res.json.error_event, c.denyEvent, `${c.name}: the error event the client would get`);
    assert.deepEqual(res.json.tool_calls.map((t: any) => t.name), ['get_weather', 'run_shell'], c.name);
    assert.equal(res.json.events, undefined, `${c.name}: what passed before the deny is not repeated`);
    for (const value of [...DENIED_VALUES, 'Paris']) assert.ok(!res.text.includes(value), `${c.name}: ${value} in the answer`);
  }
  for (const value of DENIED_VALUES) assert.ok(!json.text.includes(value), `${value} in the JSON answer`);
});

test('response dry run: an API key in tool-call arguments is redacted, JSON and streamed', async () => {
  const json = await evaluate({ path: CHAT, response: chatCompletionBody('Calling the API.', [WITH_KEY]) });
  assert.equal(json.status, 200);
  assert.equal(json.json.decision, 'modify');
  assert.equal(json.json.policy_id, 'redact-keys-in-tool-calls');
  assert.equal(json.json.source, 'local');
  assert.deepEqual(json.json.tool_calls, [{ id: WITH_KEY.id, name: WITH_KEY.name }]);
  const args = JSON.parse(json.json.body.choices[0].message.tool_calls[0].function.arguments);
  assert.equal(args.headers.authorization, 'Bearer [redacted-key]');
  assert.equal(args.note, WITH_KEY.args.note, 'the rest of the arguments as they were');
  assert.ok(!json.text.includes(KEY));

  const stream = await evaluate({ path: MESSAGES, response_stream: STREAM_CASES.find((c) => c.provider === 'anthropic')!.build('Calling.', [WITH_KEY]).join('') });
  assert.equal(stream.status, 200);
  assert.equal(stream.json.decision, 'modify');
  assert.equal(stream.json.policy_id, 'redact-keys-in-tool-calls');
  assert.equal(typeof stream.json.events, 'string');
  assert.match(stream.json.events, /^event: message_start\n/);
  assert.ok(stream.json.events.includes('[redacted-key]'));
  assert.ok(!stream.text.includes(KEY), 'the key is in neither the events nor the rest of the answer');
});

test('response dry run: a stream that ends inside a tool call is an error, as the route would end it', async () => {
  const events = chatToolStream('', [SHELL_RM]);
  const cut = events.slice(0, events.findIndex((e) => e.includes('finish_reason":"tool_calls')));
  const res = await evaluate({ path: CHAT, response_stream: cut.slice(0, -2).join('') });
  assert.equal(res.status, 200);
  assert.equal(res.json.decision, 'error');
  assert.equal(res.json.code, 'response_tool_call_incomplete');
  assert.match(res.json.error_event, /^data: \{"error":\{.*"code":"response_tool_call_incomplete"/);
  for (const value of DENIED_VALUES) assert.ok(!res.text.includes(value));
});

test('response dry run: bad input is debug_invalid_input with a reason', async () => {
  const response = chatCompletionBody('hi', []);
  const bad: Array<[unknown, RegExp]> = [
    [{ path: CHAT, body: { model: 'gpt-4o' }, response }, /not both/],
    [{ path: CHAT, body: { model: 'gpt-4o' }, response_stream: '' }, /not both/],
    [{ path: CHAT, response, response_stream: 'data: {}\n\n' }, /not both/],
    [{ path: CHAT, response, remote: true }, /local-only/],
    [{ path: CHAT, response_stream: 'data: {}\n\n', remote: true }, /local-only/],
    [{ path: CHAT, response: [response] }, /response must be a JSON object/],
    [{ path: CHAT, response: 'text' }, /response must be a JSON object/],
    [{ path: CHAT, response: null }, /response must be a JSON object/],
    [{ path: CHAT, response_stream: { data: 1 } }, /response_stream must be a string/],
    [{ path: '/llm/mistral/v1/chat', response }, /no upstream/],
    [{ response }, /path must be/],
  ];
  for (const [input, why] of bad) {
    const res = await evaluate(input);
    assert.equal(res.status, 400, JSON.stringify(input).slice(0, 80));
    assert.equal(res.json.error.code, 'debug_invalid_input');
    assert.match(res.json.error.message, why, JSON.stringify(input).slice(0, 80));
  }
  const ok = await evaluate({ path: CHAT, response, remote: false });
  assert.equal(ok.json.decision, 'allow', 'remote: false is accepted in response mode');
});

test('response dry run: bounded like the request dry run', async () => {
  const envelope = (size: number): string => `{"path":"${CHAT}","response_stream":"${'x'.repeat(size)}"}`;
  const res = await evaluate(envelope(MAX_BODY_BYTES + 64 * 1024));
  assert.equal(res.status, 413);
  assert.equal(res.json.error.code, 'body_too_large');
  const fits = await evaluate(envelope(MAX_BODY_BYTES));
  assert.equal(fits.status, 200, 'a stream as large as the proxy\'s cap fits');
  assert.equal(fits.json.decision, 'allow');
});

test('response dry runs count in firstops_policy_decisions_total, phase response', async () => {
  // Its own listener over the sidecar's policy and metrics, as server.ts builds it when it passes `metrics`.
  const config = loadConfig({ FIRSTOPS_UPSTREAM_OPENAI: 'http://127.0.0.1:9', FIRSTOPS_DEBUG_PORT: '0', FIRSTOPS_PORT: '0', FIRSTOPS_ADMIN_PORT: '0' });
  const chain: PolicyChain = { configured: () => false, evaluate: () => Promise.reject(new Error('request dry runs are not part of this test')) };
  const listener: DebugListener = createDebugListener({
    config, chain, identity: sidecar.sidecar.identity, policy: sidecar.sidecar.policy,
    logger: createLogger({ level: 'warn', destination: new LogCapture() }), metrics: sidecar.sidecar.metrics,
  });
  await new Promise<void>((resolve) => listener.server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(listener.server.address() as AddressInfo).port}`;
  try {
    const count = (outcome: string): Promise<number> => sidecar.metricValue('firstops_policy_decisions_total', { source: 'local', phase: 'response', outcome });
    const [deny, modify, allow] = [await count('deny'), await count('modify'), await count('allow')];
    assert.equal((await evaluate({ path: CHAT, response: chatCompletionBody(null, [SHELL_RM]) }, base)).json.decision, 'deny');
    assert.equal((await evaluate({ path: CHAT, response_stream: chatToolStream('', [WITH_KEY]).join('') }, base)).json.decision, 'modify');
    assert.equal((await evaluate({ path: CHAT, response: chatCompletionBody('hi', []) }, base)).json.decision, 'allow');
    assert.equal((await evaluate({ path: CHAT, response: chatCompletionBody('hi', []), remote: true }, base)).status, 400);
    assert.deepEqual([await count('deny'), await count('modify'), await count('allow')], [deny + 1, modify + 1, allow + 1]);
  } finally {
    await listener.close();
  }
});

test('/debug/config lists the response rules in order beside the request rules', async () => {
  const res = await fetch(`${sidecar.debugUrl}/debug/config`, { headers: { host: new URL(sidecar.debugUrl).host } });
  assert.equal(res.status, 200);
  const json = (await res.json()) as { policy: { response_rule_ids: string[] }; response_remote: string };
  assert.deepEqual(json.policy.response_rule_ids, ['no-destructive-shell', 'redact-keys-in-tool-calls']);
  assert.equal(json.response_remote, 'off');
});

test('response dry run: a JSON answer over the 8 MiB the route reads is an error, response_too_large, as the route answers', async () => {
  const rules = compilePolicy(await readFile(EXAMPLE_POLICY, 'utf8'), EXAMPLE_POLICY).responses;
  const content = 'x'.repeat(MAX_GOVERNED_RESPONSE_BYTES);
  const answer = await dryRunResponse({
    provider: 'openai', toolName: 'openai.v1.chat.completions', rules, metrics: undefined,
    input: { kind: 'json', response: { id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content } }] } },
  });
  assert.equal(answer.decision, 'error');
  assert.equal(answer.code, 'response_too_large');
  const fits = await dryRunResponse({
    provider: 'openai', toolName: 'openai.v1.chat.completions', rules, metrics: undefined,
    input: { kind: 'json', response: { id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(1024) } }] } },
  });
  assert.equal(fits.decision, 'allow');
});
