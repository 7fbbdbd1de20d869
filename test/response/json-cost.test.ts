// Issue 20's rule on the response side: a JSON answer the response rules read is
// parsed into a tree, and that tree's memory is charged to the request's share
// before the parse (parseCostBytes), so one answer cannot take more than the
// budget allows however its bytes are shaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import OpenAI from 'openai';
import { checkJsonBody, governJsonResponse, parseCostBytes } from '../../src/response/json.ts';
import { startUpstream, sendJson } from '../helpers/upstream.ts';
import { startTestSidecar, TEST_API_KEY } from '../helpers/sidecar.ts';
import { issueRules } from './harness.ts';
import { chatCompletionBody, SAFE, WITH_KEY } from './streams.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap taken by parsing `text` and keeping the result (what the parse's garbage adds counts too: no collection in between). */
function parseHeapBytes(body: Buffer): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const doc: unknown = JSON.parse(body.toString('utf8'));
  const after = process.memoryUsage().heapUsed;
  assert.ok(doc !== undefined);
  return after - before;
}

const N = 40_000;
/** The costliest shapes per byte we know of, and ordinary answers. */
const SHAPES: Record<string, () => string> = {
  'empty objects': () => `[${'{},'.repeat(N)}{}]`,
  'empty arrays': () => `[${'[],'.repeat(N)}[]]`,
  'two-character strings': () => `[${Array.from({ length: N }, (_, i) => `"${String.fromCharCode(97 + (i % 26), 97 + ((i / 26) % 26))}"`).join(',')}]`,
  'members with unique keys': () => `{${Array.from({ length: N }, (_, i) => `"k${i}":0`).join(',')}}`,
  'boxed numbers in objects': () => `[${Array.from({ length: N }, (_, i) => `{"a":${i}.5}`).join(',')}]`,
  'mixed numbers': () => `[${Array.from({ length: N }, (_, i) => (i % 2 ? `${i}.25` : `"${i}"`)).join(',')}]`,
  'nested small objects': () => `[${Array.from({ length: N / 4 }, (_, i) => `{"a":{"b":[${i},{"c":null}]},"d":true}`).join(',')}]`,
  'non-ASCII text': () => JSON.stringify({ content: 'prüfen ✓ 検査 '.repeat(N) }),
  'a chat completion with tool calls': () => JSON.stringify(chatCompletionBody('text '.repeat(N), Array.from({ length: 50 }, () => SAFE))),
};

for (const [name, make] of Object.entries(SHAPES)) {
  test(`parseCostBytes bounds what JSON.parse takes: ${name}`, () => {
    const body = Buffer.from(make());
    // The largest of a few runs: a collection inside the parse can only make a run look cheaper.
    const taken = Math.max(parseHeapBytes(body), parseHeapBytes(body), parseHeapBytes(body));
    const bound = parseCostBytes(body);
    assert.ok(taken <= bound, `${name}: the parse took ${taken} bytes, the bound says ${bound} (${(taken / body.length).toFixed(1)}x the body)`);
  });
}

test('governJsonResponse charges the parse, and a rewrite, before it makes them; short of either it answers body_budget_exhausted', () => {
  const clean = Buffer.from(JSON.stringify(chatCompletionBody('ok', [SAFE])));
  const secret = Buffer.from(JSON.stringify(chatCompletionBody('ok', [WITH_KEY])));
  const charged: number[] = [];
  const allowed = governJsonResponse('openai', clean, issueRules, (bytes) => (charged.push(bytes), true));
  assert.equal(allowed.action, 'allow');
  assert.deepEqual(charged, [parseCostBytes(clean)], 'one charge: the parse');

  assert.deepEqual(governJsonResponse('openai', clean, issueRules, () => false), { action: 'error', code: 'body_budget_exhausted' });

  charged.length = 0;
  const modified = governJsonResponse('openai', secret, issueRules, (bytes) => (charged.push(bytes), true));
  assert.equal(modified.action, 'modify');
  assert.equal(charged.length, 2, 'the parse, then the rewrite');
  assert.ok(charged[1]! >= 5 * (modified as { body: Buffer }).body.length, 'the rewrite is charged at least its text and bytes');
  // Room for the parse, not for the rewrite.
  let calls = 0;
  assert.deepEqual(governJsonResponse('openai', secret, issueRules, () => ++calls === 1), { action: 'error', code: 'body_budget_exhausted' });

  assert.equal(checkJsonBody(clean, () => true), 'json');
  assert.equal(checkJsonBody(Buffer.from('{"a":'), () => true), 'response_unreadable');
  assert.equal(checkJsonBody(clean, () => false), 'body_budget_exhausted');
});

test('end to end: an answer whose tree does not fit the memory budget is a 503 body_budget_exhausted, and the next ordinary answer passes', async () => {
  const upstream = await startUpstream();
  // 1 MiB of empty objects beside an ordinary completion: its bytes fit the 16 MiB budget, its tree (~65 MiB bound) does not.
  const hostile = { ...chatCompletionBody('ok', [SAFE]), padding: JSON.parse(`[${'{},'.repeat(349_000)}{}]`) as unknown };
  const sidecar = await startTestSidecar({
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_FILE: new URL('../../examples/policy.yaml', import.meta.url).pathname,
    FIRSTOPS_MEMORY_BUDGET_BYTES: String(16 << 20),
  });
  try {
    const client = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
    upstream.handle((_req, res) => sendJson(res, 200, hostile));
    const since = sidecar.logs.lines.length;
    const refused = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'go' }] }).then(
      () => assert.fail('the answer was relayed'),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof OpenAI.APIError);
    assert.equal(refused.status, 503);
    assert.match(String(refused.message), /no memory left for this body/);

    upstream.handle((_req, res) => sendJson(res, 200, chatCompletionBody('fine', [SAFE])));
    const line = await sidecar.logs.waitFor('request', since);
    assert.equal(line.status, 503);
    assert.equal(line.code, 'body_budget_exhausted');
    const ok = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'go' }] });
    assert.equal(ok.choices[0]!.message.tool_calls?.length, 1);
  } finally {
    await sidecar.close();
    await upstream.close();
  }
});
