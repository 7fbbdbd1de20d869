import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStreamViewer, viewOfJsonBody } from '../../src/response/view.ts';
import type { ResponseView } from '../../src/policy/response-types.ts';
import { randomChunks, splits } from './harness.ts';
import {
  anthropicBody, anthropicToolStream, chatCompletionBody, chatInterleaved, chatToolStream, geminiBody, geminiToolStream,
  responsesBody, responsesToolStream, SAFE, SHELL_RM, WITH_KEY, type ToolSpec,
} from './streams.ts';

function streamView(provider: string, chunks: readonly Buffer[]): ResponseView {
  const viewer = createStreamViewer(provider);
  for (const c of chunks) viewer.push(c);
  return viewer.end();
}

function summary(view: ResponseView): { text: string; calls: Array<{ id: string; name: string; arguments: unknown; json: boolean; complete: boolean }> } {
  return {
    text: view.text.map((t) => t.text).join(''),
    calls: view.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments, json: c.argumentsJson, complete: c.complete })),
  };
}

const CALLS: readonly ToolSpec[] = [SHELL_RM, WITH_KEY];
const TEXT = 'Running the tools now: é ✓ 🌍.';
const EXPECTED = { text: TEXT, calls: CALLS.map((c) => ({ id: c.id, name: c.name, arguments: c.args, json: true, complete: true })) };

const CASES: ReadonlyArray<{ name: string; provider: string; stream: string[]; body: Record<string, unknown> }> = [
  { name: 'OpenAI Chat Completions', provider: 'openai', stream: chatToolStream(TEXT, CALLS), body: chatCompletionBody(TEXT, CALLS) },
  { name: 'OpenAI Responses', provider: 'openai', stream: responsesToolStream(TEXT, CALLS), body: responsesBody(TEXT, CALLS) },
  { name: 'Anthropic Messages', provider: 'anthropic', stream: anthropicToolStream(TEXT, CALLS), body: anthropicBody(TEXT, CALLS) },
  { name: 'Gemini', provider: 'google', stream: geminiToolStream(TEXT, CALLS), body: geminiBody(TEXT, CALLS) },
];

for (const c of CASES) {
  test(`${c.name}: the JSON body and the stream give the same view`, () => {
    assert.deepEqual(summary(viewOfJsonBody(c.provider, Buffer.from(JSON.stringify(c.body)))!), EXPECTED);
    const bytes = Buffer.from(c.stream.join(''), 'utf8');
    assert.deepEqual(summary(streamView(c.provider, [bytes])), EXPECTED);
  });

  test(`${c.name}: the stream view is the same at every split and chunking`, () => {
    const bytes = Buffer.from(c.stream.join(''), 'utf8');
    const want = summary(streamView(c.provider, [bytes]));
    // Every two-way split of the stream (the fuzz file splits the gate's input the same way).
    for (const chunks of splits(bytes)) assert.deepEqual(summary(streamView(c.provider, chunks)), want);
    for (let seed = 1; seed <= 50; seed++) assert.deepEqual(summary(streamView(c.provider, randomChunks(bytes, seed))), want);
  });
}

test('Chat: interleaved calls by index, ids and names as the SDK keeps them (the last non-empty)', () => {
  const view = streamView('openai', [Buffer.from(chatInterleaved(SAFE, SHELL_RM).join(''))]);
  assert.deepEqual(view.toolCalls.map((c) => [c.key, c.id, c.name, c.arguments]), [
    ['c0.t0', SAFE.id, SAFE.name, SAFE.args],
    ['c0.t1', SHELL_RM.id, SHELL_RM.name, SHELL_RM.args],
  ]);
});

test('arguments that are not strict JSON are kept as text: malformed, duplicate keys', () => {
  const chunk = (args: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: args } }] }, finish_reason: null }] })}\n\n`;
  const malformed = streamView('openai', [Buffer.from(chunk('{"a": 1,,') + 'data: [DONE]\n\n')]).toolCalls[0]!;
  assert.deepEqual([malformed.arguments, malformed.argumentsJson, malformed.complete], ['{"a": 1,,', false, true]);
  const dup = streamView('openai', [Buffer.from(chunk('{"cmd":"ls","cmd":"rm -rf /"}'))]).toolCalls[0]!;
  assert.equal(dup.argumentsJson, false);
  assert.equal(dup.arguments, '{"cmd":"ls","cmd":"rm -rf /"}');
});

test('a call the stream ends inside of is complete: false', () => {
  const events = anthropicToolStream('', [SHELL_RM]);
  const cut = events.slice(0, events.findIndex((e) => e.includes('content_block_stop') && e.includes('"index":1')));
  const call = streamView('anthropic', [Buffer.from(cut.join(''))]).toolCalls[0]!;
  assert.equal(call.complete, false);
  assert.deepEqual(call.arguments, SHELL_RM.args);
});

test('Responses: built-in agent tools are calls named by their item type; custom tools by name with raw input', () => {
  const body = {
    object: 'response',
    output: [
      { type: 'local_shell_call', id: 'ls_1', call_id: 'call_1', status: 'completed', action: { type: 'exec', command: ['rm', '-rf', '/'], env: {} } },
      { type: 'custom_tool_call', id: 'ct_1', call_id: 'call_2', name: 'apply_sql', input: 'DROP TABLE users;' },
      { type: 'web_search_call', id: 'ws_1', status: 'completed' },
    ],
  };
  const view = viewOfJsonBody('openai', Buffer.from(JSON.stringify(body)))!;
  assert.deepEqual(view.toolCalls.map((c) => [c.id, c.name, c.arguments]), [
    ['call_1', 'local_shell_call', { type: 'exec', command: ['rm', '-rf', '/'], env: {} }],
    ['call_2', 'apply_sql', 'DROP TABLE users;'],
  ]);
});

test('Gemini: a streamed JSON array body (no alt=sse) is read chunk by chunk', () => {
  const arr = [geminiBody('a', []), geminiBody('b', [SAFE])];
  const view = viewOfJsonBody('gemini', Buffer.from(JSON.stringify(arr)))!;
  assert.equal(view.text.map((t) => t.text).join(''), 'ab');
  assert.deepEqual(view.toolCalls.map((c) => c.name), [SAFE.name]);
});

test('a body that is not JSON has no view; one of another shape has an empty one', () => {
  assert.equal(viewOfJsonBody('openai', Buffer.from('not json')), undefined);
  assert.deepEqual(summary(viewOfJsonBody('openai', Buffer.from('{"object":"list","data":[]}'))!), { text: '', calls: [] });
});
