/**
 * Byte-level scanning for usage in a response body as it passes, without
 * decoding or parsing what cannot hold usage. Parsers keep references to the
 * relayed chunks (never copies of the whole body) and are bounded: a JSON
 * body past MAX_JSON_BYTES and an SSE event past MAX_EVENT_BYTES are skipped.
 */

export const MAX_JSON_BYTES = 1 << 20;
export const MAX_EVENT_BYTES = 1 << 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const BRACE = 0x7b;
const LF2 = Buffer.from('\n\n');
const CR2 = Buffer.from('\r\r');
const CRLF2 = Buffer.from('\r\n\r\n');
const CR = 0x0d;

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** The quoted keys (`"usage"`) whose presence makes a document worth parsing. */
export function markersFor(keys: readonly string[]): Buffer[] {
  return [...new Set(keys)].map((k) => Buffer.from(JSON.stringify(k)));
}

/**
 * The offset of the first marker at or after `from` that is a key whose value
 * is an object (`"usage": {`, not `"usage":null` or text in a string), or -1.
 */
export function findUsageKey(buf: Buffer, markers: readonly Buffer[], from = 0): number {
  let best = -1;
  for (const marker of markers) {
    for (let i = buf.indexOf(marker, from); i !== -1; i = buf.indexOf(marker, i + marker.length)) {
      if (best !== -1 && i >= best) break;
      if (i > 0 && buf[i - 1] === BACKSLASH) continue;
      let j = i + marker.length;
      while (isSpace(buf[j])) j++;
      if (buf[j] !== COLON) continue;
      j++;
      while (isSpace(buf[j])) j++;
      if (buf[j] !== BRACE) continue;
      best = i;
      break;
    }
  }
  return best;
}

/** Collects a JSON body up to the bound; `body()` is the whole of it when it fit and holds usage. */
export function createJsonCollector(markers: readonly Buffer[], max = MAX_JSON_BYTES) {
  let chunks: Buffer[] = [];
  let size = 0;
  let skipped = false;
  return {
    push(chunk: Buffer): void {
      if (skipped) return;
      size += chunk.length;
      if (size > max) {
        skipped = true;
        chunks = [];
        return;
      }
      chunks.push(chunk);
    },
    get skipped(): boolean {
      return skipped;
    },
    /** The body's text when it fit and has a usage key, else undefined. */
    body(): string | undefined {
      if (skipped || size === 0) return undefined;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      chunks = [];
      return findUsageKey(all, markers) === -1 ? undefined : all.toString('utf8');
    },
  };
}

function lastIndexOfAny(buf: Buffer, from: number): { at: number; length: number } | undefined {
  let found: { at: number; length: number } | undefined;
  const lf = buf.lastIndexOf(LF2, from);
  if (lf !== -1) found = { at: lf, length: 2 };
  if (buf.indexOf(CR) !== -1) {
    const crlf = buf.lastIndexOf(CRLF2, from);
    if (crlf !== -1 && (!found || crlf + 4 > found.at + found.length)) found = { at: crlf, length: 4 };
    const cr = buf.lastIndexOf(CR2, from);
    if (cr !== -1 && (!found || cr + 2 > found.at + found.length)) found = { at: cr, length: 2 };
  }
  return found;
}

function indexOfAny(buf: Buffer, from: number): number {
  let end = -1;
  for (const t of [LF2, CRLF2, CR2]) {
    const i = buf.indexOf(t, from);
    if (i !== -1 && (end === -1 || i + t.length < end)) end = i + t.length;
  }
  return end;
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
 * data of those that hold a usage key, as soon as their blank line arrives.
 * Every other event costs a terminator search and a marker search.
 */
export function createSseScanner(markers: readonly Buffer[], onEvent: (data: string) => void, maxEvent = MAX_EVENT_BYTES) {
  let pending: Buffer | undefined;

  const scanComplete = (region: Buffer): void => {
    for (let at = findUsageKey(region, markers); at !== -1; ) {
      const before = lastIndexOfAny(region, at);
      const start = before ? before.at + before.length : 0;
      const stop = indexOfAny(region, at);
      const end = stop === -1 ? region.length : stop;
      onEvent(eventData(region.subarray(start, end).toString('utf8')));
      at = end >= region.length ? -1 : findUsageKey(region, markers, end);
    }
  };

  return {
    push(chunk: Buffer): void {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      const last = lastIndexOfAny(buf, buf.length);
      if (!last) {
        // No complete event yet; one that grows past the bound is dropped.
        pending = buf.length > maxEvent ? undefined : buf;
        return;
      }
      const end = last.at + last.length;
      scanComplete(buf.subarray(0, end));
      pending = end < buf.length ? buf.subarray(end) : undefined;
    },
    /** A stream may end without a blank line after its last event. */
    end(): void {
      if (pending && pending.length <= maxEvent) scanComplete(pending);
      pending = undefined;
    },
  };
}
