import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { compileGlobs, compilePattern, type Pattern } from './regex.ts';
import type { LocalVerdict } from './types.ts';
import schema from './policy.schema.json' with { type: 'json' };

export class PolicyFileError extends Error {
  readonly code = 'invalid_policy';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolicyFileError';
  }
}

interface Redaction {
  readonly pattern: Pattern;
  readonly replacement: string;
}

interface Rule {
  readonly id: string;
  readonly decision: 'allow' | 'deny' | 'modify';
  readonly reason: string;
  readonly toolName: Pattern | undefined;
  readonly channel: Pattern | undefined;
  readonly input: ReadonlyArray<{ readonly path: readonly string[]; readonly globs: Pattern }>;
  readonly redact: readonly Redaction[];
}

/** What the local rules look at: the route's tool name and channel, and the body when it is a JSON object. */
export interface LocalCall {
  readonly toolName: string;
  readonly channel: string;
  readonly toolInput: Record<string, unknown> | undefined;
}

export interface LocalPolicy {
  readonly ruleCount: number;
  /** Rule ids in evaluation order. */
  readonly ruleIds: readonly string[];
  /** The document as read, so a worker thread can compile the same rules. */
  readonly text: string;
  readonly origin: string;
  /** Hex SHA-256 of `text`. */
  readonly sha256: string;
  /** Synchronous and linear in the size of the input for every rule (RE2). */
  evaluate(call: LocalCall): LocalVerdict;
}

type Globs = string | string[];
interface RuleDoc {
  id: string;
  decision: 'allow' | 'deny' | 'modify';
  reason?: string;
  match?: { tool_name?: Globs; channel?: Globs; input?: Record<string, Globs> };
  redact?: Array<{ pattern: string; flags?: string; replacement?: string }>;
}
interface PolicyDoc {
  default?: 'allow' | 'deny';
  default_reason?: string;
  rules: RuleDoc[];
}

let validator: ReturnType<Ajv2020['compile']> | undefined;

function validate(doc: unknown): asserts doc is PolicyDoc {
  if (!validator) {
    // validateSchema: false skips checking our own (fixed) schema against the
    // draft 2020-12 meta-schema, which compiled the whole meta-schema at every
    // start: about 30 ms of the time to ready.
    validator = new Ajv2020({ allErrors: true, strict: false, validateSchema: false }).compile(schema);
  }
  if (!validator(doc)) {
    const problems = (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
    throw new PolicyFileError(`policy does not match src/policy/policy.schema.json: ${[...new Set(problems)].join('; ')}`);
  }
}

/** Names a rule in messages by index and id, the way an operator finds it in the file. */
function ruleName(doc: RuleDoc, index: number): string {
  return `rules[${index}] (id ${JSON.stringify(doc.id)})`;
}

function refused(where: string, what: string, source: string, err: unknown): PolicyFileError {
  return new PolicyFileError(
    `${where}: ${what} ${JSON.stringify(source)} cannot be used: ${(err as Error).message} ` +
      '(patterns use RE2 syntax, which runs in linear time: no backreferences, lookahead, lookbehind or possessive quantifiers)',
    { cause: err },
  );
}

function compileRule(doc: RuleDoc, index: number): Rule {
  const name = ruleName(doc, index);
  const redact = (doc.redact ?? []).map((r, i) => {
    try {
      return { pattern: compilePattern(r.pattern, `g${r.flags ?? ''}`), replacement: r.replacement ?? '[REDACTED]' };
    } catch (err) {
      if ((err as { code?: string }).code === 'native_module') throw err;
      throw refused(`${name}.redact[${i}]`, 'pattern', r.pattern, err);
    }
  });
  const globs = (field: string, value: Globs | undefined): Pattern | undefined => {
    if (value === undefined) return undefined;
    try {
      return compileGlobs(value);
    } catch (err) {
      if ((err as { code?: string }).code === 'native_module') throw err;
      throw refused(`${name}.match.${field}`, 'glob', typeof value === 'string' ? value : value.join(', '), err);
    }
  };
  return {
    id: doc.id,
    decision: doc.decision,
    reason: doc.reason ?? '',
    toolName: globs('tool_name', doc.match?.tool_name),
    channel: globs('channel', doc.match?.channel),
    input: Object.entries(doc.match?.input ?? {}).map(([path, value]) => ({ path: path.split('.'), globs: globs(`input.${path}`, value)! })),
    redact,
  };
}

function fieldText(input: Record<string, unknown> | undefined, path: readonly string[]): string | undefined {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean' ? String(cur) : undefined;
}

function matches(rule: Rule, call: LocalCall): boolean {
  if (rule.toolName && !rule.toolName.test(call.toolName)) return false;
  if (rule.channel && !rule.channel.test(call.channel)) return false;
  for (const field of rule.input) {
    const text = fieldText(call.toolInput, field.path);
    if (text === undefined || !field.globs.test(text)) return false;
  }
  return true;
}

/** Applies every redaction to every string value (not keys); `changed` is false when nothing was rewritten. */
function redactValue(value: unknown, redactions: readonly Redaction[]): { value: unknown; changed: boolean } {
  if (typeof value === 'string') {
    let out = value;
    for (const r of redactions) out = r.pattern.replace(out, r.replacement);
    return { value: out, changed: out !== value };
  }
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const r = redactValue(item, redactions);
      changed ||= r.changed;
      return r.value;
    });
    return { value: changed ? out : value, changed };
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    // fromEntries defines own properties: a `__proto__` key stays a key.
    const out = Object.fromEntries(
      Object.entries(value).map(([key, item]) => {
        const r = redactValue(item, redactions);
        changed ||= r.changed;
        return [key, r.value];
      }),
    );
    return { value: changed ? out : value, changed };
  }
  return { value, changed: false };
}

/** Parses (YAML or JSON: JSON is YAML), validates and compiles a policy document. */
export function compilePolicy(text: string, origin: string): LocalPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyFileError(`${origin} is not valid YAML/JSON: ${(err as Error).message.split('\n', 1)[0]}`);
  }
  validate(doc);
  const rules = doc.rules.map(compileRule);
  const fallback: LocalVerdict =
    doc.default === 'deny'
      ? { action: 'deny', policyId: 'default', reason: doc.default_reason ?? 'no policy rule allows this request' }
      : { action: 'allow', policyId: '', reason: '' };

  return {
    ruleCount: rules.length,
    ruleIds: rules.map((r) => r.id),
    text,
    origin,
    sha256: createHash('sha256').update(text).digest('hex'),
    evaluate(call: LocalCall): LocalVerdict {
      for (const rule of rules) {
        if (!matches(rule, call)) continue;
        if (rule.decision !== 'modify') return { action: rule.decision, policyId: rule.id, reason: rule.reason };
        const redacted = redactValue(call.toolInput ?? {}, rule.redact);
        if (!redacted.changed) return { action: 'allow', policyId: rule.id, reason: rule.reason };
        const toolInput = redacted.value as Record<string, unknown>;
        return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', toolInput, body: Buffer.from(JSON.stringify(toolInput)) };
      }
      return fallback;
    },
  };
}
