import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readUsage, readUsageText, requestModelOf } from '../../src/usage/extract.ts';
import { usageFamilyFor } from '../../src/usage/families.ts';
import { createLabelBound, MAX_MODEL_LENGTH } from '../../src/usage/labels.ts';
import type { Usage } from '../../src/usage/types.ts';

function usageOf(provider: string, ...docs: unknown[]): Usage {
  const into: Usage = {};
  for (const d of docs) readUsage(usageFamilyFor(provider), d, into);
  return into;
}

test('OpenAI: chat completion, last stream chunk, Responses API body and response.completed, embeddings', () => {
  assert.deepEqual(usageOf('openai', { model: 'gpt-4o-2024-08-06', usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18, prompt_tokens_details: { cached_tokens: 4 } } }),
    { input: 11, output: 7, responseModel: 'gpt-4o-2024-08-06' });
  assert.deepEqual(usageOf('openai', { model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }), { input: 5, output: 2, responseModel: 'gpt-4o-mini' });
  assert.deepEqual(usageOf('openai', { object: 'response', model: 'gpt-4.1', usage: { input_tokens: 9, output_tokens: 3, total_tokens: 12 } }), { input: 9, output: 3, responseModel: 'gpt-4.1' });
  assert.deepEqual(usageOf('openai', { type: 'response.completed', response: { model: 'gpt-4.1', usage: { input_tokens: 9, output_tokens: 30 } } }), { input: 9, output: 30, responseModel: 'gpt-4.1' });
  assert.deepEqual(usageOf('openai', { object: 'list', model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } }), { input: 8, responseModel: 'text-embedding-3-small' });
  // Any provider not listed speaks OpenAI.
  assert.deepEqual(usageOf('azure', { usage: { prompt_tokens: 1, completion_tokens: 1 } }), { input: 1, output: 1 });
});

test('Anthropic: body usage with cache tokens as input; stream message_start then message_delta', () => {
  assert.deepEqual(usageOf('anthropic', { type: 'message', model: 'claude-sonnet-4-5', usage: { input_tokens: 10, cache_creation_input_tokens: 5, cache_read_input_tokens: 100, output_tokens: 20 } }),
    { input: 115, output: 20, responseModel: 'claude-sonnet-4-5' });
  assert.deepEqual(usageOf('anthropic',
    { type: 'message_start', message: { model: 'claude-haiku', usage: { input_tokens: 25, output_tokens: 1 } } },
    { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 15 } },
  ), { input: 25, output: 15, responseModel: 'claude-haiku' });
});

test('Gemini (google/gemini providers): usageMetadata with thinking tokens as output, last of a streamed array wins', () => {
  const chunk = (n: number) => ({ modelVersion: 'gemini-2.5-flash', usageMetadata: { promptTokenCount: 12, candidatesTokenCount: n, thoughtsTokenCount: 3 } });
  assert.deepEqual(usageOf('google', chunk(4)), { input: 12, output: 7, responseModel: 'gemini-2.5-flash' });
  assert.deepEqual(usageOf('gemini', [chunk(1), chunk(2), chunk(9)]), { input: 12, output: 12, responseModel: 'gemini-2.5-flash' });
});

test('nothing is guessed: no usage, null usage, junk numbers', () => {
  assert.deepEqual(usageOf('openai', { choices: [] }), {});
  assert.deepEqual(usageOf('openai', { usage: null }), {});
  assert.deepEqual(usageOf('openai', { usage: { prompt_tokens: -1, completion_tokens: 1.5 } }), {});
  assert.deepEqual(usageOf('anthropic', 'text', null, 3), {});
});

test('operations and request models by family', () => {
  const op = (provider: string, path: string) => usageFamilyFor(provider).operations.find((o) => o.path.test(path))?.operation;
  assert.equal(op('openai', '/v1/chat/completions'), 'chat');
  assert.equal(op('openai', '/v1/responses'), 'chat');
  assert.equal(op('openai', '/v1/completions'), 'text_completion');
  assert.equal(op('openai', '/v1/embeddings'), 'embeddings');
  assert.equal(op('openai', '/v1/models'), undefined);
  assert.equal(op('anthropic', '/v1/messages'), 'chat');
  assert.equal(op('anthropic', '/v1/messages/count_tokens'), undefined);
  assert.equal(op('google', '/v1beta/models/gemini-2.5-flash:streamGenerateContent'), 'generate_content');
  assert.equal(op('gemini', '/v1beta/models/text-embedding-004:embedContent'), 'embeddings');
  assert.equal(requestModelOf(usageFamilyFor('openai'), '/v1/chat/completions', 'gpt-4o'), 'gpt-4o');
  assert.equal(requestModelOf(usageFamilyFor('openai'), '/v1/chat/completions', undefined), undefined);
  assert.equal(requestModelOf(usageFamilyFor('google'), '/v1beta/models/gemini-2.5-pro:generateContent', undefined), 'gemini-2.5-pro');
});

test('model label values: 100 distinct, then other; length-capped; printable', () => {
  const bound = createLabelBound();
  for (let i = 0; i < 100; i++) assert.equal(bound(`m-${i}`), `m-${i}`);
  assert.equal(bound('m-100'), 'other');
  assert.equal(bound('m-5'), 'm-5', 'a value already seen stays itself');
  assert.equal(createLabelBound()('x'.repeat(500)).length, MAX_MODEL_LENGTH);
  assert.equal(createLabelBound()('a b\n"c'), 'a_b_"c');
  assert.equal(createLabelBound()(undefined), '');
});

test('JSON text is walked, not parsed whole, with the same answers as a parse', () => {
  const read = (provider: string, text: string) => {
    const into: Usage = {};
    readUsageText(usageFamilyFor(provider), Buffer.from(text).toString('latin1'), into);
    return into;
  };
  const body = { id: 'x', model: 'modèle-€', choices: [{ message: { content: 'a "quoted" }{ text \\ with "model":"fake" and "usage":{"prompt_tokens":999}' } }], usage: { prompt_tokens: 3, completion_tokens: 4, details: { a: [1, { b: 2 }] } } };
  assert.deepEqual(read('openai', JSON.stringify(body)), { input: 3, output: 4, responseModel: 'modèle-€' });
  assert.deepEqual(read('openai', JSON.stringify(body, null, 2)), { input: 3, output: 4, responseModel: 'modèle-€' }, 'pretty-printed');
  assert.deepEqual(read('openai', '{"\\u0075sage":{"prompt_tokens":5}}'), { input: 5 }, 'an escaped key');
  assert.deepEqual(read('openai', '{"response":{"model":"m","usage":{"input_tokens":2}}}'), { input: 2, responseModel: 'm' });
  assert.deepEqual(read('google', JSON.stringify([{ usageMetadata: { promptTokenCount: 1 } }, { usageMetadata: { promptTokenCount: 2 } }])), { input: 2 });
  assert.deepEqual(read('openai', '{"usage":{"prompt_tokens":3}'), {}, 'truncated');
  assert.deepEqual(read('openai', '{"a":tru'), {});
  assert.deepEqual(read('openai', 'not json'), {});
});
