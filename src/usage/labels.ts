/** At most this many distinct values per model label; later ones are reported as `other`. */
export const MAX_MODEL_VALUES = 100;
/** Longer model names are cut to this many characters. */
export const MAX_MODEL_LENGTH = 128;
export const OTHER = 'other';

/** A model name as a label value: printable ASCII, length-capped ('' when there is nothing usable). */
export function cleanModel(value: string | undefined): string {
  if (!value) return '';
  return value.slice(0, MAX_MODEL_LENGTH).replace(/[^\x21-\x7e]/g, '_');
}

/**
 * Keeps one label's cardinality bounded: the first `max` distinct values
 * pass, any later new value becomes `other`. The set lives as long as the
 * process, as the series it guards do.
 */
export function createLabelBound(max = MAX_MODEL_VALUES): (value: string | undefined) => string {
  const seen = new Set<string>();
  return function bound(value) {
    const clean = cleanModel(value);
    if (!clean || seen.has(clean)) return clean;
    if (seen.size >= max) return OTHER;
    seen.add(clean);
    return clean;
  };
}
