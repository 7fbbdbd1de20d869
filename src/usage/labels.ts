/** At most this many distinct values per model label; later ones are reported as `other`. */
export const MAX_MODEL_VALUES = 100;
/** Longer model names are cut to this many characters. */
export const MAX_MODEL_LENGTH = 128;
export const OTHER = 'other';
const UNPRINTABLE = /[^\x21-\x7e]/;

/** A model name as a label value: printable ASCII, length-capped ('' when there is nothing usable). */
export function cleanModel(value: string | undefined): string {
  if (!value) return '';
  if (value.length <= MAX_MODEL_LENGTH && !UNPRINTABLE.test(value)) return value;
  return value.slice(0, MAX_MODEL_LENGTH).replace(/[^\x21-\x7e]/g, '_');
}

/**
 * Keeps one label's cardinality bounded: the first `max` distinct values
 * pass, any later new value becomes `other`. The set lives as long as the
 * process, as the series it guards do.
 */
export function createLabelBound(max = MAX_MODEL_VALUES): (value: string | undefined) => string {
  const seen = new Set<string>();
  /** Raw value to label for values already admitted (at most `max` short entries): the common case costs one lookup. */
  const known = new Map<string, string>();
  return function bound(value) {
    if (!value) return '';
    const hit = known.get(value);
    if (hit !== undefined) return hit;
    const clean = cleanModel(value);
    if (!seen.has(clean)) {
      if (seen.size >= max) return OTHER;
      seen.add(clean);
    }
    if (known.size < max && value.length <= MAX_MODEL_LENGTH) known.set(value, clean);
    return clean;
  };
}
