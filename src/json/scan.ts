import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';

/**
 * Strict JSON read straight from the bytes: no string of the document is made,
 * no object tree is built. It accepts exactly what `JSON.parse` accepts after
 * a fatal UTF-8 decode (no BOM, RFC 8259 grammar), and reports what the policy
 * refuses besides: an object naming a key twice, or nesting deeper than
 * `maxDepth`. What the caller wants to look at comes out through callbacks as
 * byte spans, so a 100 MiB prompt costs the scan its own small stack, not a
 * copy of the prompt.
 */

/** Why bytes are not a strict JSON object; `not_json` covers bad UTF-8, a BOM and lenient syntax. */
export type ScanProblem = 'not_json' | 'not_object' | 'duplicate key' | 'nested too deeply';

/** A node of the dotted paths the caller wants the values of (objects only, as the policy's fields). */
export interface FieldTrie {
  readonly children: Map<string, FieldTrie>;
  /** Set on the nodes whose value is wanted: `field` is called with it. */
  readonly id?: number;
}

/** Kinds of a value. */
export const Kind = { String: 0, Number: 1, True: 2, False: 3, Null: 4, Object: 5, Array: 6 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface ScanOptions {
  readonly maxDepth: number;
  /** Paths (through objects only) whose values are reported to `field`. */
  readonly fields?: FieldTrie;
  /** A value at a wanted path: its kind and byte span (a string's span is inside its quotes). */
  readonly field?: (id: number, kind: Kind, start: number, end: number, escaped: boolean) => void;
  /** Every string value (never a key), inside its quotes; `escaped` when it holds a backslash. */
  readonly string?: (start: number, end: number, escaped: boolean) => void;
}

export type ScanResult = { readonly ok: true } | { readonly ok: false; readonly problem: ScanProblem };

const OK: ScanResult = { ok: true };
const fail = (problem: ScanProblem): ScanResult => ({ ok: false, problem });

/** Keys longer than this are kept as a digest of their unescaped bytes, so a huge key costs no copy. */
const LONG_KEY = 256;

/** Per open object: the keys seen, to refuse a duplicate. */
class KeySet {
  readonly short = new Set<string>();
  long: Set<string> | undefined;
  /** False when the key was already there. */
  add(bytes: Buffer, start: number, end: number, escaped: boolean): boolean {
    // One canonical form per key: its string when the unescaped key is short, else a digest of its bytes.
    const raw = escaped && end - start > LONG_KEY ? unescapeJsonString(bytes, start, end) : undefined;
    if ((raw?.length ?? end - start) <= LONG_KEY) {
      const key = escaped ? unescapeToString(bytes, start, end) : bytes.toString('utf8', start, end);
      if (this.short.has(key)) return false;
      this.short.add(key);
      return true;
    }
    const digest = createHash('sha256').update(raw ?? bytes.subarray(start, end)).digest('base64');
    this.long ??= new Set();
    if (this.long.has(digest)) return false;
    this.long.add(digest);
    return true;
  }
}

/** A short escaped key as JSON.parse reads it (lone surrogates included). */
function unescapeToString(bytes: Buffer, start: number, end: number): string {
  return JSON.parse(bytes.toString('utf8', start - 1, end + 1)) as string;
}

const WS = new Uint8Array(256);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x41 + i] = HEX[0x61 + i] = 10 + i;
/** Bytes that may follow a backslash besides `u`. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** The end of the escape whose backslash is at `i` (the index after it), or -1 when it is not a JSON escape. */
function escapeEnd(b: Uint8Array, i: number): number {
  const e = b[i + 1];
  if (e === 0x75) {
    if (i + 5 >= b.length || HEX[b[i + 2]!]! < 0 || HEX[b[i + 3]!]! < 0 || HEX[b[i + 4]!]! < 0 || HEX[b[i + 5]!]! < 0) return -1;
    return i + 6;
  }
  return e !== undefined && SIMPLE_ESCAPE[e] ? i + 2 : -1;
}

/** A string read byte by byte up to here; past it, memchr and four bytes at a time. */
const SHORT_STRING = 32;
/** Spans at least this long are checked for control bytes a word at a time. */
const WORD_SPAN = 64;

/** The index of `byte` at or after `from`, or the length when there is none. */
function indexOrEnd(b: Buffer, byte: number, from: number): number {
  const at = b.indexOf(byte, from);
  return at === -1 ? b.length : at;
}

/**
 * Finds where the strings of one document end, left to right. A short string
 * is read byte by byte. Past its first bytes, the closing quote and the next
 * backslash are found with Buffer#indexOf (memchr), and the bytes between are
 * checked for control characters four at a time: a prompt's long strings
 * cost a fraction of a byte loop. Both positions are kept between calls and
 * searched again only once passed, so a document costs one pass whatever
 * its escapes.
 */
class StringEnds {
  readonly #b: Buffer;
  /** The first `"` at or after where it was last searched from (the length when none): valid while it is at or past the reader. */
  #quote = -1;
  #backslash = -1;
  /** A word view of the buffer from its first 4-aligned byte, made for the first long span. */
  #words: Int32Array | undefined;
  #wordStart = 0;
  /** Whether the string last ended held an escape. */
  escaped = false;

  constructor(b: Buffer) {
    this.#b = b;
  }

  /** The index of the closing quote of the string opened at `open`, or -1 when it is not a valid JSON string. */
  end(open: number): number {
    const b = this.#b;
    const n = b.length;
    let escaped = false;
    let i = open + 1;
    const shortEnd = Math.min(n, i + SHORT_STRING);
    while (i < shortEnd) {
      const c = b[i]!;
      if (c === 0x22) {
        this.escaped = escaped;
        return i;
      }
      if (c < 0x20) return -1;
      if (c === 0x5c) {
        i = escapeEnd(b, i);
        if (i < 0) return -1;
        escaped = true;
      } else {
        i++;
      }
    }
    for (;;) {
      if (i >= n) return -1;
      if (this.#quote < i) this.#quote = indexOrEnd(b, 0x22, i);
      if (this.#backslash < i) this.#backslash = indexOrEnd(b, 0x5c, i);
      const quote = this.#quote;
      const backslash = this.#backslash;
      const stop = backslash < quote ? backslash : quote;
      if (stop >= n || this.#hasControl(i, stop)) return -1;
      if (stop === quote) {
        this.escaped = escaped;
        return quote;
      }
      i = escapeEnd(b, backslash);
      if (i < 0) return -1;
      escaped = true;
    }
  }

  /** True when a byte below 0x20 lies in [from, to). */
  #hasControl(from: number, to: number): boolean {
    const b = this.#b;
    let i = from;
    if (to - from >= WORD_SPAN) {
      const words = (this.#words ??= this.#wordView());
      const start = this.#wordStart;
      while (((i - start) & 3) !== 0) {
        if (b[i]! < 0x20) return true;
        i++;
      }
      let k = (i - start) >> 2;
      const last = (to - start) >> 2;
      // A word has a byte below 0x20 exactly when this is non-zero ("hasless(x, 0x20)", Bit Twiddling Hacks).
      for (; k < last; k++) {
        const w = words[k]!;
        if (((w - 0x20202020) & ~w & 0x80808080) !== 0) return true;
      }
      i = start + (k << 2);
    }
    for (; i < to; i++) if (b[i]! < 0x20) return true;
    return false;
  }

  #wordView(): Int32Array {
    const b = this.#b;
    this.#wordStart = (4 - (b.byteOffset & 3)) & 3;
    const count = Math.max(0, (b.length - this.#wordStart) >> 2);
    return new Int32Array(b.buffer, b.byteOffset + this.#wordStart, count);
  }
}

/** The end of the number starting at `i`, or -1 when it is not a JSON number. */
function numberEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  if (b[i] === 0x2d) i++;
  if (i >= n) return -1;
  if (b[i] === 0x30) i++;
  else if (b[i]! >= 0x31 && b[i]! <= 0x39) while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  else return -1;
  if (b[i] === 0x2e) {
    i++;
    const d = i;
    while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
    if (i === d) return -1;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    const d = i;
    while (i < n && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
    if (i === d) return -1;
  }
  return i;
}

function literalEnd(b: Uint8Array, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

// Container stack entries.
const IN_OBJECT = 1;
const IN_ARRAY = 2;

/**
 * Scans `bytes` as strict JSON. Callbacks run only while the document is
 * still clean (no duplicate key or depth problem so far); a problem found
 * later in a document that is not JSON at all still answers `not_json`, and a
 * valid non-object root answers `not_object`, in JSON.parse's order.
 */
export function scanJson(bytes: Buffer, options: ScanOptions): ScanResult {
  if (!isUtf8(bytes)) return fail('not_json');
  const b = bytes;
  const n = b.length;
  const { maxDepth, field, string } = options;
  const strings = new StringEnds(bytes);
  /** One byte per open container (any depth: a body of a million `[` costs a megabyte, bounded by the body). */
  let stack = new Uint8Array(64);
  const keySets: Array<KeySet | undefined> = [];
  const tries: Array<FieldTrie | undefined> = [];
  let depth = 0;
  let problem: ScanProblem | undefined;
  let rootKind = -1;
  // The field trie node of the value about to be read (set after a key).
  let pendingTrie: FieldTrie | undefined = options.fields;
  let i = 0;

  const skipWs = (): void => {
    while (i < n && WS[b[i]!]) i++;
  };

  const push = (kind: number, trie: FieldTrie | undefined): void => {
    if (depth === stack.length) {
      const grown = new Uint8Array(stack.length * 2);
      grown.set(stack);
      stack = grown;
    }
    stack[depth++] = kind;
    if (depth > maxDepth && problem === undefined) problem = 'nested too deeply';
    if (problem === undefined) {
      keySets[depth] = kind === IN_OBJECT ? new KeySet() : undefined;
      tries[depth] = kind === IN_OBJECT ? trie : undefined;
    }
  };

  // State machine: expecting a value, or what follows one.
  for (;;) {
    // ---- a value ----
    skipWs();
    if (i >= n) return fail('not_json');
    const c = b[i]!;
    const trie = pendingTrie;
    pendingTrie = undefined;
    const wanted = problem === undefined && trie?.id !== undefined && field ? trie.id : -1;
    if (rootKind === -1) rootKind = c === 0x7b ? Kind.Object : c === 0x5b ? Kind.Array : Kind.String;
    if (c === 0x7b || c === 0x5b) {
      if (wanted >= 0) field!(wanted, c === 0x7b ? Kind.Object : Kind.Array, i, i, false);
      i++;
      push(c === 0x7b ? IN_OBJECT : IN_ARRAY, trie);
      skipWs();
      if (c === 0x7b) {
        if (b[i] === 0x7d) {
          i++;
          depth--;
        } else {
          // A key follows.
          if (!readKey()) return fail('not_json');
          continue;
        }
      } else if (b[i] === 0x5d) {
        i++;
        depth--;
      } else {
        continue;
      }
    } else if (c === 0x22) {
      const end = strings.end(i);
      if (end < 0) return fail('not_json');
      const escaped = strings.escaped;
      if (problem === undefined) {
        if (wanted >= 0) field!(wanted, Kind.String, i + 1, end, escaped);
        if (string) string(i + 1, end, escaped);
      }
      i = end + 1;
    } else {
      let end: number;
      let kind: Kind;
      if (c === 0x74) [end, kind] = [literalEnd(b, i, 'true'), Kind.True];
      else if (c === 0x66) [end, kind] = [literalEnd(b, i, 'false'), Kind.False];
      else if (c === 0x6e) [end, kind] = [literalEnd(b, i, 'null'), Kind.Null];
      else [end, kind] = [numberEnd(b, i), Kind.Number];
      if (end < 0) return fail('not_json');
      if (wanted >= 0) field!(wanted, kind, i, end, false);
      i = end;
    }

    // ---- after a value: close containers, or a comma ----
    for (;;) {
      skipWs();
      if (depth === 0) {
        if (i !== n) return fail('not_json');
        if (rootKind !== Kind.Object) return fail('not_object');
        return problem === undefined ? OK : fail(problem);
      }
      const top = stack[depth - 1];
      const ch = b[i];
      if (ch === 0x2c) {
        i++;
        if (top === IN_OBJECT) {
          skipWs();
          if (!readKey()) return fail('not_json');
        }
        break;
      }
      if ((ch === 0x7d && top === IN_OBJECT) || (ch === 0x5d && top === IN_ARRAY)) {
        i++;
        depth--;
        continue;
      }
      return fail('not_json');
    }
  }

  /** Reads `"key" :` at `i` and sets the trie node of the value that follows. */
  function readKey(): boolean {
    if (b[i] !== 0x22) return false;
    const end = strings.end(i);
    if (end < 0) return false;
    const escaped = strings.escaped;
    if (problem === undefined) {
      if (!keySets[depth]!.add(b, i + 1, end, escaped)) {
        problem = 'duplicate key';
      } else {
        const parent = tries[depth];
        if (parent && parent.children.size > 0) {
          const key = escaped ? unescapeToString(b, i + 1, end) : b.toString('utf8', i + 1, end);
          pendingTrie = parent.children.get(key);
        }
      }
    }
    i = end + 1;
    skipWs();
    if (b[i] !== 0x3a) return false;
    i++;
    return true;
  }
}

/** A trie of dotted paths (`a.b.c`), each terminal numbered in the order given. */
export function fieldTrie(paths: ReadonlyArray<readonly string[]>): FieldTrie {
  type Mutable = { children: Map<string, Mutable>; id?: number };
  const root: Mutable = { children: new Map() };
  paths.forEach((path, id) => {
    let node = root;
    for (const key of path) {
      let next = node.children.get(key);
      if (!next) node.children.set(key, (next = { children: new Map() }));
      node = next;
    }
    node.id ??= id;
  });
  return root;
}

/**
 * The UTF-8 bytes of a JSON string's content (between its quotes, already
 * validated). A lone surrogate escape (`\ud800`) becomes its three-byte
 * WTF-8 form, which escapeJsonString turns back into the escape, so nothing is
 * lost on a round trip.
 */
export function unescapeJsonString(b: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  let i = start;
  while (i < end) {
    const slash = b.indexOf(0x5c, i);
    const stop = slash === -1 || slash >= end ? end : slash;
    if (stop > i) {
      out.set(b.subarray(i, stop), o);
      o += stop - i;
    }
    if (stop === end) break;
    const e = b[stop + 1]!;
    i = stop + 2;
    switch (e) {
      case 0x62: out[o++] = 0x08; break;
      case 0x66: out[o++] = 0x0c; break;
      case 0x6e: out[o++] = 0x0a; break;
      case 0x72: out[o++] = 0x0d; break;
      case 0x74: out[o++] = 0x09; break;
      case 0x75: {
        let cp = hex4(b, i);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && b[i] === 0x5c && b[i + 1] === 0x75) {
          const low = hex4(b, i + 2);
          if (low >= 0xdc00 && low <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
          }
        }
        o = writeCodePoint(out, o, cp);
        break;
      }
      default: out[o++] = e; // " \ /
    }
  }
  return out.subarray(0, o);
}

function hex4(b: Uint8Array, i: number): number {
  return (HEX[b[i]!]! << 12) | (HEX[b[i + 1]!]! << 8) | (HEX[b[i + 2]!]! << 4) | HEX[b[i + 3]!]!;
}

function writeCodePoint(out: Uint8Array, o: number, cp: number): number {
  if (cp < 0x80) {
    out[o++] = cp;
  } else if (cp < 0x800) {
    out[o++] = 0xc0 | (cp >> 6);
    out[o++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[o++] = 0xe0 | (cp >> 12);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  } else {
    out[o++] = 0xf0 | (cp >> 18);
    out[o++] = 0x80 | ((cp >> 12) & 0x3f);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  }
  return o;
}

const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/**
 * A string's UTF-8 bytes as JSON string content (no quotes), escaped as
 * JSON.stringify escapes: `"`, `\`, control characters, and lone surrogates
 * (in their WTF-8 form) as `\uXXXX`. Returns `value` itself when nothing
 * needs escaping.
 */
export function escapeJsonString(value: Uint8Array): Uint8Array {
  let i = 0;
  const n = value.length;
  while (i < n) {
    const c = value[i]!;
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c === 0xed && value[i + 1]! >= 0xa0)) break;
    i++;
  }
  if (i === n) return value;
  const parts: Uint8Array[] = [];
  let from = 0;
  for (; i < n; i++) {
    const c = value[i]!;
    let esc: string | undefined;
    let width = 1;
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      esc = SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    } else if (c === 0xed && value[i + 1]! >= 0xa0) {
      const cp = ((c & 0x0f) << 12) | ((value[i + 1]! & 0x3f) << 6) | (value[i + 2]! & 0x3f);
      esc = `\\u${cp.toString(16)}`;
      width = 3;
    }
    if (esc === undefined) continue;
    if (i > from) parts.push(value.subarray(from, i));
    parts.push(Buffer.from(esc, 'latin1'));
    from = i + width;
    i += width - 1;
  }
  if (from < n) parts.push(value.subarray(from));
  return Buffer.concat(parts);
}
