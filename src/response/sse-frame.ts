/**
 * Cuts an SSE byte stream into whole events, at any byte boundary, without
 * decoding it: an event is its raw bytes up to and including the blank line
 * that ends it (LF, CRLF and CR line ends, mixed too, as the EventSource
 * rules allow). An event that lies in one chunk is a view of that chunk,
 * never a copy. A blank line ended by a CR at the very end of a chunk waits
 * for the next byte (an LF may follow and belongs to it), so the events
 * found never depend on where the stream was split.
 */

const LF = 0x0a;
const CR = 0x0d;

const LINE_START = 0;
const IN_LINE = 1;
/** A CR ended a line: an LF after it belongs to it. */
const AFTER_CR = 2;
/** A CR at the start of a line: a blank line, whose LF may follow. */
const BLANK_CR = 3;

/** An indexOf result, with `none` for not found (so it stays ahead of every offset). */
function found(at: number, none: number): number {
  return at === -1 ? none : at;
}

export interface SseFramer {
  /** Feeds bytes; `onEvent` gets each event completed by them, in order. */
  push(chunk: Buffer, onEvent: (raw: Buffer) => void): void;
  /** The stream is over: a last event without its blank line is handed over too. */
  end(onEvent: (raw: Buffer) => void): void;
  /** Bytes of the incomplete event held. */
  readonly pendingBytes: number;
}

export function createSseFramer(): SseFramer {
  let state = LINE_START;
  /** The incomplete event's bytes from earlier chunks. */
  let parts: Buffer[] = [];
  let partsSize = 0;

  const take = (chunk: Buffer, start: number, end: number): Buffer => {
    if (parts.length === 0) return chunk.subarray(start, end);
    const all = end > start ? [...parts, chunk.subarray(start, end)] : parts;
    const raw = Buffer.concat(all, partsSize + end - start);
    parts = [];
    partsSize = 0;
    return raw;
  };

  return {
    push(chunk, onEvent) {
      const n = chunk.length;
      let start = 0;
      let i = 0;
      // Where the next LF and CR are, searched once per chunk and kept while ahead.
      let lf = -1;
      let cr = -1;
      while (i < n) {
        if (state === LINE_START) {
          const c = chunk[i]!;
          if (c === LF) {
            i++;
            onEvent(take(chunk, start, i));
            start = i;
          } else if (c === CR) {
            i++;
            state = BLANK_CR;
          } else {
            state = IN_LINE;
          }
        } else if (state === IN_LINE) {
          if (lf < i) lf = found(chunk.indexOf(LF, i), n);
          if (cr < i) cr = found(chunk.indexOf(CR, i), n);
          const j = lf < cr ? lf : cr;
          if (j >= n) {
            i = n;
            break;
          }
          i = j + 1;
          state = j === lf ? LINE_START : AFTER_CR;
        } else if (state === AFTER_CR) {
          if (chunk[i] === LF) i++;
          state = LINE_START;
        } else {
          if (chunk[i] === LF) i++;
          state = LINE_START;
          onEvent(take(chunk, start, i));
          start = i;
        }
      }
      if (start < n) {
        parts.push(chunk.subarray(start));
        partsSize += n - start;
      }
    },
    end(onEvent) {
      state = LINE_START;
      if (partsSize === 0) return;
      const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsSize);
      parts = [];
      partsSize = 0;
      onEvent(raw);
    },
    get pendingBytes() {
      return partsSize;
    },
  };
}

/** The fields of one event that the gate reads. */
export interface SseFields {
  /** The `event` field, when given. */
  readonly name: string | undefined;
  /** The data lines joined by LF; undefined when the event has none. */
  readonly data: string | undefined;
}

const LINE_END = /\r\n|\r|\n/;

/**
 * An event's `event` and `data` fields per the EventSource rules (a comment
 * line starts with `:`, one space after the colon is dropped, a line without
 * a colon is a field with an empty value). `first` strips the byte-order mark
 * a stream may start with, as EventSource does.
 */
export function readSseFields(raw: Buffer, first: boolean): SseFields {
  let text = raw.toString('utf8');
  if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let name: string | undefined;
  let data: string | undefined;
  for (const line of text.split(LINE_END)) {
    if (line === '' || line.charCodeAt(0) === 0x3a) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data' && field !== 'event') continue;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === 'event') name = value;
    else data = data === undefined ? value : `${data}\n${value}`;
  }
  return { name, data };
}

/**
 * The event again with `data` as its only data line: its other lines
 * (`event`, `id`, comments) are kept in place, lines end with LF, and a
 * byte-order mark it started with (a stream's first event) is dropped.
 */
export function rebuildSseEvent(raw: Buffer, data: string): Buffer {
  const out: string[] = [];
  let placed = false;
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  for (const line of text.split(LINE_END)) {
    if (line === '') continue;
    const isData = line === 'data' || line.startsWith('data:');
    if (!isData) out.push(line);
    else if (!placed) {
      out.push(`data: ${data}`);
      placed = true;
    }
  }
  if (!placed) out.push(`data: ${data}`);
  return Buffer.from(`${out.join('\n')}\n\n`, 'utf8');
}
