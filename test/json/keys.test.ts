// The sidecar's duplicate-key detector agrees with a slow reference on
// generated JSON (escapes, nesting, keys that look like values), stays linear
// on a large body and handles any depth without recursion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasDuplicateKeys, jsonShapeProblem } from '../../src/json/keys.ts';
import { hasDuplicateKeys as reference } from '../fuzz/json.ts';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('agrees with the reference on 5,000 generated documents', () => {
  const rand = prng(Number(process.env.FUZZ_SEED ?? 7));
  const keys = ['a', 'b', '\\u0061', 'a\\"', 'a\\\\', '\\\\', ':', ',', '{', '}', '[', 'é', '\\ud83d\\ude00'];
  const gen = (depth: number): string => {
    const r = rand();
    if (depth > 4 || r < 0.3) return [() => '1', () => '"x\\"y"', () => 'null', () => `"${keys[Math.floor(rand() * keys.length)]}"`, () => '"\\\\"'][Math.floor(rand() * 5)]!();
    if (r < 0.55) return `[${Array.from({ length: Math.floor(rand() * 4) }, () => gen(depth + 1)).join(' , ')}]`;
    const n = Math.floor(rand() * 4);
    return `{ ${Array.from({ length: n }, () => `"${keys[Math.floor(rand() * keys.length)]}" : ${gen(depth + 1)}`).join(',\n')} }`;
  };
  let duplicates = 0;
  for (let i = 0; i < 5000; i++) {
    const doc = gen(0);
    JSON.parse(doc); // only valid JSON is ever checked
    const want = reference(doc);
    if (want) duplicates++;
    assert.equal(hasDuplicateKeys(doc), want, doc);
  }
  assert.ok(duplicates > 100, `only ${duplicates} documents with duplicates were generated`);
});

test('escaped and unescaped spellings of one key are one key', () => {
  assert.equal(hasDuplicateKeys('{"model":"a","mod\\u0065l":"b"}'), true);
  assert.equal(hasDuplicateKeys('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'), false);
  assert.equal(hasDuplicateKeys('{"x":"\\"a\\":1,\\"a\\":2"}'), false);
  assert.equal(hasDuplicateKeys('{"x\\\\":1,"x\\\\":2}'), true);
});

test('any depth, linear time', () => {
  const depth = 1_000_000;
  assert.equal(hasDuplicateKeys(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`), false);
  assert.equal(hasDuplicateKeys(`${'['.repeat(depth)}${']'.repeat(depth)}`), false);
  const big = JSON.stringify({ model: 'm', messages: Array.from({ length: 20_000 }, (_, i) => ({ role: 'user', content: `message ${i} ${'x'.repeat(400)} \\"quoted\\"` })) });
  const started = performance.now();
  assert.equal(hasDuplicateKeys(big), false);
  const ms = performance.now() - started;
  assert.ok(ms < 2000, `${(big.length / 1e6).toFixed(1)} MB took ${ms} ms`);
});

test('depth limit counts objects and arrays alike', () => {
  assert.equal(jsonShapeProblem(`${'['.repeat(3)}${']'.repeat(3)}`, 3), undefined);
  assert.equal(jsonShapeProblem(`${'['.repeat(4)}${']'.repeat(4)}`, 3), 'nested too deeply');
  assert.equal(jsonShapeProblem('{"a":[{"b":[]}]}', 4), undefined);
  assert.equal(jsonShapeProblem('{"a":[{"b":[{}]}]}', 4), 'nested too deeply');
  assert.equal(jsonShapeProblem('{"a":"[[[[[[[[[[["}', 2), undefined);
});
