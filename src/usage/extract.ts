import type { Usage, UsageFamily, UsageSource } from './types.ts';
import { forEachMember, jsonValue } from './walk.ts';

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

/**
 * The model the request names: the body's `model` (read once by the policy
 * chain, which parses the body anyway), or a capture on the request path.
 */
export function requestModelOf(family: UsageFamily, path: string, bodyModel: string | undefined): string | undefined {
  if (family.requestModel.body && bodyModel) return bodyModel;
  const pattern = family.requestModel.path;
  if (pattern) {
    const m = pattern.exec(path);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** Which members of an object the family's sources need: taken whole, or walked into. */
interface Wanted {
  readonly take: ReadonlySet<string>;
  readonly nested: ReadonlyMap<string, Wanted>;
}

function wantedAt(family: UsageFamily, path: readonly string[]): Wanted {
  const take = new Set<string>();
  const nested = new Map<string, Wanted>();
  for (const s of family.sources) {
    if (s.at.length < path.length || path.some((k, i) => s.at[i] !== k)) continue;
    if (s.at.length === path.length) {
      take.add(s.usage);
      take.add(s.model);
    } else {
      const key = s.at[path.length]!;
      if (!nested.has(key)) nested.set(key, wantedAt(family, [...path, key]));
    }
  }
  return { take, nested };
}

const WANTED = new WeakMap<UsageFamily, Wanted>();

function prune(t: string, at: number, wanted: Wanted): Obj | undefined {
  const out: Obj = {};
  const ok = forEachMember(t, at, (key, start, end) => {
    if (wanted.take.has(key)) out[key] = jsonValue(t, start, end);
    else {
      const inner = wanted.nested.get(key);
      if (inner) out[key] = prune(t, start, inner);
    }
  });
  return ok ? out : undefined;
}

/**
 * readUsage for a JSON text (a latin1 view of its UTF-8 bytes), without
 * building the whole document: only the members the family's sources name
 * are parsed. A top-level array (Gemini's streamed JSON) is parsed whole.
 */
export function readUsageText(family: UsageFamily, latin1: string, into: Usage): void {
  let i = 0;
  while (i < latin1.length && latin1.charCodeAt(i) <= 0x20) i++;
  if (latin1.charCodeAt(i) === 0x5b) {
    readUsage(family, jsonValue(latin1, i, latin1.length), into);
    return;
  }
  let wanted = WANTED.get(family);
  if (!wanted) WANTED.set(family, (wanted = wantedAt(family, [])));
  const doc = prune(latin1, i, wanted);
  if (doc) readUsage(family, doc, into);
}
