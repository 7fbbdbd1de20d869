// Response governance through the running sidecar (issue 22): the shipped examples/policy.yaml's response
// rules, the official OpenAI SDK, a fake upstream that answers with tool calls (streamed and not).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBrotliCompress, createGzip, gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { startUpstream, chatCompletion, sendJson, type FakeUpstream, streamEvents } from '../helpers/upstream.ts';
import { rawPost, rawRequest } from '../helpers/raw.ts';
import { startTestSidecar, TEST_API_KEY, type TestSidecar } from '../helpers/sidecar.ts';
import { chatCompletionBody, chatToolStream, KEY, SAFE, SHELL_LS, WITH_KEY, type ToolSpec } from '../response/streams.ts';

const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;
const SHELL_RM_ROOT: ToolSpec = { id: 'call_rm', name: 'run_shell', args: { command: 'rm -rf /', cwd: '/' } };
const TOOLS = [
  { type: 'function' as const, function: { name: 'run_shell', parameters: { type: 'object' } } },
  { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object' } } },
];
const ASK = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'go' }], tools: TOOLS };

let upstream: FakeUpstream;
let sidecar: TestSidecar;

before(async () => {
  upstream = await startUpstream();
  sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: POLICY, FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
});

after(async () => {
  await sidecar.close([KEY]);
  await upstream.close();
});

const openai = () => new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });

/** The body the sidecar puts on a client's socket for a streamed chat request (no SDK in between), de-chunked. */
function rawAnswer(): Promise<string> {
  return rawPost(Number(new URL(sidecar.url).port), '/llm/openai/v1/chat/completions', JSON.stringify({ ...ASK, stream: true }), { Authorization: `Bearer ${TEST_API_KEY}` });
}

test('stream: an allowed tool call arrives intact, byte for byte', async () => {
  const events = chatToolStream('Checking the weather.', [SAFE, SHELL_LS]);
  streamEvents(upstream, events);
  const stream = await openai().chat.completions.create({ ...ASK, stream: true });
  const args = new Map<number, { name: string; args: string }>();
  let text = '';
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta;
    text += delta?.content ?? '';
    for (const call of delta?.tool_calls ?? []) {
      const seen = args.get(call.index) ?? { name: '', args: '' };
      seen.name += call.function?.name ?? '';
      seen.args += call.function?.arguments ?? '';
      args.set(call.index, seen);
    }
  }
  assert.equal(text, 'Checking the weather.');
  assert.deepEqual(args.get(0), { name: 'get_weather', args: JSON.stringify(SAFE.args) });
  assert.deepEqual(args.get(1), { name: 'run_shell', args: JSON.stringify(SHELL_LS.args) });

  const raw = await rawAnswer();
  assert.equal(raw, events.join(''), 'the events are relayed byte-exact');
});

test('stream: a run_shell call with rm -rf / raises in the SDK; its name never reaches the client', async () => {
  streamEvents(upstream, chatToolStream('Cleaning up.', [SHELL_RM_ROOT]));
  const stream = await openai().chat.completions.create({ ...ASK, stream: true });
  let text = '';
  const names: string[] = [];
  await assert.rejects(async () => {
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) if (call.function?.name) names.push(call.function.name);
    }
  }, (err: Error) => err instanceof OpenAI.APIError && /blocked by FirstOps policy: destructive shell command/.test(err.message));
  assert.equal(text, 'Cleaning up.', 'the text before the call arrived');
  assert.deepEqual(names, []);

  const raw = await rawAnswer();
  assert.ok(!raw.includes('run_shell'), 'the denied name is not on the socket');
  assert.ok(!raw.includes('rm -rf'), 'nor its arguments');
  assert.match(raw, /^data: \{"error":\{.*blocked by FirstOps policy: destructive shell command/m, 'the stream ends with the error event');
  assert.ok(!raw.includes('[DONE]'), 'the stream ends with the error event');
  const line = sidecar.logs.requests().at(-1)!;
  assert.equal(line.code, 'policy_denied');
  assert.equal(line.response_decision, 'deny');
  assert.equal(line.response_policy_id, 'no-destructive-shell');
  assert.equal(line.response_source, 'local');
  assert.equal(line.decision, 'allow', 'the request itself was allowed');
  // The upstream is cancelled once the client's answer is over; the sidecar keeps serving.
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletion('still here')));
  const after = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(after.choices[0]?.message.content, 'still here');
});

test('stream: after a deny the client gets the whole error answer, then the upstream is cancelled', async () => {
  const events = chatToolStream('', [SHELL_RM_ROOT]);
  // The upstream sends the call and its finish, then keeps the stream open (a generation going on).
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(events.slice(0, -2).join(''));
  });
  const aborted = upstream.aborts.next();
  const raw = await rawAnswer();
  assert.match(raw, /blocked by FirstOps policy/);
  assert.ok(!raw.includes('run_shell'));
  const seen = await aborted;
  assert.equal(seen.url, '/v1/chat/completions');
});

test('stream: an API key in tool-call arguments arrives redacted', async () => {
  streamEvents(upstream, chatToolStream('', [WITH_KEY]));
  const stream = await openai().chat.completions.create({ ...ASK, stream: true });
  let args = '';
  for await (const chunk of stream) for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) args += call.function?.arguments ?? '';
  const parsed = JSON.parse(args) as { headers: { authorization: string }; note: string; url: string };
  assert.equal(parsed.headers.authorization, 'Bearer [redacted-key]');
  assert.equal(parsed.note, WITH_KEY.args.note, 'the rest is untouched');
  assert.equal(parsed.url, WITH_KEY.args.url);
  assert.ok(!args.includes(KEY));
});

test('JSON: a denied tool call becomes the provider-shaped 403 (PermissionDeniedError)', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody(null, [SHELL_RM_ROOT])));
  await assert.rejects(openai().chat.completions.create(ASK), (err: Error) => {
    assert.ok(err instanceof OpenAI.PermissionDeniedError, String(err));
    assert.match(err.message, /blocked by FirstOps policy: destructive shell command in a tool call/);
    return true;
  });
  const line = sidecar.logs.requests().at(-1)!;
  assert.equal(line.status, 403);
  assert.equal(line.response_decision, 'deny');
  assert.equal(line.response_policy_id, 'no-destructive-shell');
});

test('JSON: an allowed response passes as it came; a redacted one with a correct Content-Length', async () => {
  const allowed = JSON.stringify(chatCompletionBody('ok', [SAFE]));
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(allowed) });
    res.end(allowed);
  });
  const plain = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify(ASK) });
  assert.equal(await plain.text(), allowed);

  upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody(null, [WITH_KEY])));
  const redacted = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify(ASK) });
  const text = await redacted.text();
  assert.equal(redacted.headers.get('content-length'), String(Buffer.byteLength(text)));
  assert.ok(!text.includes(KEY));
  const completion = await openai().chat.completions.create(ASK);
  const args = JSON.parse(completion.choices[0]!.message.tool_calls![0]!.type === 'function' ? (completion.choices[0]!.message.tool_calls![0] as { function: { arguments: string } }).function.arguments : '{}') as { headers: { authorization: string } };
  assert.equal(args.headers.authorization, 'Bearer [redacted-key]');
});

test('JSON: a gzip response is decoded and governed; an unknown coding is refused, never passed', async () => {
  const denied = gzipSync(JSON.stringify(chatCompletionBody(null, [SHELL_RM_ROOT])));
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': denied.length });
    res.end(denied);
  });
  await assert.rejects(openai().chat.completions.create(ASK), OpenAI.PermissionDeniedError);

  const redacted = gzipSync(JSON.stringify(chatCompletionBody(null, [WITH_KEY])));
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': redacted.length });
    res.end(redacted);
  });
  const completion = await openai().chat.completions.create(ASK);
  assert.match(JSON.stringify(completion.choices[0]!.message.tool_calls), /\[redacted-key\]/);

  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'compress' });
    res.end('whatever');
  });
  const refused = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify(ASK) });
  assert.equal(refused.status, 502);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'response_encoding_unsupported');
});

test('stream: a gzip or br event stream is decoded as it arrives and governed; relayed uncompressed; an unknown coding is refused', async () => {
  const compressed = (events: readonly string[], coding: 'gzip' | 'br'): void => {
    upstream.handle(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': coding });
      const z = coding === 'gzip' ? createGzip() : createBrotliCompress();
      z.pipe(res);
      for (const event of events) {
        // Flushed per event: the sidecar sees compressed pieces as a live stream sends them.
        await new Promise<void>((resolve) => { z.write(event); z.flush(() => resolve()); });
      }
      z.end();
    });
  };
  for (const coding of ['gzip', 'br'] as const) {
    const allowed = chatToolStream('Checking the weather.', [SAFE]);
    compressed(allowed, coding);
    assert.equal(await rawAnswer(), allowed.join(''), `${coding}: the decoded events, byte-exact`);
    const head = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify({ ...ASK, stream: true }) });
    assert.equal(head.headers.get('content-encoding'), null, 'relayed uncompressed');
    await head.text();

    compressed(chatToolStream('Cleaning up.', [SHELL_RM_ROOT]), coding);
    const denied = await rawAnswer();
    assert.ok(!denied.includes('run_shell'), `${coding}: the denied call never passes`);
    assert.match(denied, /blocked by FirstOps policy: destructive shell command/);
  }

  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'compress' });
    res.end('whatever');
  });
  const refused = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify({ ...ASK, stream: true }) });
  assert.equal(refused.status, 502);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'response_encoding_unsupported');
});

test('stream: a compressed event stream that turns corrupt ends the answer, and one the client leaves is cancelled upstream', async () => {
  const first = chatToolStream('Checking the weather.', [SAFE])[0]!;
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
    const z = createGzip();
    z.on('data', (chunk: Buffer) => res.write(chunk));
    await new Promise<void>((resolve) => { z.write(first); z.flush(() => resolve()); });
    // Bytes that are no gzip continuation: the sidecar's decoder fails mid-stream.
    res.end(Buffer.from('\u0000 not deflate data at all \u00ff'.repeat(8), 'latin1'));
  });
  const port = Number(new URL(sidecar.url).port);
  const body = JSON.stringify({ ...ASK, stream: true });
  const broken = await rawRequest(port, `POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  assert.equal(broken.status, 200);
  assert.ok(broken.body.startsWith(first), 'what decoded before the damage was relayed');
  assert.ok(!broken.raw.endsWith('\r\n0\r\n\r\n'), 'the answer is cut, not ended as if complete');

  let cancelled!: () => void;
  const upstreamClosed = new Promise<void>((resolve) => { cancelled = resolve; });
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
    const z = createGzip();
    z.pipe(res);
    z.write(first);
    z.flush();
    res.once('close', cancelled);
  });
  const controller = new AbortController();
  const answer = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', signal: controller.signal, headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify({ ...ASK, stream: true }) });
  const reader = answer.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /data: /);
  controller.abort();
  await upstreamClosed;

  // The sidecar goes on serving.
  const allowed = chatToolStream('Checking the weather.', [SAFE]);
  streamEvents(upstream, allowed);
  assert.equal(await rawAnswer(), allowed.join(''));
});

test('metrics: response decisions by phase, and the time each streamed call was held', async () => {
  const denied = await sidecar.metricValue('firstops_policy_decisions_total', { source: 'local', outcome: 'deny', phase: 'response' });
  const held = await sidecar.metricValue('firstops_response_hold_seconds', { kind: 'tool_call', outcome: 'deny' });
  streamEvents(upstream, chatToolStream('', [SHELL_RM_ROOT]));
  await rawAnswer();
  assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'local', outcome: 'deny', phase: 'response' }), denied + 1);
  assert.equal(await sidecar.metricValue('firstops_response_hold_seconds', { kind: 'tool_call', outcome: 'deny' }), held + 1);
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  assert.match(text, /firstops_policy_decisions_total\{source="local",outcome="allow",phase="request"\} \d+/);
  assert.match(text, /firstops_response_hold_seconds_bucket\{le="[^"]+",kind="tool_call",outcome="deny"\} \d+/);
});

test('JSON: a response over the 8 MiB the rules read is refused with response_too_large', async () => {
  const big = JSON.stringify(chatCompletion('x'.repeat((8 << 20) + 10)));
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) });
    res.end(big);
  });
  const refused = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` }, body: JSON.stringify(ASK) });
  assert.equal(refused.status, 502);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'response_too_large');
});

test('a non-2xx answer is relayed as before', async () => {
  upstream.handle((_req, res) => sendJson(res, 429, { error: { message: 'slow down', type: 'rate_limit', code: null } }));
  await assert.rejects(openai().chat.completions.create(ASK), OpenAI.RateLimitError);
});
