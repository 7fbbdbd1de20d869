/**
 * Finding usage in a response body as it passes, without decoding or
 * parsing what cannot hold it. Bytes are searched through a latin1 view (one
 * character per byte, so offsets are byte offsets and no multi-byte UTF-8
 * character can look like `"` or a line end) with one compiled regular
 * expression, which beats a native Buffer search per marker several times
 * over. Parsers keep references to the relayed chunks (never copies of the
 * whole body) and are bounded: a JSON body past MAX_JSON_BYTES and an SSE
 * event past MAX_EVENT_BYTES are skipped.
 */

export const MAX_JSON_BYTES = 1 << 20;
export const MAX_EVENT_BYTES = 1 << 20;
/** Chunks are searched in batches of about this many bytes: one search per batch, not per chunk. */
export const SSE_BATCH_BYTES = 16 * 1024;

/**
 * Matches a usage key whose value is an object (`"usage": {`), not
 * `"usage":null` and not text inside a string (whose quotes are escaped).
 */
export function usagePattern(keys: readonly string[]): RegExp {
  const names = [...new Set(keys)].map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`"(?:${names.join('|')})"[ \\t\\r\\n]*:[ \\t\\r\\n]*\\{`, 'g');
}

/** The offset of the first usage key at or after `from`, or -1. */
export function findUsageKey(text: string, pattern: RegExp, from = 0): number {
  pattern.lastIndex = from;
  const m = pattern.exec(text);
  return m ? m.index : -1;
}

/** Collects a JSON body up to the bound, keeping the relayed chunks by reference. */
export class JsonCollector {
  /** The usage keys, quoted. A body holding none of them is not read. */
  readonly #needles: readonly string[];
  readonly #max: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #skipped = false;

  constructor(needles: readonly string[], max = MAX_JSON_BYTES) {
    this.#needles = needles;
    this.#max = max;
  }

  push(chunk: Buffer): void {
    if (this.#skipped) return;
    this.#size += chunk.length;
    if (this.#size > this.#max) {
      this.#skipped = true;
      this.#chunks = [];
      return;
    }
    this.#chunks.push(chunk);
  }

  get skipped(): boolean {
    return this.#skipped;
  }

  /** The body as a latin1 view of its bytes (see walk.ts) when it fit and names a usage key, else undefined. */
  body(): string | undefined {
    const chunks = this.#chunks;
    this.#chunks = [];
    if (this.#skipped || chunks.length === 0) return undefined;
    const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size)).toString('latin1');
    // Usage comes last or nearly: a search from the end settles most bodies at once.
    for (const needle of this.#needles) if (text.lastIndexOf(needle) !== -1) return text;
    return undefined;
  }
}

/** `usageKeys` unquoted, as the families name them. */
export function createJsonCollector(usageKeys: readonly string[], max = MAX_JSON_BYTES): JsonCollector {
  return new JsonCollector(usageKeys.map((k) => JSON.stringify(k)), max);
}


/** Where the blank line that ends the last complete event in `t` ends, or -1. CR variants only when `cr`. */
function lastEventEnd(t: string, cr: boolean): number {
  const n = t.length;
  if (t.charCodeAt(n - 1) === 0x0a && (t.charCodeAt(n - 2) === 0x0a || (cr && t.endsWith('\r\n\r\n')))) return n;
  const lf = t.lastIndexOf('\n\n');
  if (!cr) return lf === -1 ? -1 : lf + 2;
  const crlf = t.lastIndexOf('\r\n\r\n');
  const r = t.lastIndexOf('\r\r');
  return Math.max(lf === -1 ? -1 : lf + 2, crlf === -1 ? -1 : crlf + 4, r === -1 ? -1 : r + 2);
}

/** The bounds of the event holding offset `at` in `t`. CR variants only when `cr`. */
function eventAround(t: string, at: number, cr: boolean): [number, number] {
  const lf = t.lastIndexOf('\n\n', at);
  let start = lf === -1 ? 0 : lf + 2;
  const next = t.indexOf('\n\n', at);
  let end = next === -1 ? t.length : next + 2;
  if (cr) {
    const crlf = t.lastIndexOf('\r\n\r\n', at);
    const r = t.lastIndexOf('\r\r', at);
    start = Math.max(start, crlf === -1 ? 0 : crlf + 4, r === -1 ? 0 : r + 2);
    for (const [sep, len] of [['\r\n\r\n', 4], ['\r\r', 2]] as const) {
      const i = t.indexOf(sep, at);
      if (i !== -1 && i + len < end) end = i + len;
    }
  }
  return [start, end];
}

const SCRATCH = Buffer.allocUnsafe(64 * 1024);
function inScratch(buf: Buffer): boolean {
  return buf.buffer === SCRATCH.buffer;
}

/**
 * The parts as one buffer. Copied into a shared scratch buffer when they fit
 * (a batch is searched synchronously, and nothing keeps a view of it), so a
 * batch costs no allocation; a single part is used as it is.
 */
function gather(parts: readonly Buffer[], size: number): Buffer {
  if (parts.length === 1) return parts[0]!;
  if (size > SCRATCH.length) return Buffer.concat(parts, size);
  let offset = 0;
  for (const p of parts) offset += p.copy(SCRATCH, offset);
  return SCRATCH.subarray(0, size);
}

/** The `data` of one SSE event (its data lines joined by LF), per the EventSource rules. */
export function eventData(event: string): string {
  let data: string | undefined;
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data ?? '';
}

/**
 * Splits an SSE byte stream into complete events and hands `onEvent` the
 * data of those that hold a usage key. Chunks are kept by reference and
 * searched once about `batch` bytes have arrived, and at the end: usage is
 * recorded when the response is over, and a search costs far less per byte
 * over 16 KB than over 200. Events without a usage key are never decoded.
 */
export function createSseScanner(pattern: RegExp, onEvent: (data: string) => void, maxEvent = MAX_EVENT_BYTES, batch = SSE_BATCH_BYTES) {
  /** The incomplete event left by the last search, then the chunks since. */
  let parts: Buffer[] = [];
  let size = 0;
  let tailSize = 0;

  const flush = (final: boolean): void => {
    if (size === 0) return;
    const buf = gather(parts, size);
    const t = buf.toString('latin1');
    const cr = t.includes('\r');
    const end = final ? t.length : lastEventEnd(t, cr);
    for (let at = end <= 0 ? -1 : findUsageKey(t, pattern); at !== -1 && at < end; ) {
      const [start, stop] = eventAround(t, at, cr);
      if (stop - start <= maxEvent) onEvent(eventData(Buffer.from(t.slice(start, stop), 'latin1').toString('utf8')));
      at = stop >= end ? -1 : findUsageKey(t, pattern, stop);
    }
    const rest = end <= 0 ? buf : buf.subarray(end);
    // An event that grows past the bound without ending is dropped; the
    // incomplete one kept is copied out of the shared scratch buffer.
    parts = !final && rest.length > 0 && rest.length <= maxEvent ? [inScratch(buf) ? Buffer.from(rest) : rest] : [];
    size = tailSize = parts.length ? rest.length : 0;
  };

  return {
    push(chunk: Buffer): void {
      parts.push(chunk);
      size += chunk.length;
      if (size - tailSize >= batch) flush(false);
    },
    /** The rest, including a last event without a blank line after it. */
    end(): void {
      flush(true);
    },
  };
}
