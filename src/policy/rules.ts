import type { Edit } from '../json/edits.ts';
import { escapeJsonString, fieldTrie, Kind, scanJson, unescapeJsonString, type FieldTrie } from '../json/scan.ts';
import { compilePattern, type Pattern } from './regex.ts';
import { cannotMatchSpace, sourceOffsets, WINDOW_BYTES, windowEnds } from './windows.ts';
import type { LocalVerdict } from './types.ts';
import type { ResponseRules } from './response-rules.ts';
import { ruleGlobs, unusable } from './file-error.ts';


interface Redaction {
  readonly pattern: Pattern;
  readonly replacement: string;
  /** The pattern cannot match a space, so a long string may be redacted in windows cut at spaces (windows.ts). */
  readonly spaceFree: boolean;
}

interface Rule {
  readonly id: string;
  readonly decision: 'allow' | 'deny' | 'modify';
  readonly reason: string;
  readonly toolName: Pattern | undefined;
  readonly channel: Pattern | undefined;
  readonly input: ReadonlyArray<{ readonly path: readonly string[]; readonly id: number; readonly globs: Pattern }>;
  readonly redact: readonly Redaction[];
}

/** A value of the body at one of the policy's field paths: its kind and byte span (a string's inside its quotes). */
export interface FieldValue {
  readonly kind: Kind;
  readonly start: number;
  readonly end: number;
  readonly escaped: boolean;
}

/** A body that is one strict JSON object, already scanned, with the values at the policy's field paths by id. */
export interface JsonObjectBody {
  readonly bytes: Buffer;
  readonly values: ReadonlyArray<FieldValue | undefined>;
}

/** What the local rules look at: the route's tool name and channel, and the body when it is a JSON object. */
export interface LocalCall {
  readonly toolName: string;
  readonly channel: string;
  readonly json: JsonObjectBody | undefined;
}

/** Field id 0 of every policy's trie is the body's top-level `model`. */
export const MODEL_FIELD = 0;

/** A rewrite would add more than the request may use: the fail mode decides. */
export class RewriteTooLargeError extends Error {
  readonly code = 'rewrite_too_large';
  constructor(limit: number) {
    super(`the redacted body would add more than ${limit} bytes`);
    this.name = 'RewriteTooLargeError';
  }
}

export interface LocalPolicy {
  readonly ruleCount: number;
  /** Rule ids in evaluation order. */
  readonly ruleIds: readonly string[];
  /** The validated document, so a worker thread can compile the same rules without the YAML and schema loaders. */
  readonly document: PolicyDoc;
  readonly origin: string;
  /** Hex SHA-256 of `text`. */
  readonly sha256: string;
  /** The body paths the rules read (id 0 is `model`): the scan reports their values. */
  readonly fields: FieldTrie;
  /**
   * The compiled `responses` section (src/policy/response-rules.ts), set by the
   * loader (local.ts) when the file has response rules; absent in a policy
   * worker, which governs request bodies only.
   */
  readonly responses?: ResponseRules | undefined;
  /**
   * Synchronous and linear in the size of the input for every rule (RE2).
   * A redaction is a list of edits of the body's bytes, adding at most
   * `maxAddedBytes` (else RewriteTooLargeError).
   */
  evaluate(call: LocalCall, maxAddedBytes?: number): LocalVerdict;
}

type Globs = string | string[];
interface RuleDoc {
  id: string;
  decision: 'allow' | 'deny' | 'modify';
  reason?: string;
  match?: { tool_name?: Globs; channel?: Globs; input?: Record<string, Globs> };
  redact?: Array<{ pattern: string; flags?: string; replacement?: string }>;
}
/** A policy document that passed the schema (local.ts): what a worker thread is sent to compile the same rules. */
export interface PolicyDoc {
  default?: 'allow' | 'deny';
  default_reason?: string;
  rules: RuleDoc[];
  /** Rules on responses (src/policy/response-rules.ts compiles them; the loader, not compileRules). */
  responses?: unknown[];
}

/** Names a rule in messages by index and id, the way an operator finds it in the file. */
function ruleName(doc: RuleDoc, index: number): string {
  return `rules[${index}] (id ${JSON.stringify(doc.id)})`;
}


function compileRule(doc: RuleDoc, index: number, fieldId: (path: readonly string[]) => number): Rule {
  const name = ruleName(doc, index);
  const redact = (doc.redact ?? []).map((r, i) => {
    try {
      return { pattern: compilePattern(r.pattern, `g${r.flags ?? ''}`), replacement: r.replacement ?? '[REDACTED]', spaceFree: cannotMatchSpace(r.pattern) };
    } catch (err) {
      throw unusable(`${name}.redact[${i}]`, 'pattern', r.pattern, err);
    }
  });
  const globs = (field: string, value: Globs | undefined): Pattern | undefined => ruleGlobs(name, field, value);
  return {
    id: doc.id,
    decision: doc.decision,
    reason: doc.reason ?? '',
    toolName: globs('tool_name', doc.match?.tool_name),
    channel: globs('channel', doc.match?.channel),
    input: Object.entries(doc.match?.input ?? {}).map(([path, value]) => {
      const keys = path.split('.');
      return { path: keys, id: fieldId(keys), globs: globs(`input.${path}`, value)! };
    }),
    redact,
  };
}

/** A field's value as the rules compare it: a string's bytes, a number or boolean as JavaScript writes it. */
function fieldText(json: JsonObjectBody | undefined, id: number): Uint8Array | string | undefined {
  const value = json?.values[id];
  if (!value) return undefined;
  switch (value.kind) {
    case Kind.String:
      return value.escaped ? unescapeJsonString(json.bytes, value.start, value.end) : json.bytes.subarray(value.start, value.end);
    case Kind.Number:
      return String(Number(json.bytes.toString('latin1', value.start, value.end)));
    case Kind.True:
      return 'true';
    case Kind.False:
      return 'false';
    default:
      return undefined;
  }
}

function matches(rule: Rule, call: LocalCall): boolean {
  if (rule.toolName && !rule.toolName.test(call.toolName)) return false;
  if (rule.channel && !rule.channel.test(call.channel)) return false;
  for (const field of rule.input) {
    const text = fieldText(call.json, field.id);
    if (text === undefined || !field.globs.test(text as string)) return false;
  }
  return true;
}

/** Every redaction in turn on `value`; undefined when nothing changed. */
function redactValue(value: Uint8Array, redactions: readonly Redaction[]): Uint8Array | undefined {
  let changed = false;
  for (const r of redactions) {
    r.pattern.lastIndex = 0;
    if (!r.pattern.test(value as Buffer)) continue;
    r.pattern.lastIndex = 0;
    const next = r.pattern.replace(value as Buffer, r.replacement) as unknown as Buffer;
    if (next.equals(value)) continue;
    value = next;
    changed = true;
  }
  return changed ? value : undefined;
}

/**
 * Every redaction applied in turn to every string value (not keys), on the
 * value's UTF-8 bytes: RE2 reads a Buffer natively, so no UTF-16 copy of a
 * large prompt is made. A value that changes becomes an edit (its new
 * content, JSON-escaped); the rest of the body stays as it was, byte for
 * byte. A long value whose rule's patterns cannot match a space is redacted
 * in windows cut at spaces (windows.ts), one edit per changed window.
 */
function redactEdits(json: JsonObjectBody, redactions: readonly Redaction[], maxAddedBytes: number): Edit[] {
  const edits: Edit[] = [];
  const bytes = json.bytes;
  const windowed = redactions.every((r) => r.spaceFree);
  let added = 0;
  const push = (start: number, end: number, value: Uint8Array): void => {
    const content = escapeJsonString(value);
    added += content.length;
    if (added > maxAddedBytes) throw new RewriteTooLargeError(maxAddedBytes);
    edits.push({ start, end, bytes: content });
  };
  const scanned = scanJson(bytes, {
    maxDepth: Number.POSITIVE_INFINITY,
    string(start, end, escaped) {
      const value: Uint8Array = escaped ? unescapeJsonString(bytes, start, end) : bytes.subarray(start, end);
      if (!windowed || value.length <= WINDOW_BYTES * 2) {
        const redacted = redactValue(value, redactions);
        if (redacted) push(start, end, redacted);
        return;
      }
      const ends = windowEnds(value);
      const sources = escaped ? sourceOffsets(bytes, start, end, ends) : ends.map((e) => start + e);
      let from = 0;
      let sourceFrom = start;
      ends.forEach((to, k) => {
        const redacted = redactValue(value.subarray(from, to), redactions);
        if (redacted) push(sourceFrom, sources[k]!, redacted);
        from = to;
        sourceFrom = sources[k]!;
      });
    },
  });
  if (!scanned.ok) throw new Error(`redaction scan of a checked body failed (${scanned.problem})`);
  return edits;
}

/** Compiles a validated policy document (RE2 patterns and globs); `sha256` names the file version it came from. */
export function compileRules(doc: PolicyDoc, origin: string, sha256: string): LocalPolicy {
  const paths: string[][] = [['model']];
  const ids = new Map<string, number>([[JSON.stringify(['model']), MODEL_FIELD]]);
  const fieldId = (path: readonly string[]): number => {
    const key = JSON.stringify(path);
    let id = ids.get(key);
    if (id === undefined) {
      id = paths.push([...path]) - 1;
      ids.set(key, id);
    }
    return id;
  };
  const rules = doc.rules.map((rule, index) => compileRule(rule, index, fieldId));
  const fallback: LocalVerdict =
    doc.default === 'deny'
      ? { action: 'deny', policyId: 'default', reason: doc.default_reason ?? 'no policy rule allows this request' }
      : { action: 'allow', policyId: '', reason: '' };

  return {
    ruleCount: rules.length,
    ruleIds: rules.map((r) => r.id),
    document: doc,
    origin,
    sha256,
    fields: fieldTrie(paths),
    evaluate(call: LocalCall, maxAddedBytes = Number.POSITIVE_INFINITY): LocalVerdict {
      for (const rule of rules) {
        if (!matches(rule, call)) continue;
        if (rule.decision !== 'modify') return { action: rule.decision, policyId: rule.id, reason: rule.reason };
        const edits = call.json ? redactEdits(call.json, rule.redact, maxAddedBytes) : [];
        if (edits.length === 0) return { action: 'allow', policyId: rule.id, reason: rule.reason };
        return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', edits };
      }
      return fallback;
    },
  };
}
