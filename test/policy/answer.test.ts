// The streamed EvaluateHook answer: the payload is decoded as it arrives and
// only the rest is parsed, whatever the chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAnswerReader } from '../../src/policy/answer.ts';
import { parseHookAnswer } from '../../src/policy/remote.ts';

function read(text: string | Buffer, split: (n: number) => number[] = () => [], reserve?: (n: number) => boolean) {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const reader = createAnswerReader({ maxRestBytes: 4096, reserve });
  let at = 0;
  for (const cut of [...split(bytes.length), bytes.length]) {
    reader.push(bytes.subarray(at, cut));
    at = cut;
  }
  return reader.finish();
}

test('a modify payload is decoded as it streams, split at every byte boundary', () => {
  const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'redacted é 😀' }] }));
  const answer = JSON.stringify({ decision: 'modify', reason: 'r', policy_id: 'p', modified_payload: body.toString('base64') });
  for (let cut = 0; cut <= answer.length; cut++) {
    const { rest, payload } = read(answer, () => [cut]);
    const verdict = parseHookAnswer(JSON.parse(rest), payload);
    assert.equal(verdict.action, 'modify');
    if (verdict.action === 'modify') assert.ok(Buffer.concat(verdict.body).equals(body), `cut at ${cut}`);
    assert.ok(!rest.includes(body.toString('base64')), 'the payload text is not kept');
  }
  // One byte at a time, escapes (\/ and \u) split across chunks, payload before the decision.
  const b64 = Buffer.from('??>>?>?>').toString('base64'); // holds '/' and '+'
  const escaped = `{"modified_payload":"${b64.replace(/\//g, '\\/').replace('P', '\\u0050')}","decision":"modify"}`;
  const { rest, payload } = read(escaped, (n) => Array.from({ length: n - 1 }, (_, i) => i + 1));
  const verdict = parseHookAnswer(JSON.parse(rest), payload);
  assert.ok(verdict.action === 'modify' && Buffer.concat(verdict.body).toString() === '??>>?>?>');
});

test('what the SDK refuses stays refused: bad base64, an empty payload, a payload that does not fit', () => {
  const cases: Array<[string, RegExp]> = [
    ['{"decision":"modify","modified_payload":"abc"}', /not standard base64/],
    ['{"decision":"modify","modified_payload":"ab=c"}', /not standard base64/],
    ['{"decision":"modify","modified_payload":"ab\\nc"}', /not standard base64/],
    ['{"decision":"modify","modified_payload":"a==="}', /not standard base64/],
    ['{"decision":"modify","modified_payload":""}', /modify without modified_payload/],
    ['{"decision":"modify","modified_payload":1}', /modify without modified_payload/],
    ['{"decision":"modify"}', /modify without modified_payload/],
  ];
  for (const [text, error] of cases) {
    const { rest, payload } = read(text);
    assert.throws(() => parseHookAnswer(JSON.parse(rest), payload), error, text);
  }
  const big = `{"decision":"modify","modified_payload":"${Buffer.alloc(3000).toString('base64')}"}`;
  const { rest, payload } = read(big, () => [100, 2000], (n) => n < 1000);
  assert.throws(() => parseHookAnswer(JSON.parse(rest), payload), /does not fit the memory budget/);
  // Bad base64 under an allow is not an error, as before.
  const allow = read('{"decision":"allow","modified_payload":"!!"}');
  assert.deepEqual(parseHookAnswer(JSON.parse(allow.rest), allow.payload), { action: 'allow', policyId: '', reason: '' });
});

test('nested payload-named keys and escaped key spellings are read as JSON.parse reads them', () => {
  const nested = read('{"decision":"allow","x":{"modified_payload":"QQ=="},"y":["modified_payload","QQ=="]}');
  assert.equal(nested.payload, undefined, 'only the top-level member streams');
  assert.deepEqual(JSON.parse(nested.rest).x, { modified_payload: 'QQ==' });
  // An escaped key is not recognised while streaming: it stays in the rest, and is decoded from there.
  const spelled = read('{"decision":"modify","modified\\u005fpayload":"QQ=="}');
  const verdict = parseHookAnswer(JSON.parse(spelled.rest), spelled.payload);
  assert.ok(verdict.action === 'modify' && Buffer.concat(verdict.body).toString() === 'A');
});

test('the rest is bounded; invalid JSON around a payload is still not JSON', () => {
  assert.throws(() => read(`{"decision":"allow","reason":"${'x'.repeat(5000)}"}`), /answer too large/);
  const { rest } = read('{"decision":"modify","modified_payload":"QQ==",}');
  assert.throws(() => JSON.parse(rest));
});
