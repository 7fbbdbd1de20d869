import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, isoTime } from '../src/log.ts';

test('isoTime writes what pino\'s isoTime does (Date#toISOString) for every millisecond, across minutes, in any order', () => {
  const reference = (ms: number): string => `,"time":"${new Date(ms).toISOString()}"`;
  const edges = [0, 1, 9, 10, 99, 100, 999, 1000, 9_999, 10_000, 59_999, 60_000, 60_001, 3_599_999, 86_399_999, 1.7e12, 253_402_300_799_999, 253_402_300_800_000, -1, -59_999, -60_000, -86_400_001, 8.64e15, -8.64e15];
  for (const ms of edges) assert.equal(isoTime(ms), reference(ms), String(ms));
  // A second's worth of consecutive milliseconds over a minute boundary, then jumps back and forth.
  for (let ms = 1.7e12 - 500; ms < 1.7e12 + 500; ms++) assert.equal(isoTime(ms), reference(ms));
  for (let i = 0; i < 20_000; i++) {
    const ms = Math.floor(Math.random() * 4e12) - 1e12;
    assert.equal(isoTime(ms), reference(ms));
  }
});

test('log lines carry the current time in ISO form', () => {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
  const before = Date.now();
  createLogger({ level: 'info', destination }).info('hello');
  const after = Date.now();
  const { time } = JSON.parse(lines[0]!) as { time: string };
  assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Date.parse(time) >= before && Date.parse(time) <= after);
});
