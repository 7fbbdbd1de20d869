import { write as fsWrite, writeSync as fsWriteSync } from 'node:fs';
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Fields that must never reach a log line, whoever passes them. Code in this
 * project logs explicit fields only (never whole header or body objects); the
 * redaction list is the second line of defence.
 */
const REDACT_PATHS = [
  'authorization', 'Authorization', 'dpop', 'DPoP', 'cookie', 'x-api-key',
  'headers', '*.headers', 'body', '*.body', 'privateKey', '*.privateKey', 'proof', 'bearer',
];

const CENSOR = '[redacted]';
/** The same names without the `*.` paths, which only look inside nested objects. */
const SCALAR_REDACT_PATHS = REDACT_PATHS.filter((path) => !path.startsWith('*.'));

/**
 * pino's `isoTime` (`,"time":"<Date#toISOString()>"`) without a Date per
 * line: the text up to the minute is kept, and only the seconds and
 * milliseconds are written for each line (a Date and its ISO string cost
 * ~0.5 us hot and several times that cold, once per request line).
 */
let minuteStart = Number.NaN;
let minutePrefix = '';
export function isoTime(now = Date.now()): string {
  let ms = now - minuteStart;
  if (!(ms >= 0 && ms < 60_000)) {
    minuteStart = now - (((now % 60_000) + 60_000) % 60_000);
    const iso = new Date(minuteStart).toISOString();
    // `…THH:MM:` (the seconds and milliseconds of a minute's start are 00.000).
    minutePrefix = `,"time":"${iso.slice(0, iso.length - 7)}`;
    ms = now - minuteStart;
  }
  const seconds = (ms / 1000) | 0;
  const millis = ms - seconds * 1000;
  return `${minutePrefix}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z"`;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where lines go: main.ts passes a LineSink on stdout; tests pass a stream they can parse. */
  destination: DestinationStream;
  /** Static fields bound to every line. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'firstops-sidecar', ...options.base },
      timestamp: () => isoTime(),
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    options.destination,
  );
}

/**
 * A child for lines whose fields are all scalars named in code (the one line
 * per request): it keeps every top-level name in the redaction list but not
 * the `*.` paths, which cannot match a scalar and made redaction the costliest
 * part of writing that line (about 5 us of the ~90 us a request costs).
 */
export function scalarChild(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child(bindings, { redact: { paths: SCALAR_REDACT_PATHS, censor: CENSOR } });
}

/** The part of node:fs a LineSink writes with (tests pass their own). */
export interface SinkFs {
  write(fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (err: NodeJS.ErrnoException | null, written: number) => void): void;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number): number;
}

export interface LineSinkOptions {
  /** Default 1 (stdout). */
  fd?: number;
  /** Size of each buffer lines are encoded into; a buffer half full is written at once. Default 64 KiB. */
  bufferBytes?: number;
  /** Bytes waiting to be written past which new lines are dropped (and counted) instead of held. Default 8 MiB. */
  maxPendingBytes?: number;
  /** The longest a line waits for more to join it. Default 25 ms. */
  flushMs?: number;
  fs?: SinkFs;
}

/** A buffer being filled or waiting to be written: `bytes` of it are lines, the first `sent` of those are written. */
interface Chunk {
  readonly buffer: Buffer;
  bytes: number;
  sent: number;
}

const EAGAIN_RETRY_MS = 10;
/** How long flushSync keeps retrying a destination that answers EAGAIN (a full non-blocking pipe), in total. */
const FLUSH_SYNC_PATIENCE_MS = 2_000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`line sink ${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Where the log's lines go: each line is encoded straight into a buffer,
 * and a buffer is written with one `fs.write` once it is half full or its
 * first line is `flushMs` old, one write at a time, in order. pino's default
 * destination (sonic-boom) appended every line to one string and measured
 * that string's byte length on every line, then wrote about every 4 KB:
 * under load that was a thread-pool write and two context switches every few
 * requests (docs/performance.md, "Fourth round"). Memory is bounded: past
 * `maxPendingBytes` waiting (a reader that stopped reading), lines are
 * dropped and counted, and one line says how many once writing resumes.
 * `flushSync` writes what is left (main.ts calls it at exit).
 */
export class LineSink implements DestinationStream {
  readonly #fd: number;
  readonly #size: number;
  readonly #maxPending: number;
  readonly #flushMs: number;
  readonly #fs: SinkFs;
  /** Sealed chunks in write order; the first is being written while `#writing`. */
  readonly #queue: Chunk[] = [];
  readonly #spare: Buffer[] = [];
  #current: Chunk;
  #pending = 0;
  #writing = false;
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #droppedTotal = 0;
  #broken = false;
  #flushed: Array<(err?: Error) => void> = [];

  constructor(options: LineSinkOptions = {}) {
    this.#fd = options.fd ?? 1;
    this.#size = positiveInteger('bufferBytes', options.bufferBytes ?? 64 * 1024);
    this.#maxPending = positiveInteger('maxPendingBytes', options.maxPendingBytes ?? 8 * 1024 * 1024);
    this.#flushMs = positiveInteger('flushMs', options.flushMs ?? 25);
    this.#fs = options.fs ?? { write: fsWrite, writeSync: fsWriteSync };
    this.#current = { buffer: Buffer.allocUnsafe(this.#size), bytes: 0, sent: 0 };
  }

  /** Lines dropped since start because the destination did not keep up (or failed). */
  get dropped(): number {
    return this.#droppedTotal;
  }

  write(line: string): boolean {
    if (this.#broken) {
      this.#droppedTotal++;
      return false;
    }
    if (this.#pending + line.length > this.#maxPending) {
      this.#dropped++;
      this.#droppedTotal++;
      return false;
    }
    this.#append(line);
    if (this.#current.bytes * 2 >= this.#size) this.#seal();
    if (!this.#writing) {
      if (this.#queue.length > 0) this.#next();
      else if (!this.#timer) this.#arm();
    }
    return true;
  }

  /** Writes everything held now; `done` runs once it is written (or the destination failed). */
  flush(done?: (err?: Error) => void): void {
    this.#seal();
    if (this.#queue.length === 0 || this.#broken) {
      done?.();
      return;
    }
    if (done) this.#flushed.push(done);
    if (!this.#writing) this.#next();
  }

  /**
   * Writes everything held now, synchronously (at exit). A write already
   * handed to the thread pool is not waited for: it went first.
   */
  flushSync(): void {
    this.#seal();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    // The chunk in flight (if any) is the thread pool's; the rest is written here, in order.
    const from = this.#writing ? 1 : 0;
    let waited = 0;
    for (let i = from; i < this.#queue.length && !this.#broken; i++) {
      const chunk = this.#queue[i]!;
      while (chunk.sent < chunk.bytes) {
        try {
          chunk.sent += this.#fs.writeSync(this.#fd, chunk.buffer, chunk.sent, chunk.bytes - chunk.sent);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waited >= FLUSH_SYNC_PATIENCE_MS) {
            this.#broken = true;
            break;
          }
          Atomics.wait(sleepCell, 0, 0, EAGAIN_RETRY_MS);
          waited += EAGAIN_RETRY_MS;
        }
      }
    }
    this.#queue.splice(from);
    // What is still counted is the chunk in flight, if any: its callback takes it off.
    const inFlight = this.#queue[0];
    this.#pending = inFlight ? inFlight.bytes - inFlight.sent : 0;
  }

  #append(line: string): void {
    let current = this.#current;
    const free = this.#size - current.bytes;
    // UTF-16 to UTF-8 is at most 3 bytes a code unit: measured exactly only when that bound does not fit.
    if (line.length * 3 > free && Buffer.byteLength(line) > free) {
      this.#seal();
      current = this.#current;
      if (Buffer.byteLength(line) > this.#size) {
        // A line larger than a buffer is a chunk of its own.
        const buffer = Buffer.from(line);
        this.#queue.push({ buffer, bytes: buffer.length, sent: 0 });
        this.#pending += buffer.length;
        return;
      }
    }
    const bytes = current.buffer.write(line, current.bytes);
    current.bytes += bytes;
    this.#pending += bytes;
  }

  /** Moves the current buffer, if it holds anything, to the write queue. */
  #seal(): void {
    if (this.#current.bytes === 0) return;
    this.#queue.push(this.#current);
    this.#current = { buffer: this.#spare.pop() ?? Buffer.allocUnsafe(this.#size), bytes: 0, sent: 0 };
  }

  #arm(): void {
    this.#timer = setTimeout(this.#onTimer, this.#flushMs);
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#writing) return;
    this.#seal();
    this.#next();
  };

  /** Starts writing the first queued chunk, if any and none is in flight. */
  #next(): void {
    if (this.#writing || this.#broken) return;
    if (this.#dropped > 0 && this.#queue.length === 0) {
      this.#seal();
      this.#noteDropped();
    }
    const chunk = this.#queue[0];
    if (!chunk) {
      this.#settleFlushes();
      return;
    }
    this.#writing = true;
    this.#fs.write(this.#fd, chunk.buffer, chunk.sent, chunk.bytes - chunk.sent, null, this.#onWritten);
  }

  readonly #onWritten = (err: NodeJS.ErrnoException | null, written: number): void => {
    this.#writing = false;
    const chunk = this.#queue[0]!;
    if (err) {
      if (err.code === 'EAGAIN') {
        // A full non-blocking pipe: try again shortly, nothing lost.
        this.#writing = true;
        setTimeout(() => {
          this.#writing = false;
          this.#next();
        }, EAGAIN_RETRY_MS).unref();
        return;
      }
      // EPIPE, EBADF: nobody reads these lines any more. Drop what is held and what comes.
      this.#broken = true;
      this.#queue.length = 0;
      this.#pending = 0;
      this.#settleFlushes(err);
      return;
    }
    chunk.sent += written;
    this.#pending -= written;
    if (chunk.sent >= chunk.bytes) {
      this.#queue.shift();
      if (chunk.buffer.length === this.#size && this.#spare.length < 2) this.#spare.push(chunk.buffer);
    }
    // (The current buffer is never half full here: write() seals it when it gets there.)
    if (this.#queue.length > 0 || this.#dropped > 0) this.#next();
    else {
      this.#settleFlushes();
      if (this.#current.bytes > 0 && !this.#timer) this.#arm();
    }
  };

  /** Runs the callbacks of flush() calls waiting for the queue to empty. */
  #settleFlushes(err?: Error): void {
    for (const done of this.#flushed.splice(0)) done(err);
  }

  /** One line, in the log's own shape, saying how many lines were dropped while the destination lagged. */
  #noteDropped(): void {
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#append(`{"level":"warn"${isoTime()},"service":"firstops-sidecar","component":"log","dropped_lines":${dropped},"msg":"log lines dropped: stdout did not keep up"}\n`);
    this.#seal();
  }
}
