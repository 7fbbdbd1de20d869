import type { Usage, UsageFamily, UsageSource } from './types.ts';

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The sum of the keys present as non-negative safe integers; undefined when none is. */
function sum(usage: Obj, keys: readonly string[]): number | undefined {
  let total: number | undefined;
  for (const key of keys) {
    const v = usage[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) total = (total ?? 0) + v;
  }
  return total;
}

function readSource(doc: Obj, source: UsageSource, into: Usage): boolean {
  let holder: unknown = doc;
  for (const key of source.at) holder = isObject(holder) ? holder[key] : undefined;
  if (!isObject(holder)) return false;
  const usage = holder[source.usage];
  if (!isObject(usage)) return false;
  const input = sum(usage, source.input);
  const output = sum(usage, source.output);
  if (input !== undefined) into.input = input;
  if (output !== undefined) into.output = output;
  const model = holder[source.model];
  if (typeof model === 'string' && model) into.responseModel = model;
  return input !== undefined || output !== undefined;
}

/**
 * Merges what one parsed document (a JSON body, one SSE event's data, or
 * each element of a streamed JSON array) reports into `into`; later values
 * win, as usage in streams is cumulative.
 */
export function readUsage(family: UsageFamily, doc: unknown, into: Usage): void {
  if (Array.isArray(doc)) {
    for (const item of doc) readUsage(family, item, into);
    return;
  }
  if (!isObject(doc)) return;
  for (const source of family.sources) readSource(doc, source, into);
}

/** The model the request names: a body key, or a capture on the request path. */
export function requestModelOf(family: UsageFamily, path: string, body: Obj | undefined): string | undefined {
  const { bodyKey, path: pattern } = family.requestModel;
  if (bodyKey !== undefined) {
    const v = body?.[bodyKey];
    if (typeof v === 'string' && v) return v;
  }
  if (pattern) {
    const m = pattern.exec(path);
    if (m?.[1]) return m[1];
  }
  return undefined;
}
