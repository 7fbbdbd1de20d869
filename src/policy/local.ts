import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { compileGlobs } from './glob.ts';
import type { Evaluator, HookEvent, Verdict } from './types.ts';
import schema from './policy.schema.json' with { type: 'json' };

export class PolicyFileError extends Error {
  readonly code = 'invalid_policy';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolicyFileError';
  }
}

interface Redaction {
  readonly pattern: RegExp;
  readonly replacement: string;
}

interface Rule {
  readonly id: string;
  readonly decision: 'allow' | 'deny' | 'modify';
  readonly reason: string;
  readonly toolName: RegExp | undefined;
  readonly channel: RegExp | undefined;
  readonly input: ReadonlyArray<{ readonly path: readonly string[]; readonly globs: RegExp }>;
  readonly redact: readonly Redaction[];
}

export interface LocalPolicy extends Evaluator {
  readonly ruleCount: number;
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

function compileRule(doc: RuleDoc, index: number): Rule {
  const redact = (doc.redact ?? []).map((r, i) => {
    try {
      return { pattern: new RegExp(r.pattern, `g${r.flags ?? ''}`), replacement: r.replacement ?? '[REDACTED]' };
    } catch (err) {
      throw new PolicyFileError(`rules[${index}].redact[${i}].pattern is not a valid regular expression: ${(err as Error).message}`);
    }
  });
  return {
    id: doc.id,
    decision: doc.decision,
    reason: doc.reason ?? '',
    toolName: doc.match?.tool_name === undefined ? undefined : compileGlobs(doc.match.tool_name),
    channel: doc.match?.channel === undefined ? undefined : compileGlobs(doc.match.channel),
    input: Object.entries(doc.match?.input ?? {}).map(([path, globs]) => ({ path: path.split('.'), globs: compileGlobs(globs) })),
    redact,
  };
}

function fieldText(input: Record<string, unknown> | undefined, path: readonly string[]): string | undefined {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean' ? String(cur) : undefined;
}

function matches(rule: Rule, event: HookEvent): boolean {
  if (rule.toolName && !rule.toolName.test(event.tool_name)) return false;
  if (rule.channel && !rule.channel.test(event.channel ?? '')) return false;
  for (const field of rule.input) {
    const text = fieldText(event.tool_input, field.path);
    if (text === undefined || !field.globs.test(text)) return false;
  }
  return true;
}

/** Applies every redaction to every string value (not keys); returns undefined when nothing changed. */
function redactValue(value: unknown, redactions: readonly Redaction[]): { value: unknown; changed: boolean } {
  if (typeof value === 'string') {
    let out = value;
    for (const r of redactions) out = out.replace(r.pattern, r.replacement);
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
  const fallback: Verdict =
    doc.default === 'deny'
      ? { action: 'deny', policyId: 'default', reason: doc.default_reason ?? 'no policy rule allows this request' }
      : { action: 'allow', policyId: '', reason: '' };

  return {
    ruleCount: rules.length,
    async evaluate(event: HookEvent): Promise<Verdict> {
      for (const rule of rules) {
        if (!matches(rule, event)) continue;
        if (rule.decision !== 'modify') return { action: rule.decision, policyId: rule.id, reason: rule.reason };
        const redacted = redactValue(event.tool_input ?? {}, rule.redact);
        if (!redacted.changed) return { action: 'allow', policyId: rule.id, reason: rule.reason };
        const toolInput = redacted.value as Record<string, unknown>;
        return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', toolInput, body: Buffer.from(JSON.stringify(toolInput)) };
      }
      return fallback;
    },
  };
}
