import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { anthropicMessage, chatCompletion, sendJson, startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { startTestSidecar, TEST_API_KEY, type TestSidecar } from '../helpers/sidecar.ts';
import { anthropicStream, embeddingsBody, geminiChunk, openAiUsageStream, responsesBody, sseEvent, writeStream } from './fakes.ts';

let upstream: FakeUpstream;
let sidecar: TestSidecar;
let policyFile: string;

before(async () => {
  upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-usage-'));
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, 'version: 1\nrules: []\n');
  sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: policyFile,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_UPSTREAM_ANTHROPIC: upstream.url,
    FIRSTOPS_UPSTREAM_GOOGLE: upstream.url,
  });
});

after(async () => {
  await sidecar.close();
  await upstream.close();
});

const openai = () => new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/anthropic`, maxRetries: 0 });

type Labels = Record<string, string>;
async function series(s: TestSidecar, name: string, suffix: '_sum' | '_count', labels: Labels): Promise<number> {
  const metric = await s.sidecar.metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => (v as { metricName?: string }).metricName === name + suffix)
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}
const tokens = (labels: Labels) => series(sidecar, 'gen_ai_client_token_usage', '_sum', labels);
const lastLine = () => sidecar.logs.requests().at(-1)!;

/**
 * Runs client calls, then waits until the sidecar has logged as many request
 * lines: metrics and the line are written once the relay is over, which can
 * be after the client has read the last byte.
 */
async function settled(calls: number, run: () => Promise<unknown>, on: TestSidecar = sidecar): Promise<void> {
  const since = on.logs.lines.length;
  await run();
  for (let seen = 0, from = since; seen < calls; seen++) {
    const line = await on.logs.waitFor('request', from);
    from = on.logs.lines.indexOf(line) + 1;
  }
}

test('OpenAI chat completion: tokens by type with operation, provider, both models; the log line carries them', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, { ...chatCompletion(), model: 'gpt-4o-mini-2024-07-18' }));
  await settled(1, () => openai().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }));
  const labels = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o-mini', gen_ai_response_model: 'gpt-4o-mini-2024-07-18' };
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'input' }), 5);
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'output' }), 7);
  assert.equal(await series(sidecar, 'gen_ai_client_operation_duration_seconds', '_count', labels), 1);
  assert.equal(await series(sidecar, 'gen_ai_client_operation_time_to_first_chunk_seconds', '_count', labels), 0, 'not a stream');
  const line = lastLine();
  assert.equal(line.model, 'gpt-4o-mini');
  assert.equal(line.input_tokens, 5);
  assert.equal(line.output_tokens, 7);
});

test('OpenAI stream with include_usage: the final chunk counts, the bytes arrive unchanged, time to first chunk is recorded', async () => {
  const events = openAiUsageStream(['a', 'b', 'c']);
  upstream.handle((_req, res) => writeStream(res, events));
  await settled(1, async () => {
    const res = await request(`${sidecar.url}/llm/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_KEY}` },
      body: JSON.stringify({ model: 'gpt-4o-mini-s', stream: true, stream_options: { include_usage: true }, messages: [] }),
    });
    assert.equal(await res.body.text(), events.join(''));
  });
  const labels = { gen_ai_operation_name: 'chat', gen_ai_request_model: 'gpt-4o-mini-s', gen_ai_response_model: 'gpt-4o-mini-2024-07-18' };
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'input' }), 21);
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'output' }), 4);
  assert.equal(await series(sidecar, 'gen_ai_client_operation_time_to_first_chunk_seconds', '_count', labels), 1);
  assert.deepEqual([lastLine().input_tokens, lastLine().output_tokens], [21, 4]);

  // The SDK reads the same stream.
  upstream.handle((_req, r) => writeStream(r, events));
  let usage: unknown;
  await settled(1, async () => {
    const stream = await openai().chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }] });
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  });
  assert.deepEqual(usage, { prompt_tokens: 21, completion_tokens: 4, total_tokens: 25 });
});

test('a stream without include_usage records no tokens, only its duration', async () => {
  const events = openAiUsageStream(['a']).filter((e) => !e.includes('"usage":{'));
  upstream.handle((_req, res) => writeStream(res, events));
  await settled(1, async () => {
    const stream = await openai().chat.completions.create({ model: 'no-usage-model', stream: true, messages: [{ role: 'user', content: 'x' }] });
    for await (const _ of stream) { /* drain */ }
  });
  assert.equal(await tokens({ gen_ai_request_model: 'no-usage-model' }), 0);
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_request_model: 'no-usage-model' }), 0);
  assert.equal(await series(sidecar, 'gen_ai_client_operation_duration_seconds', '_count', { gen_ai_request_model: 'no-usage-model' }), 1);
  const line = lastLine();
  assert.equal(line.model, 'no-usage-model');
  assert.equal('input_tokens' in line, false);
  assert.equal('output_tokens' in line, false);
});

test('OpenAI Responses API and embeddings', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, responsesBody()));
  await settled(1, async () => assert.equal((await openai().responses.create({ model: 'gpt-4.1', input: 'hi' })).output_text, 'ok'));
  assert.equal(await tokens({ gen_ai_operation_name: 'chat', gen_ai_request_model: 'gpt-4.1', gen_ai_response_model: 'gpt-4.1-2025-04-14', gen_ai_token_type: 'input' }), 13);

  upstream.handle((_req, res) => {
    writeStream(res, [
      sseEvent({ type: 'response.created', response: { ...responsesBody(), status: 'in_progress', usage: null } }, 'response.created'),
      sseEvent({ type: 'response.output_text.delta', delta: 'ok' }, 'response.output_text.delta'),
      sseEvent({ type: 'response.completed', response: { ...responsesBody(), usage: { input_tokens: 40, output_tokens: 6, total_tokens: 46 } } }, 'response.completed'),
    ]);
  });
  await settled(1, async () => {
    const stream = await openai().responses.create({ model: 'gpt-4.1-stream', input: 'hi', stream: true });
    for await (const _ of stream) { /* drain */ }
  });
  assert.equal(await tokens({ gen_ai_request_model: 'gpt-4.1-stream', gen_ai_token_type: 'input' }), 40);
  assert.equal(await tokens({ gen_ai_request_model: 'gpt-4.1-stream', gen_ai_token_type: 'output' }), 6);

  upstream.handle((_req, res) => sendJson(res, 200, embeddingsBody()));
  await settled(1, () => openai().embeddings.create({ model: 'text-embedding-3-small', input: 'x', encoding_format: 'float' }));
  assert.equal(await tokens({ gen_ai_operation_name: 'embeddings', gen_ai_token_type: 'input' }), 8);
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_operation_name: 'embeddings', gen_ai_token_type: 'output' }), 0);
});

test('Anthropic: message body and stream (message_start input, message_delta output)', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, anthropicMessage('hej')));
  await settled(1, () => anthropic().messages.create({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
  const labels = { gen_ai_provider_name: 'anthropic', gen_ai_request_model: 'claude-test', gen_ai_response_model: 'claude-test' };
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'input' }), 5);
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'output' }), 7);

  upstream.handle((_req, res) => writeStream(res, anthropicStream('streamed')));
  await settled(1, async () => {
    const final = await anthropic().messages.stream({ model: 'claude-stream', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
    assert.equal(final.usage.output_tokens, 9);
  });
  const s = { gen_ai_request_model: 'claude-stream', gen_ai_response_model: 'claude-test' };
  assert.equal(await tokens({ ...s, gen_ai_token_type: 'input' }), 30);
  assert.equal(await tokens({ ...s, gen_ai_token_type: 'output' }), 9);
  assert.equal(await series(sidecar, 'gen_ai_client_operation_time_to_first_chunk_seconds', '_count', s), 1);
});

test('Gemini on a provider named google: generateContent JSON, SSE stream, streamed JSON array', async () => {
  const call = async (path: string, reply: (res: import('node:http').ServerResponse) => void) => {
    upstream.handle((_req, res) => reply(res));
    await settled(1, async () => {
      const r = await fetch(`${sidecar.url}/llm/google/v1beta/models/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"contents":[]}' });
      await r.text();
    });
  };
  await call('gemini-2.5-flash:generateContent', (res) => sendJson(res, 200, geminiChunk('hi', 3)));
  await call('gemini-2.5-flash:streamGenerateContent?alt=sse', (res) => writeStream(res, [1, 4, 6].map((n) => sseEvent(geminiChunk('x', n)))));
  await call('gemini-2.5-flash:streamGenerateContent', (res) => sendJson(res, 200, [geminiChunk('a', 1), geminiChunk('b', 2)]));
  const labels = { gen_ai_operation_name: 'generate_content', gen_ai_provider_name: 'google', gen_ai_request_model: 'gemini-2.5-flash', gen_ai_response_model: 'gemini-2.5-flash' };
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'input' }), 17 * 3);
  assert.equal(await tokens({ ...labels, gen_ai_token_type: 'output' }), 3 + 6 + 2, 'the last (cumulative) count of each stream');
});

test('gzip and br bodies are read on a side copy; the client gets the compressed bytes as sent', async () => {
  for (const [encoding, compress] of [['gzip', gzipSync], ['br', brotliCompressSync]] as const) {
    const body = compress(Buffer.from(JSON.stringify({ ...chatCompletion(), model: `zipped-${encoding}` })));
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': body.length });
      res.end(body);
    });
    await settled(1, async () => {
      const res = await request(`${sidecar.url}/llm/openai/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"gpt-4o-mini"}',
      });
      assert.equal(res.headers['content-encoding'], encoding);
      assert.deepEqual(Buffer.from(await res.body.arrayBuffer()), body);
    });
    assert.equal(await tokens({ gen_ai_response_model: `zipped-${encoding}`, gen_ai_token_type: 'output' }), 7, encoding);
    assert.equal(lastLine().output_tokens, 7);
  }
  // A body that claims gzip but is not: nothing recorded, nothing broken.
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    res.end('{"usage":{"prompt_tokens":1}}');
  });
  await settled(1, async () => {
    const res = await request(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"bad-gzip"}' });
    assert.equal(await res.body.text(), '{"usage":{"prompt_tokens":1}}');
  });
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_request_model: 'bad-gzip' }), 0);
  assert.equal(lastLine().status, 200);
});

test('what cannot hold usage records none: errors, other paths, GETs, non-JSON, oversized JSON', async () => {
  upstream.handle((_req, res) => sendJson(res, 429, { error: { message: 'slow down', type: 'rate_limit' } }));
  await settled(1, async () => (await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"limited"}' })).text());
  assert.equal(await series(sidecar, 'gen_ai_client_operation_duration_seconds', '_count', { gen_ai_request_model: 'limited', error_type: '429' }), 1);
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_request_model: 'limited' }), 0);

  const before = (await sidecar.sidecar.metrics.registry.getSingleMetric('gen_ai_client_operation_duration_seconds')!.get()).values.length;
  upstream.handle((_req, res) => sendJson(res, 200, chatCompletion()));
  await settled(2, async () => {
    await (await fetch(`${sidecar.url}/llm/openai/v1/models`)).text();
    await (await fetch(`${sidecar.url}/llm/openai/v1/files`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"files"}' })).text();
  });
  assert.equal((await sidecar.sidecar.metrics.registry.getSingleMetric('gen_ai_client_operation_duration_seconds')!.get()).values.length, before, 'not an LLM operation');

  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('{"usage":{"prompt_tokens":1}}');
  });
  await settled(1, async () => (await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"plain"}' })).text());
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_request_model: 'plain' }), 0);

  const big = JSON.stringify({ ...chatCompletion('x'.repeat(1_100_000)) });
  upstream.handle((_req, res) => sendJson(res, 200, JSON.parse(big)));
  await settled(1, async () => {
    const r = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"huge"}' });
    assert.equal((await r.text()).length, big.length);
  });
  assert.equal(await series(sidecar, 'gen_ai_client_token_usage', '_count', { gen_ai_request_model: 'huge' }), 0, 'past 1 MiB a JSON body is not parsed');
});

test('model labels: 100 distinct values, then other', async () => {
  upstream.handle((req, res) => sendJson(res, 200, { ...chatCompletion(), model: JSON.parse(req.body.toString()).model }));
  // Every metered operation observes its duration: that histogram holds every request model seen.
  const distinct = async () => new Set((await sidecar.sidecar.metrics.registry.getSingleMetric('gen_ai_client_operation_duration_seconds')!.get()).values.map((v) => v.labels.gen_ai_request_model)).size;
  const already = await distinct();
  const calls = 100 - already + 5;
  await settled(calls, async () => {
    for (let i = 0; i < calls; i++) {
      await (await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: `model-${i}` }) })).text();
    }
  });
  assert.equal(await distinct(), 101, '100 models and other');
  assert.ok(await tokens({ gen_ai_request_model: 'other', gen_ai_token_type: 'input' }) >= 5 * 5);
});

test('FIRSTOPS_USAGE_METRICS=off: no gen_ai series, no usage in the log', async () => {
  const off = await startTestSidecar({ FIRSTOPS_POLICY_FILE: policyFile, FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_USAGE_METRICS: 'off' });
  try {
    upstream.handle((_req, res) => sendJson(res, 200, chatCompletion()));
    await settled(1, () => new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${off.url}/llm/openai/v1`, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), off);
    assert.equal((await off.sidecar.metrics.registry.getSingleMetric('gen_ai_client_operation_duration_seconds')!.get()).values.length, 0);
    assert.equal('input_tokens' in off.logs.requests().at(-1)!, false);
  } finally {
    await off.close();
  }
});
