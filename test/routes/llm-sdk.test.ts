import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startUpstream, chatCompletion, anthropicMessage, openAiChunk, sendJson, type FakeUpstream } from '../helpers/upstream.ts';
import { startTestSidecar, TEST_API_KEY, PROMPT_MARKER, type TestSidecar } from '../helpers/sidecar.ts';

const POLICY = `
version: 1
rules:
  - id: no-forbidden-model
    match: { input: { model: "forbidden-*" } }
    decision: deny
    reason: model forbidden-x is not approved
  - id: scrub-email
    match: { channel: llm }
    decision: modify
    redact:
      - pattern: "[a-z]+@example\\\\.com"
        replacement: "[email]"
`;

let upstream: FakeUpstream;
let sidecar: TestSidecar;

before(async () => {
  upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-policy-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: join(dir, 'policy.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: `${upstream.url}/openai-prefix`,
    FIRSTOPS_UPSTREAM_ANTHROPIC: upstream.url,
  });
});

after(async () => {
  await sidecar.close();
  await upstream.close();
});

function openai(): OpenAI {
  return new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
}
function anthropic(): Anthropic {
  return new Anthropic({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/anthropic`, maxRetries: 0 });
}

test('OpenAI SDK: a chat completion goes through, credentials verbatim, prefix kept', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletion('hi there')));
  const completion = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `say hi ${PROMPT_MARKER}` }] });
  assert.equal(completion.choices[0]?.message.content, 'hi there');
  const seen = upstream.requests.at(-1)!;
  assert.equal(seen.url, '/openai-prefix/v1/chat/completions');
  assert.equal(seen.headers.authorization, `Bearer ${TEST_API_KEY}`);
  assert.equal(JSON.parse(seen.body.toString()).messages[0].content, `say hi ${PROMPT_MARKER}`);
  const line = sidecar.logs.requests().at(-1)!;
  assert.equal(line.route, 'llm');
  assert.equal(line.provider, 'openai');
  assert.equal(line.status, 200);
  assert.equal(line.path, '/llm/openai/v1/chat/completions');
  assert.equal(line.decision, 'allow');
  assert.ok((line.bytes_out as number) > 0);
});

test('OpenAI SDK: streaming arrives chunk by chunk, in order', async () => {
  const words = ['one', 'two', 'three', 'four'];
  let release: (() => void) | undefined;
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const word of words) {
      res.write(openAiChunk(word));
      // The next chunk is only written once the client has seen this one: proves no buffering.
      await new Promise<void>((resolve) => { release = resolve; });
    }
    res.write(openAiChunk('', 'stop'));
    res.end('data: [DONE]\n\n');
  });
  const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'count' }], stream: true });
  const received: string[] = [];
  for await (const chunk of stream) {
    const text = chunk.choices[0]?.delta.content;
    if (text) {
      received.push(text);
      release?.();
    }
  }
  assert.deepEqual(received, words);
});

test('OpenAI SDK: a deny raises PermissionDeniedError with the policy message', async () => {
  const before = upstream.requests.length;
  await assert.rejects(
    openai().chat.completions.create({ model: 'forbidden-x', messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.PermissionDeniedError, String(err));
      assert.equal(err.status, 403);
      assert.match(err.message, /blocked by FirstOps policy: model forbidden-x is not approved/);
      assert.equal((err.error as { policy_id?: string }).policy_id, 'no-forbidden-model');
      assert.equal((err.error as { type?: string }).type, 'firstops_policy_violation');
      return true;
    },
  );
  assert.equal(upstream.requests.length, before, 'nothing reached the upstream');
  assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'local', outcome: 'deny' }), 1);
});

test('OpenAI SDK: modify forwards the rewritten body with a true Content-Length', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletion()));
  await openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'write to bob@example.com' }] });
  const seen = upstream.requests.at(-1)!;
  assert.equal(JSON.parse(seen.body.toString()).messages[0].content, 'write to [email]');
  assert.equal(Number(seen.headers['content-length']), seen.body.length);
  assert.equal(sidecar.logs.requests().at(-1)!.decision, 'modify');
  assert.equal(sidecar.logs.requests().at(-1)!.policy_id, 'scrub-email');
});

test('Anthropic SDK: message, stream, and a deny as a typed error', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, anthropicMessage('bonjour')));
  const message = await anthropic().messages.create({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.deepEqual(message.content, [{ type: 'text', text: 'bonjour' }]);
  const seen = upstream.requests.at(-1)!;
  assert.equal(seen.url, '/v1/messages');
  // This SDK version sends the key as a bearer; older ones used x-api-key (tested raw elsewhere).
  assert.ok([seen.headers['x-api-key'], seen.headers.authorization].some((v) => v?.includes(TEST_API_KEY)));

  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (event: string, data: unknown): boolean => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('message_start', { type: 'message_start', message: { ...anthropicMessage(''), content: [], stop_reason: null } });
    send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    for (const t of ['a', 'b', 'c']) send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } });
    send('content_block_stop', { type: 'content_block_stop', index: 0 });
    send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } });
    send('message_stop', { type: 'message_stop' });
    res.end();
  });
  const stream = anthropic().messages.stream({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  const texts: string[] = [];
  stream.on('text', (t) => texts.push(t));
  await stream.finalMessage();
  assert.deepEqual(texts, ['a', 'b', 'c']);

  await assert.rejects(
    anthropic().messages.create({ model: 'forbidden-y', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) => {
      assert.ok(err instanceof Anthropic.PermissionDeniedError, String(err));
      assert.match(err.message, /blocked by FirstOps policy: model forbidden-x is not approved/);
      assert.deepEqual(err.error, { type: 'error', error: { type: 'firstops_policy_violation', message: 'blocked by FirstOps policy: model forbidden-x is not approved' } });
      return true;
    },
  );
});

test('metrics record the requests by route, provider and status', async () => {
  assert.ok((await sidecar.metricValue('firstops_requests_total', { route: 'llm', provider: 'openai', status: '200' })) >= 3);
  assert.ok((await sidecar.metricValue('firstops_requests_total', { route: 'llm', provider: 'openai', status: '403' })) >= 1);
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  assert.match(text, /firstops_request_duration_seconds_bucket\{le="[^"]+",route="llm",provider="openai"\}/);
  assert.match(text, /firstops_policy_decisions_total\{source="local",outcome="modify",phase="request"\} 1/);
});
