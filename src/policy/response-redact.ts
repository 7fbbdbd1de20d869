import type { Pattern } from './regex.ts';

export interface Redaction {
  /** The redaction's `name` in the policy file ('' when unnamed), for logs. */
  readonly name: string;
  /** An RE2 pattern with the `g` flag. */
  readonly pattern: Pattern;
  readonly replacement: string;
}

/**
 * Every redaction applied to one string, in order. A pattern that does not
 * match leaves the string as it is (RE2 works on UTF-8: a replace would turn
 * a lone surrogate into U+FFFD and report a change where none was made).
 */
export function redactString(value: string, redactions: readonly Redaction[]): string {
  let out = value;
  for (const r of redactions) {
    r.pattern.lastIndex = 0;
    if (!r.pattern.test(out)) continue;
    r.pattern.lastIndex = 0;
    out = r.pattern.replace(out, r.replacement);
  }
  return out;
}

/**
 * Every redaction applied to every string value (not keys) of a parsed JSON
 * value; the value itself when nothing was rewritten. Depth is bounded by
 * the reader (src/response/arguments.ts).
 */
export function redactValue(value: unknown, redactions: readonly Redaction[]): unknown {
  if (typeof value === 'string') return redactString(value, redactions);
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const r = redactValue(item, redactions);
      if (r !== item) changed = true;
      return r;
    });
    return changed ? out : value;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    // fromEntries defines own properties: a `__proto__` key stays a key.
    const out = Object.fromEntries(
      Object.entries(value).map(([key, item]: [string, unknown]) => {
        const r = redactValue(item, redactions);
        if (r !== item) changed = true;
        return [key, r];
      }),
    );
    return changed ? out : value;
  }
  return value;
}
