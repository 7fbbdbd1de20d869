import type { Pattern } from './regex.ts';

/**
 * A field path into a tool call's arguments: dot-separated keys (an array
 * index is a key too), where `*` is any one key and `**` any run of keys,
 * none included (so `**` alone is every value, the arguments themselves
 * when they are not JSON). At most one `**`: more would make a match cost
 * grow with the product of the depths.
 */
export type FieldPath = readonly string[];

/** The path's segments, or the reason it cannot be used. */
export function parseFieldPath(path: string): FieldPath | string {
  const segments = path.split('.');
  if (segments.some((s) => s === '')) return 'a field path has no empty segments (`a.b`, `items.*.name`, `**`)';
  if (segments.filter((s) => s === '**').length > 1) return 'a field path holds at most one `**`';
  return segments;
}

function scalarText(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

function children(value: unknown): readonly unknown[] {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === 'object') return Object.values(value);
  return [];
}

function child(value: unknown, key: string): { found: boolean; value: unknown } {
  if (Array.isArray(value)) {
    if (!/^(?:0|[1-9][0-9]*)$/.test(key) || Number(key) >= value.length) return { found: false, value: undefined };
    return { found: true, value: value[Number(key)] };
  }
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, key)) return { found: true, value: (value as Record<string, unknown>)[key] };
  return { found: false, value: undefined };
}

/** Whether some string, number or boolean at `path` in `root` matches `globs` (compared as text). */
export function someFieldMatches(root: unknown, path: FieldPath, globs: Pattern): boolean {
  const visit = (value: unknown, i: number): boolean => {
    if (i === path.length) {
      const text = scalarText(value);
      return text !== undefined && globs.test(text);
    }
    const segment = path[i]!;
    if (segment === '**') {
      if (visit(value, i + 1)) return true;
      for (const c of children(value)) if (visit(c, i)) return true;
      return false;
    }
    if (segment === '*') {
      for (const c of children(value)) if (visit(c, i + 1)) return true;
      return false;
    }
    const next = child(value, segment);
    return next.found && visit(next.value, i + 1);
  };
  return visit(root, 0);
}
