import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createJsonCollector, createSseScanner, eventData, findUsageKey, usagePattern } from '../../src/usage/scan.ts';

const USAGE = usagePattern(['usage']);

test('a usage key counts only with an object value, outside strings', () => {
  assert.equal(findUsageKey('{"usage":{"a":1}}', USAGE), 1);
  assert.equal(findUsageKey('{"x":1, "usage" :\n {}}', USAGE), 8);
  assert.equal(findUsageKey('{"usage":null,"choices":[]}', USAGE), -1);
  assert.equal(findUsageKey('{"text":"say \\"usage\\": {x}"}', USAGE), -1);
  assert.equal(findUsageKey('{"usage":null,"z":{"usage":{}}}', USAGE), 19);
  assert.equal(findUsageKey('{"a":1,"usageMetadata":{}}', usagePattern(['usage', 'usageMetadata'])), 7);
});

test('SSE: any spacing around the colon is found; null usage and text are not', () => {
  const seen: string[] = [];
  const scanner = createSseScanner(USAGE, (d) => seen.push(d), undefined, 0);
  scanner.push(Buffer.from('data: {"usage":null}\n\ndata: {"t":"say \\"usage\\":{}"}\n\ndata: {"usage": {"a": 1}}\n\ndata: {"usage":{"b":2}}\n\n'));
  assert.deepEqual(seen, ['{"usage": {"a": 1}}', '{"usage":{"b":2}}']);
});

test('SSE data lines: one optional space stripped, several lines joined, other fields ignored', () => {
  assert.equal(eventData('event: message_delta\ndata: {"a":\ndata:1}\nid: 3'), '{"a":\n1}');
  assert.equal(eventData(':comment\r\ndata:x'), 'x');
  assert.equal(eventData('event: ping'), '');
});

const STREAM = [
  'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n',
  ': keep-alive\n\n',
  'event: x\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n',
  'data: [DONE]\n\n',
].join('');

test('SSE: a usage event is found however the stream is cut, and only it is handed over', () => {
  const bytes = Buffer.from(STREAM);
  for (const batch of [0, 7, 1 << 14]) {
    for (let cut = 1; cut < bytes.length; cut++) {
      const seen: string[] = [];
      const scanner = createSseScanner(USAGE, (d) => seen.push(d), undefined, batch);
      scanner.push(bytes.subarray(0, cut));
      scanner.push(bytes.subarray(cut));
      scanner.end();
      assert.deepEqual(seen, ['{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}'], `batch ${batch}, cut at ${cut}`);
    }
    const oneByOne: string[] = [];
    const scanner = createSseScanner(USAGE, (d) => oneByOne.push(d), undefined, batch);
    for (const b of bytes) scanner.push(Buffer.from([b]));
    scanner.end();
    assert.equal(oneByOne.length, 1, `byte by byte, batch ${batch}`);
  }
});

test('SSE: searched once a batch has arrived, not per chunk; a batch ends at the last complete event', () => {
  const seen: string[] = [];
  const scanner = createSseScanner(USAGE, (d) => seen.push(d), undefined, 64);
  scanner.push(Buffer.from('data: {"usage":{"a":1}}\n\n'));
  assert.equal(seen.length, 0, 'below the batch size nothing is searched yet');
  scanner.push(Buffer.from(`data: {"x":"${'y'.repeat(40)}"}\n\ndata: {"usage":{"b"`));
  assert.deepEqual(seen, ['{"usage":{"a":1}}'], 'the incomplete event waits');
  scanner.push(Buffer.from(':2}}\n\n'));
  scanner.end();
  assert.deepEqual(seen, ['{"usage":{"a":1}}', '{"usage":{"b":2}}']);
});

test('SSE, batch 0: CRLF and CR line ends; an event handed over as soon as it completes; a final event without a blank line', () => {
  const seen: string[] = [];
  const scanner = createSseScanner(USAGE, (d) => seen.push(d), undefined, 0);
  scanner.push(Buffer.from('data: {"usage":{"a":1}}\r\n\r\ndata: {"usage":{"b":2}}\r\r'));
  assert.equal(seen.length, 2);
  scanner.push(Buffer.from('data: {"usage":{"c":3}}'));
  assert.equal(seen.length, 2);
  scanner.end();
  assert.deepEqual(seen, ['{"usage":{"a":1}}', '{"usage":{"b":2}}', '{"usage":{"c":3}}']);
});

test('SSE: an event past the bound is dropped, later ones still count', () => {
  for (const batch of [0, 1 << 14]) {
    const seen: string[] = [];
    const scanner = createSseScanner(USAGE, (d) => seen.push(d), 64, batch);
    scanner.push(Buffer.from(`data: {"usage":{"big":"${'x'.repeat(100)}`));
    scanner.push(Buffer.from('"}}\n\ndata: {"usage":{"ok":1}}\n\n'));
    scanner.end();
    assert.ok(seen.includes('{"usage":{"ok":1}}'), `batch ${batch}`);
    assert.ok(!seen.some((d) => d.includes('big')), `batch ${batch}`);
  }
});

test('JSON: collected up to the bound, handed over only when it holds usage', () => {
  const small = createJsonCollector(['usage'], 100);
  small.push(Buffer.from('{"id":1,'));
  small.push(Buffer.from('"usage":{"prompt_tokens":2}}'));
  assert.equal(small.body(), '{"id":1,"usage":{"prompt_tokens":2}}');
  const none = createJsonCollector(['usage'], 100);
  none.push(Buffer.from('{"error":{"message":"no"}}'));
  assert.equal(none.body(), undefined);
  const big = createJsonCollector(['usage'], 10);
  big.push(Buffer.from('{"usage":{"a":1}}'));
  assert.equal(big.skipped, true);
  assert.equal(big.body(), undefined);
});
