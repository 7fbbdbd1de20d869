import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHistory, type RequestLine } from '../../src/debug/history.ts';

const line = (i: number, over: Partial<RequestLine> = {}): RequestLine => ({
  route: 'llm', provider: i % 2 ? 'openai' : 'anthropic', method: 'POST', path: `/llm/x/${i}`, status: i % 3 ? 200 : 403,
  duration_ms: 1, decision: i % 3 ? 'allow' : 'deny', policy_id: undefined, source: undefined, reason: undefined,
  code: undefined, response_decision: undefined, response_policy_id: undefined, response_source: undefined, bytes_in: 1, bytes_out: 1, ...over,
});

test('the ring keeps the last N, newest first, and never grows past N', () => {
  const history = createHistory(5);
  assert.deepEqual(history.list(), []);
  for (let i = 0; i < 3; i++) history.push(line(i), Date.now());
  assert.deepEqual(history.list().map((e) => e.path), ['/llm/x/2', '/llm/x/1', '/llm/x/0']);
  for (let i = 3; i < 1003; i++) history.push(line(i), Date.now());
  assert.equal(history.size, 5);
  assert.deepEqual(history.list().map((e) => e.path), ['/llm/x/1002', '/llm/x/1001', '/llm/x/1000', '/llm/x/999', '/llm/x/998']);
  assert.ok(history.list().every((e) => !Number.isNaN(Date.parse(e.time))));
});

test('filters combine, and limit counts matches', () => {
  const history = createHistory(100);
  for (let i = 0; i < 100; i++) history.push(line(i), Date.now());
  const denied = history.list({ status: 403 });
  assert.equal(denied.length, 34);
  assert.ok(denied.every((e) => e.decision === 'deny'));
  const some = history.list({ decision: 'allow', provider: 'openai', limit: 3 });
  assert.deepEqual(some.map((e) => e.path), ['/llm/x/97', '/llm/x/95', '/llm/x/91']);
});

test('a capacity that is not a positive integer is refused when the ring is built', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => createHistory(bad), RangeError);
});
