/**
 * Redacting a large string in windows. RE2's replace builds its result in C++
 * and copies it into a Buffer, so a 48 MiB prompt full of addresses briefly
 * held the body, that result and its copy: nearly three times the prompt.
 * When no pattern of a rule can match a space, no match can span one, so the
 * string can be cut at spaces into windows of about a MiB and each window
 * redacted on its own with the same result: the rewrite is then made of the
 * changed windows only, next to the unchanged bytes of the original.
 */

/** Windows are at least this long; each ends just after a space. */
export const WINDOW_BYTES = 1024 * 1024;

/** Escapes that match a space, or that this check cannot see through (code points, classes, anchors). */
const UNSAFE_ESCAPES = new Set([...'sWDpPxuUQCAzZ0123456789']);

/**
 * True when the RE2 pattern `source` provably cannot match a space (0x20)
 * and has no `^`/`$` (a window's start and end are not the text's).
 * Conservative: whatever it cannot read as safe is unsafe, so the only cost
 * of a false "unsafe" is the whole-string replace.
 */
export function cannotMatchSpace(source: string): boolean {
  let inClass = false;
  let classFirst = false;
  let prev: number | undefined;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const e = source[i + 1];
      if (e === undefined || e === ' ' || UNSAFE_ESCAPES.has(e)) return false;
      prev = /[A-Za-z]/.test(e) ? undefined : e.charCodeAt(0);
      i++;
      classFirst = false;
      continue;
    }
    if (inClass) {
      if (c === ']' && !classFirst) {
        inClass = false;
        continue;
      }
      classFirst = false;
      if (c === ' ') return false;
      if (c === '[' && source[i + 1] === ':') return false;
      if (c === '-' && prev !== undefined && source[i + 1] !== undefined && source[i + 1] !== ']') {
        if (source[i + 1] === '\\') return false;
        const high = source.codePointAt(i + 1)!;
        if (prev <= 0x20 && high >= 0x20) return false;
        i++;
        prev = undefined;
        continue;
      }
      prev = c.charCodeAt(0);
      continue;
    }
    if (c === '[') {
      if (source[i + 1] === '^') return false;
      inClass = true;
      classFirst = true;
      prev = undefined;
      continue;
    }
    if (c === '.' || c === '^' || c === '$' || c === ' ') return false;
  }
  return !inClass;
}

/**
 * Where the windows of `value` end: each at least WINDOW_BYTES long and
 * ending just after a space (the last one at the end).
 */
export function windowEnds(value: Uint8Array): number[] {
  const ends: number[] = [];
  let at = 0;
  while (at < value.length) {
    const space = at + WINDOW_BYTES >= value.length ? -1 : value.indexOf(0x20, at + WINDOW_BYTES);
    at = space === -1 ? value.length : space + 1;
    ends.push(at);
  }
  return ends;
}

/**
 * For an escaped JSON string (source bytes `[start, end)`), the source offset
 * of each unescaped offset in `targets` (ascending, each on a character
 * boundary): one walk over the source.
 */
export function sourceOffsets(source: Uint8Array, start: number, end: number, targets: readonly number[]): number[] {
  const out: number[] = [];
  let s = start;
  let u = 0;
  let t = 0;
  while (t < targets.length) {
    while (t < targets.length && targets[t] === u) {
      out.push(s);
      t++;
    }
    if (s >= end) break;
    if (source[s] !== 0x5c) {
      s++;
      u++;
      continue;
    }
    const e = source[s + 1];
    if (e !== 0x75) {
      s += 2;
      u++;
      continue;
    }
    const cp = Number.parseInt(Buffer.from(source.subarray(s + 2, s + 6)).toString('latin1'), 16);
    if (cp >= 0xd800 && cp <= 0xdbff && source[s + 6] === 0x5c && source[s + 7] === 0x75) {
      const low = Number.parseInt(Buffer.from(source.subarray(s + 8, s + 12)).toString('latin1'), 16);
      if (low >= 0xdc00 && low <= 0xdfff) {
        s += 12;
        u += 4;
        continue;
      }
    }
    s += 6;
    u += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
  }
  while (t < targets.length) {
    out.push(end);
    t++;
  }
  return out;
}
