import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { LineSink, createLogger, isoTime, type SinkFs } from '../src/log.ts';

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

/** A node:fs stand-in whose writes complete when the test says, by default in full. */
function heldFs(): SinkFs & { calls: Array<{ bytes: Buffer; done: (err: NodeJS.ErrnoException | null, n: number) => void }>; written: Buffer[]; completeAll(): void } {
  const calls: Array<{ bytes: Buffer; done: (err: NodeJS.ErrnoException | null, n: number) => void }> = [];
  const written: Buffer[] = [];
  return {
    calls,
    written,
    write(_fd, buffer, offset, length, _pos, done) {
      calls.push({ bytes: Buffer.from(buffer.subarray(offset, offset + length)), done });
    },
    writeSync(_fd, buffer, offset, length) {
      written.push(Buffer.from(buffer.subarray(offset, offset + length)));
      return length;
    },
    completeAll() {
      while (calls.length > 0) {
        const call = calls.shift()!;
        written.push(call.bytes);
        call.done(null, call.bytes.length);
      }
    },
  };
}

const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString();

test('LineSink writes every line whole and in order to a real file, multi-byte text and lines larger than a buffer included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fo-sink-'));
  const file = join(dir, 'out.log');
  const fd = openSync(file, 'w');
  try {
    const sink = new LineSink({ fd, bufferBytes: 4096 });
    const lines: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      const body = i % 97 === 0 ? 'ü€😀'.repeat(2_000 + i) : i % 13 === 0 ? 'x'.repeat(4_000) : `line ${i} ${'é'.repeat(i % 50)}`;
      lines.push(`{"i":${i},"s":"${body}"}\n`);
      assert.equal(sink.write(lines.at(-1)!), true);
    }
    await new Promise<void>((resolve, reject) => sink.flush((err) => (err ? reject(err) : resolve())));
    assert.equal(readFileSync(file, 'utf8'), lines.join(''));
    assert.equal(sink.dropped, 0);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LineSink writes a lone line once it is flushMs old, and a half-full buffer at once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const fs = heldFs();
  const sink = new LineSink({ fs, bufferBytes: 1024, flushMs: 25 });
  sink.write('{"a":1}\n');
  assert.equal(fs.calls.length, 0, 'a lone line waits for company');
  t.mock.timers.tick(24);
  assert.equal(fs.calls.length, 0);
  t.mock.timers.tick(1);
  assert.equal(fs.calls.length, 1, 'and is written when flushMs has passed');
  fs.completeAll();
  // 600 bytes fill more than half of a 1 KiB buffer: written without waiting for the timer.
  sink.write(`${'y'.repeat(599)}\n`);
  assert.equal(fs.calls.length, 1);
  assert.equal(text(fs.calls.map((c) => c.bytes)), `${'y'.repeat(599)}\n`);
});

test('LineSink holds at most maxPendingBytes while the destination does not read, drops and counts the rest, and says so once it reads again', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const fs = heldFs();
  const sink = new LineSink({ fs, bufferBytes: 1024, maxPendingBytes: 8 * 1024 });
  const accepted: string[] = [];
  let refused = 0;
  for (let i = 0; i < 1_000; i++) {
    const line = `{"n":${i},"pad":"${'p'.repeat(80)}"}\n`;
    if (sink.write(line)) accepted.push(line);
    else refused++;
  }
  assert.ok(accepted.length > 0 && refused > 0);
  assert.equal(sink.dropped, refused);
  const held = accepted.join('').length;
  assert.ok(held <= 8 * 1024, `held ${held} bytes`);
  // The reader comes back: everything accepted is written, in order, then one line counts the drops.
  for (let round = 0; round < 100 && fs.calls.length > 0; round++) {
    fs.completeAll();
    t.mock.timers.tick(25);
  }
  const out = text(fs.written).split('\n').filter(Boolean);
  assert.deepEqual(out.slice(0, accepted.length), accepted.map((l) => l.trimEnd()));
  const note = JSON.parse(out[accepted.length]!) as Record<string, unknown>;
  assert.equal(note.level, 'warn');
  assert.equal(note.dropped_lines, refused);
  assert.equal(out.length, accepted.length + 1);
});

test('LineSink retries a destination that answers EAGAIN and finishes short writes, losing nothing', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const out: Buffer[] = [];
  let calls = 0;
  const fs: SinkFs = {
    write(_fd, buffer, offset, length, _pos, done) {
      calls++;
      if (calls % 3 === 1) return queueMicrotask(() => done(Object.assign(new Error('again'), { code: 'EAGAIN' }), 0));
      // Every other write takes only part of what it was given.
      const n = Math.max(1, Math.floor(length / 2));
      out.push(Buffer.from(buffer.subarray(offset, offset + n)));
      queueMicrotask(() => done(null, n));
    },
    writeSync: () => assert.fail('not at exit'),
  };
  const sink = new LineSink({ fs, bufferBytes: 512 });
  const lines = Array.from({ length: 200 }, (_, i) => `{"i":${i}}\n`);
  for (const line of lines) sink.write(line);
  let flushed = false;
  sink.flush(() => {
    flushed = true;
  });
  return (async () => {
    for (let round = 0; round < 10_000 && !flushed; round++) {
      await Promise.resolve();
      t.mock.timers.tick(10);
    }
    assert.ok(flushed);
    assert.equal(text(out), lines.join(''));
  })();
});

test('LineSink gives up on a destination that is gone (EPIPE): later lines are dropped and counted, nothing throws', async () => {
  const fs: SinkFs = {
    write(_fd, _b, _o, _l, _p, done) {
      queueMicrotask(() => done(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }), 0));
    },
    writeSync: () => assert.fail('not at exit'),
  };
  const sink = new LineSink({ fs });
  sink.write('{"a":1}\n');
  const err = await new Promise<Error | undefined>((resolve) => sink.flush(resolve));
  assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'EPIPE');
  assert.equal(sink.write('{"b":2}\n'), false);
  assert.equal(sink.dropped, 1);
  sink.flushSync();
});

test('LineSink.flushSync writes what is held, after the write already in flight', () => {
  const fs = heldFs();
  const sink = new LineSink({ fs, bufferBytes: 64 });
  sink.write(`${'a'.repeat(40)}\n`); // half full: handed to the (held) async write
  assert.equal(fs.calls.length, 1);
  sink.write('{"b":2}\n');
  sink.write('{"c":3}\n');
  sink.flushSync();
  assert.equal(text(fs.written), '{"b":2}\n{"c":3}\n');
  // The write in flight completes afterwards: the bound still counts what waits, no more, no less.
  fs.completeAll();
  const bounded = new LineSink({ fs, bufferBytes: 64, maxPendingBytes: 100 });
  bounded.write(`${'d'.repeat(40)}\n`); // in flight
  bounded.write('{"e":5}\n');
  bounded.flushSync();
  fs.completeAll();
  let accepted = 0;
  for (let i = 0; i < 50; i++) if (bounded.write('{"f":6}\n')) accepted++;
  assert.equal(accepted, 12, 'as many 8-byte lines as fit under 100 bytes, counted from zero');
});

test('a process that exits straight after logging still writes every line (the exit flush in main.ts)', () => {
  const script = `
    import { LineSink } from ${JSON.stringify(join(import.meta.dirname, '../src/log.ts'))};
    const sink = new LineSink();
    process.once('exit', () => sink.flushSync());
    for (let i = 0; i < 3000; i++) sink.write(JSON.stringify({ i }) + '\\n');
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 1 << 24 });
  assert.deepEqual(out.trimEnd().split('\n').map((l) => (JSON.parse(l) as { i: number }).i), Array.from({ length: 3000 }, (_, i) => i));
});

test('LineSink refuses options that are not positive integers', () => {
  assert.throws(() => new LineSink({ bufferBytes: 0 }), /bufferBytes must be a positive integer, got 0/);
  assert.throws(() => new LineSink({ maxPendingBytes: 1.5 }), /maxPendingBytes/);
  assert.throws(() => new LineSink({ flushMs: -1 }), /flushMs/);
});
