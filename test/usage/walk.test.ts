import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readUsage, readUsageText } from '../../src/usage/extract.ts';
import { usageFamilyFor } from '../../src/usage/families.ts';
import type { Usage } from '../../src/usage/types.ts';
import { FOUND, findTopLevel } from '../../src/usage/walk.ts';

const fromText = (provider: string, text: string): Usage => {
  const into: Usage = {};
  readUsageText(usageFamilyFor(provider), Buffer.from(text).toString('latin1'), into);
  return into;
};
const fromParse = (provider: string, text: string): Usage => {
  const into: Usage = {};
  try {
    readUsage(usageFamilyFor(provider), JSON.parse(text), into);
  } catch {
    // Not JSON: nothing to read.
  }
  return into;
};

// Shapes that make reading from the end go wrong if it trusts the last
// "usage" it sees: each is answered as JSON.parse would.
const BODIES: Array<[string, unknown]> = [
  ['openai', { id: 'a', model: 'gpt-4o', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 1 } }, system_fingerprint: 'fp' }],
  ['openai', { model: 'gpt-4o', usage: { prompt_tokens: 3 }, tail: { usage: { prompt_tokens: 99 } } }],
  ['openai', { model: 'gpt-4o', usage: { prompt_tokens: 3 }, note: 'the "usage": {"prompt_tokens": 99} in text' }],
  ['openai', { model: 'gpt-4o', usage: { prompt_tokens: 3 }, kind: 'usage' }],
  ['openai', { model: 'gpt-4o', choices: [{ usage: { prompt_tokens: 99 } }] }],
  ['openai', { choices: [{ message: { content: '"model":"fake"' } }], usage: { completion_tokens: 2 }, model: 'after' }],
  ['openai', { usage: { prompt_tokens: 1.5, completion_tokens: -1 } }],
  ['openai', { usage: { prompt_tokens: '7', completion_tokens: 12345678901234567890 } }],
  ['openai', { usage: { prompt_tokens: 0, completion_tokens: 1e3 } }],
  ['openai', { model: 'm\u00e9\u20ac\n"q"', usage: { prompt_tokens: 1 } }],
  ['openai', { usage: null, model: 'm' }],
  ['anthropic', { id: 'msg', model: 'claude', content: [{ type: 'tool_use', input: { usage: { input_tokens: 99 } } }], usage: { input_tokens: 10, cache_read_input_tokens: 5, output_tokens: 2 } }],
  ['anthropic', { model: 'claude', usage: { input_tokens: 10 }, content: [{ type: 'tool_use', input: { usage: { input_tokens: 99 } } }] }],
  ['google', { candidates: [{ content: { parts: [{ functionCall: { args: { usageMetadata: { promptTokenCount: 99 } } } }] } }], usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 3, thoughtsTokenCount: 2 }, modelVersion: 'gemini-2.5', responseId: 'r' }],
];

test('a JSON body reads as JSON.parse reads it, whichever way it is found', () => {
  for (const [provider, body] of BODIES) {
    for (const text of [JSON.stringify(body), JSON.stringify(body, null, 2), ` ${JSON.stringify(body)}\n`]) {
      assert.deepEqual(fromText(provider, text), fromParse(provider, text), `${provider} ${text}`);
    }
  }
});

test('duplicate keys: the last usage counts, as with JSON.parse', () => {
  const text = '{"usage":{"prompt_tokens":1},"model":"m","usage":{"prompt_tokens":2}}';
  assert.deepEqual(fromText('openai', text), fromParse('openai', text));
  assert.deepEqual(fromText('openai', text), { input: 2, responseModel: 'm' });
});

test('found from the end only when the tail closes the root: otherwise the whole text is walked', () => {
  const body = '{"id":"x","model":"m","choices":[],"usage":{"prompt_tokens":1}}';
  assert.equal(findTopLevel(body, '"usage"', 'model'), true);
  assert.equal(body.slice(FOUND[0]!, FOUND[1]!), '{"prompt_tokens":1}');
  assert.equal(body.slice(FOUND[2]!, FOUND[3]!), '"m"');
  assert.equal(findTopLevel('{"a":{"usage":{"prompt_tokens":1}},"b":2}', '"usage"', 'model'), false, 'nested');
  assert.equal(findTopLevel('{"usage":{"prompt_tokens":1}} trailing', '"usage"', 'model'), false, 'text after the root');
  assert.equal(findTopLevel('[{"usage":{"prompt_tokens":1}}]', '"usage"', 'model'), false, 'not an object');
  assert.equal(findTopLevel('{"usage":{"prompt_tokens":1', '"usage"', 'model'), false, 'truncated');
  assert.equal(findTopLevel('{"x":"\\"usage\\":{}"}', '"usage"', 'model'), false, 'inside a string');
  assert.deepEqual(fromText('openai', '{"a":{"usage":{"prompt_tokens":9}},"usage":{"prompt_tokens":1},"b":{"usage":{"prompt_tokens":7}}}'), { input: 1 }, 'walked: the top-level one');
});

// Reading from the end does not validate what lies between the members it
// takes (that is its point): `{"model":"m" "usage":{...}}` reads. A provider's
// malformed body misreporting its own usage is the only consequence.
test('malformed text around a usage object reads as nothing, however it is found', () => {
  for (const text of ['{"usage":{"prompt_tokens":1}', '{"usage":{"prompt_tokens":1},}', '{"usage":{"prompt_tokens":1 "x":2}}']) {
    assert.deepEqual(fromText('openai', text), {}, text);
  }
});
