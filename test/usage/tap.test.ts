import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { newRecord } from '../../src/http/context.ts';
import { createGenAiMetrics } from '../../src/usage/metrics.ts';
import { openUsageTap } from '../../src/usage/tap.ts';

const BODY = Buffer.from(JSON.stringify({ id: 'c', model: 'gpt-4o-mini-2024', choices: [{ message: { content: 'x'.repeat(300) } }], usage: { prompt_tokens: 11, completion_tokens: 7 } }));

function meter(headers: Record<string, string>, chunks: Buffer[], registry = new Registry(), metrics = createGenAiMetrics([registry])) {
  const record = newRecord('llm');
  const tap = openUsageTap({ provider: 'openai', method: 'POST', path: '/v1/chat/completions', bodyModel: 'gpt-4o-mini', metrics, record })!;
  tap.head(200, headers);
  for (const c of chunks) tap.chunk(c);
  return { tap, record, registry, metrics };
}

test('a JSON body in one chunk or several is recorded after the response, not at once', async () => {
  for (const cuts of [[BODY.length], [10, BODY.length], [1, 200, 201, BODY.length]]) {
    const chunks = cuts.map((end, i) => BODY.subarray(i === 0 ? 0 : cuts[i - 1]!, end));
    const { tap, record } = meter({ 'content-type': 'application/json', 'content-length': String(BODY.length) }, chunks);
    assert.equal(record.inputTokens, undefined, 'recorded when the relay is over, not before');
    tap.end();
    assert.equal(record.inputTokens, undefined, 'nor at once');
    await tap.settled();
    assert.deepEqual([record.model, record.inputTokens, record.outputTokens], ['gpt-4o-mini', 11, 7], String(cuts));
  }
});

test('a JSON body without Content-Length is read too; one past the bound is skipped', async () => {
  const { tap, record } = meter({ 'content-type': 'application/json; charset=utf-8' }, [BODY.subarray(0, 50), BODY.subarray(50)]);
  tap.end();
  const big = meter({ 'content-type': 'application/json', 'content-length': String(2 << 20) }, [BODY]);
  big.tap.end();
  await Promise.all([tap.settled(), big.tap.settled()]);
  assert.deepEqual([record.inputTokens, record.outputTokens], [11, 7]);
  assert.equal(big.record.inputTokens, undefined);
});

test('series handles survive many operations and a registry reset starts them again', async () => {
  const end = async (t: ReturnType<typeof meter>['tap']) => {
    t.end();
    await t.settled();
  };
  const { tap, registry, metrics } = meter({ 'content-type': 'application/json' }, [BODY]);
  await end(tap);
  await end(meter({ 'content-type': 'application/json' }, [BODY], registry, metrics).tap);
  const count = async () => (await registry.getSingleMetric('gen_ai_client_token_usage')!.get()).values.filter((v) => (v as { metricName?: string }).metricName === 'gen_ai_client_token_usage_count').map((v) => v.value);
  assert.deepEqual(await count(), [2, 2]);
  registry.resetMetrics();
  assert.deepEqual(await count(), []);
  await end(meter({ 'content-type': 'application/json' }, [BODY], registry, metrics).tap);
  assert.deepEqual(await count(), [1, 1], 'handles taken before the reset are not reused');
});
