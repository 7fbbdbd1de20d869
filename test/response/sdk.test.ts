// The official SDKs against a fake upstream whose answers pass through the response gate (streams) or governJsonResponse (bodies).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { governJsonResponse, responseDenial } from '../../src/response/json.ts';
import { createResponseGateTransform } from '../../src/response/transform.ts';
import { listenLocal, readAll, type TestServer } from '../helpers/server.ts';
import { before as eventsBefore } from './cases.ts';
import { issueRules } from './harness.ts';
import {
  anthropicBody, anthropicToolStream, chatCompletionBody, chatToolStream, KEY, responsesToolStream, SAFE, SHELL_RM, WITH_KEY,
} from './streams.ts';

type Answer = { provider: string; stream: AsyncIterable<string> | readonly string[] } | { provider: string; json: unknown };

let server: TestServer;
let answer: Answer = { provider: 'openai', json: {} };
/** What the last response put on the client's socket (after the gate). */
let sent: Buffer[] = [];

function socketText(): string {
  return Buffer.concat(sent).toString('utf8');
}

async function respond(res: ServerResponse, a: Answer): Promise<void> {
  sent = [];
  if ('json' in a) {
    const verdict = governJsonResponse(a.provider, Buffer.from(JSON.stringify(a.json)), issueRules);
    let status = 200;
    let body: Buffer;
    if (verdict.action === 'deny') ({ status, body } = responseDenial(a.provider, verdict.policyId, verdict.reason));
    else if (verdict.action === 'error') throw new Error(verdict.code);
    else body = verdict.body;
    sent.push(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const gate = createResponseGateTransform({ provider: a.provider, rules: issueRules });
  gate.on('data', (chunk: Buffer) => sent.push(chunk));
  gate.pipe(res);
  for await (const event of a.stream) gate.write(Buffer.from(event));
  gate.end();
}

before(async () => {
  server = await listenLocal((req, res) => {
    void readAll(req).then(() => respond(res, answer)).catch(() => res.destroy());
  });
});
after(() => server.close());

const openai = () => new OpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: 'sk-ant-test', baseURL: server.url, maxRetries: 0 });
const TOOLS = [{ type: 'function' as const, function: { name: 'run_shell', parameters: { type: 'object' } } }];
const ASK = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'go' }], tools: TOOLS };

test('OpenAI Chat Completions stream: an allowed call reaches the SDK byte for byte; a redacted one arrives redacted', async () => {
  answer = { provider: 'openai', stream: chatToolStream('Checking.', [SAFE]) };
  const done = await openai().chat.completions.stream(ASK).finalChatCompletion();
  const call = done.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.deepEqual([call.id, call.function.name, JSON.parse(call.function.arguments)], [SAFE.id, SAFE.name, SAFE.args]);
  assert.equal(socketText(), chatToolStream('Checking.', [SAFE]).join(''), 'byte for byte');

  answer = { provider: 'openai', stream: chatToolStream('', [WITH_KEY]) };
  const redacted = await openai().chat.completions.stream(ASK).finalChatCompletion();
  const r = redacted.choices[0]!.message.tool_calls![0]!;
  assert.ok(r.type === 'function');
  assert.equal(JSON.parse(r.function.arguments).headers.authorization, 'Bearer [redacted-key]');
  assert.ok(!socketText().includes(KEY));
});

test('OpenAI Chat Completions stream: a denied call raises in the SDK after the text before it arrived live; its name never reaches the socket', async () => {
  let seen: () => void = () => undefined;
  const textSeen = new Promise<void>((resolve) => { seen = resolve; });
  const events = chatToolStream('Deleting now.', [SHELL_RM]);
  const firstCall = events.findIndex((e) => e.includes('tool_calls'));
  answer = {
    provider: 'openai',
    stream: (async function* () {
      yield* events.slice(0, firstCall);
      // The call is only sent once the SDK has shown the text: a gate that held text would never get here.
      await textSeen;
      yield* events.slice(firstCall);
    })(),
  };
  const order: string[] = [];
  const stream = await openai().chat.completions.create({ ...ASK, stream: true });
  await assert.rejects(async () => {
    for await (const chunk of stream) {
      const text = chunk.choices[0]?.delta.content;
      if (text) {
        order.push(`text:${text}`);
        seen();
      }
      if (chunk.choices[0]?.delta.tool_calls) order.push('tool_call');
    }
  }, (err: unknown) => err instanceof OpenAI.APIError && /blocked by FirstOps policy: destructive shell command/.test(err.message));
  assert.deepEqual(order, ['text:Delet', 'text:ing n', 'text:ow.']);
  assert.ok(!socketText().includes('run_shell') && !socketText().includes('rm -rf'));
});

test('OpenAI Responses stream: allowed and redacted calls reach finalResponse; a denied one raises', async () => {
  answer = { provider: 'openai', stream: responsesToolStream('ok', [SAFE, WITH_KEY]) };
  const final = await openai().responses.stream({ model: 'gpt-4.1', input: 'go' }).finalResponse();
  const calls = final.output.filter((o) => o.type === 'function_call');
  assert.deepEqual(calls.map((c) => [c.call_id, c.name]), [[SAFE.id, SAFE.name], [WITH_KEY.id, WITH_KEY.name]]);
  assert.deepEqual(JSON.parse(calls[0]!.arguments), SAFE.args);
  assert.equal(JSON.parse(calls[1]!.arguments).headers.authorization, 'Bearer [redacted-key]');
  assert.ok(!socketText().includes(KEY));

  answer = { provider: 'openai', stream: responsesToolStream('ok', [SHELL_RM]) };
  await assert.rejects(openai().responses.stream({ model: 'gpt-4.1', input: 'go' }).finalResponse(), /blocked by FirstOps policy/);
  assert.ok(!socketText().includes('run_shell'));
});

test('Anthropic stream: an allowed call reaches finalMessage byte for byte; a redacted one arrives redacted; a denied one raises', async () => {
  const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'go' }] };
  answer = { provider: 'anthropic', stream: anthropicToolStream('Sure.', [SAFE, WITH_KEY]) };
  const message = await anthropic().messages.stream(params).finalMessage();
  const uses = message.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((u) => [u.id, u.name]), [[SAFE.id, SAFE.name], [WITH_KEY.id, WITH_KEY.name]]);
  assert.deepEqual(uses[0]!.input, SAFE.args);
  assert.deepEqual(uses[1]!.input, { ...WITH_KEY.args, headers: { authorization: 'Bearer [redacted-key]' } });
  assert.ok(socketText().startsWith(eventsBefore(anthropicToolStream('Sure.', [SAFE, WITH_KEY]), WITH_KEY.name)), 'byte for byte up to the modified call');

  answer = { provider: 'anthropic', stream: anthropicToolStream('Sure.', [SHELL_RM]) };
  const texts: string[] = [];
  const stream = anthropic().messages.stream(params).on('text', (t) => texts.push(t));
  await assert.rejects(stream.finalMessage(), (err: unknown) => err instanceof Anthropic.APIError && /blocked by FirstOps policy: destructive shell command/.test(err.message));
  assert.deepEqual(texts, ['Sure.'], 'the text before the denied call arrived');
  assert.ok(!socketText().includes('run_shell') && !socketText().includes('rm -rf'));
});

test('JSON bodies: a denied call is a 403 the SDKs raise as PermissionDeniedError; a redacted one arrives redacted', async () => {
  answer = { provider: 'openai', json: chatCompletionBody(null, [SHELL_RM]) };
  await assert.rejects(openai().chat.completions.create(ASK), (err: unknown) => err instanceof OpenAI.PermissionDeniedError && /blocked by FirstOps policy/.test(err.message));
  assert.ok(!socketText().includes('run_shell'));

  answer = { provider: 'openai', json: chatCompletionBody(null, [WITH_KEY]) };
  const c = await openai().chat.completions.create(ASK);
  const call = c.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.equal(JSON.parse(call.function.arguments).headers.authorization, 'Bearer [redacted-key]');

  answer = { provider: 'anthropic', json: anthropicBody('x', [SHELL_RM]) };
  await assert.rejects(anthropic().messages.create({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'go' }] }), (err: unknown) => err instanceof Anthropic.PermissionDeniedError);
});
