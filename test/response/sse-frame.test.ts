import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSseFramer, readSseFields, rebuildSseEvent } from '../../src/response/sse-frame.ts';
import { splits } from './harness.ts';

function frame(chunks: readonly Buffer[]): string[] {
  const framer = createSseFramer();
  const events: string[] = [];
  for (const c of chunks) framer.push(c, (raw) => events.push(raw.toString('latin1')));
  framer.end((raw) => events.push(raw.toString('latin1')));
  return events;
}

const MIXED = 'event: a\ndata: 1\n\ndata: 2\r\n\r\ndata: 3\r\rdata: x\r\ndata: y\n\r\n: comment\ndata: é🌍\n\n\n';
const EXPECTED = ['event: a\ndata: 1\n\n', 'data: 2\r\n\r\n', 'data: 3\r\r', 'data: x\r\ndata: y\n\r\n', ': comment\ndata: é🌍\n\n', '\n'].map((s) => Buffer.from(s, 'utf8').toString('latin1'));

test('events are cut at blank lines of every line-end kind, the same at every split', () => {
  const bytes = Buffer.from(MIXED, 'utf8');
  assert.deepEqual(frame([bytes]), EXPECTED);
  for (const chunks of splits(bytes)) assert.deepEqual(frame(chunks), EXPECTED, `split ${chunks.map((c) => c.length).join('+')}`);
});

test('a blank line ended by CR at a chunk end waits for the next byte', () => {
  const framer = createSseFramer();
  const events: string[] = [];
  framer.push(Buffer.from('data: 1\r\r'), (raw) => events.push(raw.toString()));
  assert.equal(events.length, 0, 'an LF may still follow');
  framer.push(Buffer.from('\ndata: 2\n\n'), (raw) => events.push(raw.toString()));
  assert.deepEqual(events, ['data: 1\r\r\n', 'data: 2\n\n']);
});

test('an event inside one chunk is a view of it, not a copy; an unterminated last event comes at the end', () => {
  const chunk = Buffer.from('data: 1\n\ndata: 2');
  const framer = createSseFramer();
  const seen: Buffer[] = [];
  framer.push(chunk, (raw) => seen.push(raw));
  assert.equal(seen[0]!.buffer, chunk.buffer);
  assert.equal(framer.pendingBytes, 7);
  framer.end((raw) => seen.push(raw));
  assert.equal(seen[1]!.toString(), 'data: 2');
});

test('fields: data lines joined, one space dropped, comments and other fields ignored, a BOM at the start stripped', () => {
  assert.deepEqual(readSseFields(Buffer.from('event: x\nid: 3\ndata:a\ndata:  b\n: c\ndata\n\n'), false), { name: 'x', data: 'a\n b\n' });
  assert.deepEqual(readSseFields(Buffer.from('\ufeffdata: {}\n\n'), true), { name: undefined, data: '{}' });
  assert.deepEqual(readSseFields(Buffer.from('\ufeffdata: {}\n\n'), false), { name: undefined, data: undefined });
  assert.deepEqual(readSseFields(Buffer.from(': ping\n\n'), false), { name: undefined, data: undefined });
});

test('rebuild keeps the other lines in place and puts one data line', () => {
  assert.equal(rebuildSseEvent(Buffer.from('event: e\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\n'), '{"x":1}').toString(), 'event: e\nid: 1\ndata: {"x":1}\n\n');
});
