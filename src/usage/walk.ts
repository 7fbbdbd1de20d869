/**
 * Just enough of a JSON reader to pull a few members out of a large object
 * without building it: values not asked for are skipped (strings by a native
 * search for the closing quote). It reads a latin1 view of UTF-8 bytes, so
 * offsets are byte offsets and structural characters are never confused
 * with the bytes of a multi-byte character; a string taken out is decoded as
 * UTF-8 then. Malformed input yields -1 / nothing, never a throw.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function skipSpace(t: string, i: number): number {
  for (let c = t.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = t.charCodeAt(++i));
  return i;
}

/** Past the string whose opening quote is at `i`, or -1. */
function skipString(t: string, i: number): number {
  for (let j = t.indexOf('"', i + 1); j !== -1; j = t.indexOf('"', j + 1)) {
    let k = j - 1;
    while (t.charCodeAt(k) === BACKSLASH) k--;
    if ((j - 1 - k) % 2 === 0) return j + 1;
  }
  return -1;
}

/** Past the value that starts at `i` (no leading space), or -1. */
function skipValue(t: string, i: number): number {
  const c = t.charCodeAt(i);
  if (c === QUOTE) return skipString(t, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < t.length; j++) {
      const d = t.charCodeAt(j);
      if (d === QUOTE) {
        j = skipString(t, j);
        if (j === -1) return -1;
        j--;
      } else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  for (let d = t.charCodeAt(j); j < t.length && d !== 0x2c && d !== 0x7d && d !== 0x5d && d !== 0x20 && d !== 0x0a && d !== 0x0d && d !== 0x09; d = t.charCodeAt(++j));
  return j > i ? j : -1;
}

/**
 * How a member is read: `'number'` and `'string'` expect that type (another
 * value reads as undefined, cheaply), `'any'` parses whatever is there, and
 * a Wanted walks into an object.
 */
export type Take = 'any' | 'number' | 'string' | Wanted;

/** Which members of an object to read: `keys[i]` is read as `take[i]` says. */
export interface Wanted {
  readonly keys: readonly string[];
  readonly take: readonly Take[];
}

/** Whether the key of `length` characters after the quote at `open` is `key`, compared in place. */
function sameKey(t: string, open: number, length: number, key: string): boolean {
  if (key.length !== length) return false;
  for (let j = 0; j < length; j++) if (t.charCodeAt(open + 1 + j) !== key.charCodeAt(j)) return false;
  return true;
}

/** The index in `keys` (or 0 for the one `key`) of the key whose quotes are at `open` and `close - 1`, or -1; compared in place, no slice. */
function keyIndex(t: string, open: number, close: number, keys: readonly string[] | string): number {
  const length = close - open - 2;
  if (typeof keys === 'string') {
    if (sameKey(t, open, length, keys)) return 0;
  } else {
    for (let k = 0; k < keys.length; k++) if (sameKey(t, open, length, keys[k]!)) return k;
  }
  // A key spelled with escapes (`"\u0075sage"`) is decoded first.
  for (let j = open + 1; j < close - 1; j++) {
    if (t.charCodeAt(j) === BACKSLASH) {
      const key = jsonValue(t, open, close);
      if (typeof key !== 'string') return -1;
      return typeof keys === 'string' ? (key === keys ? 0 : -1) : keys.indexOf(key);
    }
  }
  return -1;
}

/**
 * The members `wanted` names of the object at `i` (after space): values
 * taken are parsed, nested ones walked the same way; everything else is
 * skipped unparsed. Undefined when the text is not a well-formed object
 * there. Later duplicates win, as with JSON.parse.
 */
export function pickMembers(t: string, i: number, wanted: Wanted): Record<string, unknown> | undefined {
  i = skipSpace(t, i);
  if (t.charCodeAt(i) !== 0x7b) return undefined;
  const out: Record<string, unknown> = {};
  i = skipSpace(t, i + 1);
  if (t.charCodeAt(i) === 0x7d) return out;
  for (;;) {
    const end = readMember(t, i, wanted.keys);
    if (end === -1) return undefined;
    // Read before the value is: a nested walk overwrites MEMBER.
    const k = MEMBER[0]!;
    if (k !== -1) out[wanted.keys[k]!] = readAs(t, MEMBER[1]!, end, wanted.take[k]!);
    i = nextMember(t, end);
    if (i === CLOSED) return out;
    if (i === -1) return undefined;
  }
}

/** The member readMember read last: the index of its key in the list (-1 for none), then its value's bounds. */
const MEMBER = new Int32Array(3);
/** nextMember at the object's closing brace. */
const CLOSED = -2;

/** Reads the member `"key": value` at `i` into MEMBER, its key looked up in `keys`; past the value, or -1 when malformed. */
function readMember(t: string, i: number, keys: readonly string[] | string): number {
  if (t.charCodeAt(i) !== QUOTE) return -1;
  const keyEnd = skipString(t, i);
  if (keyEnd === -1) return -1;
  const colon = skipSpace(t, keyEnd);
  if (t.charCodeAt(colon) !== 0x3a) return -1;
  const start = skipSpace(t, colon + 1);
  const end = skipValue(t, start);
  if (end === -1) return -1;
  MEMBER[0] = keyIndex(t, i, keyEnd, keys);
  MEMBER[1] = start;
  MEMBER[2] = end;
  return end;
}

/** After a member ending at `end`: where the next member starts, CLOSED at the object's `}`, or -1 when malformed. */
function nextMember(t: string, end: number): number {
  const i = skipSpace(t, end);
  const c = t.charCodeAt(i);
  if (c === 0x7d) return CLOSED;
  return c === 0x2c ? skipSpace(t, i + 1) : -1;
}

/** Where the member key `needle` (`"name"`, quotes included) starts in `t` at its last occurrence before `before` that is not inside a string, or -1. */
function lastKey(t: string, needle: string, before: number): number {
  for (let q = t.lastIndexOf(needle, before); q > 0; q = t.lastIndexOf(needle, q - 1)) {
    let k = q - 1;
    while (t.charCodeAt(k) === BACKSLASH) k--;
    // An odd run of backslashes escapes the quote: text inside a string.
    if ((q - 1 - k) % 2 === 0) return q;
  }
  return -1;
}

/** Where findTopLevel found things: value bounds of the anchor, then of `other` (-1 when absent). Overwritten by every call. */
export const FOUND = new Int32Array(4);

/**
 * Finds two top-level members of a large object without walking all of
 * it: the last `"anchor"` key (`needle`, quotes included) is found from the
 * end (usage comes last in every provider's answer, or nearly), and the
 * text after its object value must close the root object, which proves the
 * member is top-level. `other` is taken from that tail, or else from the
 * members before the anchor, walked until it turns up. Sets FOUND and
 * returns true, or returns false when this cannot be shown (the caller then
 * walks the whole text): a nested or missing anchor, a root that does not
 * end after the tail, anything malformed on the way. For valid JSON the
 * members found are those JSON.parse would keep, except that of duplicate
 * `other` members before the anchor the first counts. What lies between
 * the members it takes is not validated: a malformed middle can read.
 */
export function findTopLevel(t: string, needle: string, other: string): boolean {
  const root = skipSpace(t, 0);
  if (t.charCodeAt(root) !== 0x7b) return false;
  let q = t.length;
  let valueStart = -1;
  // A few earlier occurrences are tried when the last is not a key with an object value (a string "usage", say).
  for (let tries = 0; tries < 4 && valueStart === -1; tries++) {
    q = lastKey(t, needle, q - 1);
    if (q === -1) return false;
    const colon = skipSpace(t, q + needle.length);
    if (t.charCodeAt(colon) !== 0x3a) continue;
    const v = skipSpace(t, colon + 1);
    if (t.charCodeAt(v) === 0x7b) valueStart = v;
  }
  if (valueStart === -1) return false;
  const valueEnd = skipValue(t, valueStart);
  if (valueEnd === -1) return false;
  FOUND[0] = valueStart;
  FOUND[1] = valueEnd;
  FOUND[2] = FOUND[3] = -1;

  // The tail: `, "key": value` members, then the root's `}`, then nothing.
  let i = skipSpace(t, valueEnd);
  for (;;) {
    const c = t.charCodeAt(i);
    if (c === 0x7d) {
      if (skipSpace(t, i + 1) !== t.length) return false;
      break;
    }
    if (c !== 0x2c) return false;
    const end = readMember(t, skipSpace(t, i + 1), other);
    if (end === -1) return false;
    if (MEMBER[0] === 0) takeOther();
    i = skipSpace(t, end);
  }
  if (FOUND[2] !== -1) return true;

  // Not in the tail: the members before the anchor, until `other` or the anchor itself.
  i = skipSpace(t, root + 1);
  while (i < q) {
    const end = readMember(t, i, other);
    if (end === -1) return false;
    if (MEMBER[0] === 0) {
      takeOther();
      return true;
    }
    i = nextMember(t, end);
    if (i < 0) return false;
  }
  return i === q;
}

function takeOther(): void {
  FOUND[2] = MEMBER[1]!;
  FOUND[3] = MEMBER[2]!;
}

function readAs(t: string, start: number, end: number, take: Take): unknown {
  if (take === 'number') return numberValue(t, start, end);
  if (take === 'string') return stringValue(t, start, end);
  if (take === 'any') return jsonValue(t, start, end);
  return pickMembers(t, start, take);
}

/** A JSON number in t[start, end): plain digits are read in place, anything else parsed; undefined when not a number. */
function numberValue(t: string, start: number, end: number): number | undefined {
  if (end - start <= 15) {
    let n = 0;
    let i = start;
    for (; i < end; i++) {
      const d = t.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (i === end && (t.charCodeAt(start) !== 0x30 || end - start === 1)) return n;
  }
  const c = t.charCodeAt(start);
  if (c !== 0x2d && (c < 0x30 || c > 0x39)) return undefined;
  const v = jsonValue(t, start, end);
  return typeof v === 'number' ? v : undefined;
}

/** A JSON string in t[start, end): without escapes or non-ASCII bytes it is sliced out, else decoded; undefined when not a string. */
export function stringValue(t: string, start: number, end: number): string | undefined {
  if (t.charCodeAt(start) !== QUOTE) return undefined;
  for (let i = start + 1; i < end - 1; i++) {
    const c = t.charCodeAt(i);
    if (c === BACKSLASH || c > 0x7e || c < 0x20) {
      const v = jsonValue(t, start, end);
      return typeof v === 'string' ? v : undefined;
    }
  }
  return t.slice(start + 1, end - 1);
}

/** The JSON value in t[start, end), decoded as UTF-8; undefined when it does not parse. */
const NON_ASCII = /[^\x00-\x7f]/;

export function jsonValue(t: string, start: number, end: number): unknown {
  const slice = t.slice(start, end);
  try {
    // ASCII reads the same in latin1 and UTF-8 (usage objects, most model names).
    return JSON.parse(NON_ASCII.test(slice) ? Buffer.from(slice, 'latin1').toString('utf8') : slice);
  } catch {
    return undefined;
  }
}
