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
 * Calls `visit(key, start, end)` for each member of the object at `i` (after
 * space); returns false when the text is not a well-formed object there.
 */
export function forEachMember(t: string, i: number, visit: (key: string, start: number, end: number) => void): boolean {
  i = skipSpace(t, i);
  if (t.charCodeAt(i) !== 0x7b) return false;
  i = skipSpace(t, i + 1);
  if (t.charCodeAt(i) === 0x7d) return true;
  for (;;) {
    if (t.charCodeAt(i) !== QUOTE) return false;
    const keyStart = i;
    const keyEnd = skipString(t, i);
    if (keyEnd === -1) return false;
    const raw = t.slice(i + 1, keyEnd - 1);
    i = skipSpace(t, keyEnd);
    if (t.charCodeAt(i) !== 0x3a) return false;
    const start = skipSpace(t, i + 1);
    const end = skipValue(t, start);
    if (end === -1) return false;
    visit(raw.includes('\\') ? String(jsonValue(t, keyStart, keyEnd)) : raw, start, end);
    i = skipSpace(t, end);
    const c = t.charCodeAt(i);
    if (c === 0x7d) return true;
    if (c !== 0x2c) return false;
    i = skipSpace(t, i + 1);
  }
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
