import type { Usage, UsageFamily, UsageSource } from './types.ts';
import { FOUND, findTopLevel, jsonValue, pickMembers, stringValue, type Take, type Wanted } from './walk.ts';

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

function countsOf(source: UsageSource): Wanted {
  const keys = [...new Set([...source.input, ...source.output])];
  return { keys, take: keys.map(() => 'number') };
}

function wantedAt(family: UsageFamily, path: readonly string[]): Wanted {
  const keys: string[] = [];
  const take: Take[] = [];
  const add = (key: string, how: Take): void => {
    if (keys.includes(key)) return;
    keys.push(key);
    take.push(how);
  };
  for (const s of family.sources) {
    if (s.at.length < path.length || path.some((k, i) => s.at[i] !== k)) continue;
    if (s.at.length === path.length) {
      add(s.usage, countsOf(s));
      add(s.model, 'string');
    } else {
      const key = s.at[path.length]!;
      add(key, wantedAt(family, [...path, key]));
    }
  }
  return { keys, take };
}

/** The source at the document root, prepared for reading from the end (src/usage/walk.ts findTopLevel). */
interface RootReader {
  readonly source: UsageSource;
  /** `"usage"`, quotes included. */
  readonly needle: string;
  /** The usage object's members that count. */
  readonly counts: Wanted;
}

interface Reader {
  readonly wanted: Wanted;
  readonly root: RootReader | undefined;
}

const READERS = new WeakMap<UsageFamily, Reader>();
function readerOf(family: UsageFamily): Reader {
  let reader = READERS.get(family);
  if (!reader) {
    const source = family.sources.find((s) => s.at.length === 0);
    reader = {
      wanted: wantedAt(family, []),
      root: source && { source, needle: JSON.stringify(source.usage), counts: countsOf(source) },
    };
    READERS.set(family, reader);
  }
  return reader;
}

/** The root source read from the end of the text; false (and nothing recorded) when that cannot be shown or reports no count. */
function readRoot(root: RootReader, t: string, into: Usage): boolean {
  if (!findTopLevel(t, root.needle, root.source.model)) return false;
  const { source } = root;
  const holder: Obj = { [source.usage]: pickMembers(t, FOUND[0]!, root.counts) };
  if (FOUND[2] !== -1) holder[source.model] = stringValue(t, FOUND[2]!, FOUND[3]!);
  const found: Usage = {};
  if (!readSource(holder, source, found)) return false;
  Object.assign(into, found);
  return true;
}

/**
 * readUsage for a JSON text (a latin1 view of its UTF-8 bytes), without
 * building the whole document: only the members the family's sources name
 * are parsed. A body is read from its end when it can be (the root
 * source's usage is its last member or nearly), else walked whole; a
 * top-level array (Gemini's streamed JSON) is parsed whole.
 */
export function readUsageText(family: UsageFamily, latin1: string, into: Usage): void {
  let i = 0;
  while (i < latin1.length && latin1.charCodeAt(i) <= 0x20) i++;
  if (latin1.charCodeAt(i) === 0x5b) {
    readUsage(family, jsonValue(latin1, i, latin1.length), into);
    return;
  }
  const reader = readerOf(family);
  if (reader.root && readRoot(reader.root, latin1, into)) return;
  const doc = pickMembers(latin1, i, reader.wanted);
  if (doc) readUsage(family, doc, into);
}
