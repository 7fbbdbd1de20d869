import { Ajv2020 } from 'ajv/dist/2020.js';
import { PolicyFileError, ruleGlobs, unusable } from './file-error.ts';
import { compilePattern, type Pattern } from './regex.ts';
import schema from './policy.schema.json' with { type: 'json' };
import { parseFieldPath, someFieldMatches, type FieldPath } from './response-fields.ts';
import { redactString, redactValue, type Redaction } from './response-redact.ts';
import { NO_MATCH, type PartVerdict, type TextPart, type ToolCall } from './response-types.ts';

type Globs = string | string[];

/** One rule of the policy file's `responses` section, as written (src/policy/policy.schema.json, $defs/responseRule). */
export interface ResponseRuleDoc {
  id: string;
  description?: string;
  target?: 'tool_call' | 'text';
  match?: { tool_name?: Globs; arguments?: Record<string, Globs>; text?: Globs };
  decision: 'allow' | 'deny' | 'modify';
  reason?: string;
  redact?: Array<{ name?: string; pattern: string; flags?: string; replacement?: string }>;
}

interface Rule {
  readonly id: string;
  readonly target: 'tool_call' | 'text';
  readonly decision: 'allow' | 'deny' | 'modify';
  readonly reason: string;
  readonly toolName: Pattern | undefined;
  readonly fields: ReadonlyArray<{ readonly path: FieldPath; readonly globs: Pattern }>;
  readonly text: Pattern | undefined;
  readonly redact: readonly Redaction[];
}

/** The compiled `responses` rules. Every evaluation is synchronous and linear in its input (RE2). */
export interface ResponseRules {
  readonly ruleCount: number;
  /** Rule ids in evaluation order. */
  readonly ruleIds: readonly string[];
  /** Whether some rule governs text (streams then hold text as they hold tool calls; see gate.ts). */
  readonly governsText: boolean;
  /** The first tool_call rule that matches decides; none matching allows (policyId ''). */
  evaluateCall(call: ToolCall): PartVerdict;
  /** The first text rule that matches decides; none matching allows (policyId ''). */
  evaluateText(part: TextPart): PartVerdict;
}

let validator: ReturnType<Ajv2020['compile']> | undefined;

/** The section against the policy schema's own definition of it, so a direct caller gets the loader's checks. */
function validate(section: unknown): asserts section is ResponseRuleDoc[] {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, strict: false, validateSchema: false });
    ajv.addSchema(schema);
    validator = ajv.compile({ $ref: `${schema.$id}#/properties/responses` });
  }
  if (!validator(section)) {
    const problems = (validator.errors ?? []).map((e) => `responses${e.instancePath || ''} ${e.message ?? 'is invalid'}`);
    throw new PolicyFileError(`policy does not match src/policy/policy.schema.json: ${[...new Set(problems)].join('; ')}`);
  }
}


function compileRule(doc: ResponseRuleDoc, index: number): Rule {
  const name = `responses[${index}] (id ${JSON.stringify(doc.id)})`;
  const globs = (field: string, value: Globs | undefined): Pattern | undefined => ruleGlobs(name, field, value);
  const fields = Object.entries(doc.match?.arguments ?? {}).map(([path, value]) => {
    const parsed = parseFieldPath(path);
    if (typeof parsed === 'string') throw new PolicyFileError(`${name}.match.arguments: field path ${JSON.stringify(path)} cannot be used: ${parsed}`);
    return { path: parsed, globs: globs(`arguments.${JSON.stringify(path)}`, value)! };
  });
  const redact = (doc.redact ?? []).map((r, i): Redaction => {
    try {
      return { name: r.name ?? '', pattern: compilePattern(r.pattern, `g${r.flags ?? ''}`), replacement: r.replacement ?? '[REDACTED]' };
    } catch (err) {
      throw unusable(`${name}.redact[${i}]`, 'pattern', r.pattern, err);
    }
  });
  return {
    id: doc.id,
    target: doc.target ?? 'tool_call',
    decision: doc.decision,
    reason: doc.reason ?? '',
    toolName: globs('tool_name', doc.match?.tool_name),
    fields,
    text: globs('text', doc.match?.text),
    redact,
  };
}

function callMatches(rule: Rule, call: ToolCall): boolean {
  if (rule.toolName && !rule.toolName.test(call.name)) return false;
  for (const field of rule.fields) if (!someFieldMatches(call.arguments, field.path, field.globs)) return false;
  return true;
}

/** A modify rule's verdict on a call: its redactions applied to the argument string values (the text when it is not JSON); allow when nothing changed. */
function modifyCall(rule: Rule, call: ToolCall): PartVerdict {
  if (call.argumentsJson) {
    const value = redactValue(call.arguments, rule.redact);
    if (value === call.arguments) return { action: 'allow', policyId: rule.id, reason: rule.reason };
    return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', value, text: JSON.stringify(value) };
  }
  const text = redactString(call.argumentsText, rule.redact);
  if (text === call.argumentsText) return { action: 'allow', policyId: rule.id, reason: rule.reason };
  return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', value: text, text };
}

function modifyText(rule: Rule, part: TextPart): PartVerdict {
  const text = redactString(part.text, rule.redact);
  if (text === part.text) return { action: 'allow', policyId: rule.id, reason: rule.reason };
  return { action: 'modify', policyId: rule.id, reason: rule.reason || 'redacted', value: text, text };
}

/**
 * Validates and compiles the policy file's `responses` section (undefined:
 * no response rules). Throws PolicyFileError naming the rule, as
 * `responses[<index>] (id "<id>")`, for a pattern RE2 refuses or a field
 * path that cannot be used.
 */
export function compileResponseRules(section: unknown): ResponseRules {
  if (section === undefined) section = [];
  validate(section);
  const rules = section.map(compileRule);
  const callRules = rules.filter((r) => r.target === 'tool_call');
  const textRules = rules.filter((r) => r.target === 'text');
  return {
    ruleCount: rules.length,
    ruleIds: rules.map((r) => r.id),
    governsText: textRules.length > 0,
    evaluateCall(call) {
      for (const rule of callRules) {
        if (!callMatches(rule, call)) continue;
        if (rule.decision === 'modify') return modifyCall(rule, call);
        return { action: rule.decision, policyId: rule.id, reason: rule.reason };
      }
      return NO_MATCH;
    },
    evaluateText(part) {
      for (const rule of textRules) {
        if (rule.text && !rule.text.test(part.text)) continue;
        if (rule.decision === 'modify') return modifyText(rule, part);
        return { action: rule.decision, policyId: rule.id, reason: rule.reason };
      }
      return NO_MATCH;
    },
  };
}
