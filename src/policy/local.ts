import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { compileRules, type LocalPolicy, type PolicyDoc } from './rules.ts';
import { PolicyFileError } from './file-error.ts';
import schema from './policy.schema.json' with { type: 'json' };
import { compileResponseRules } from './response-rules.ts';

export { MODEL_FIELD, RewriteTooLargeError } from './rules.ts';
export { PolicyFileError } from './file-error.ts';
export type { FieldValue, JsonObjectBody, LocalCall, LocalPolicy, PolicyDoc } from './rules.ts';

/**
 * The policy file's loader: YAML (JSON is YAML) against
 * src/policy/policy.schema.json, then the rule compiler (rules.ts). Kept apart
 * from the compiler so a policy worker thread, which is sent the validated
 * document, loads neither the YAML parser nor the schema validator (about
 * 14 MB of a worker's memory).
 */
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

/** Parses (YAML or JSON: JSON is YAML) and validates a policy document; throws PolicyFileError. */
export function readPolicyDocument(text: string, origin: string): PolicyDoc {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyFileError(`${origin} is not valid YAML/JSON: ${(err as Error).message.split('\n', 1)[0]}`);
  }
  validate(doc);
  return doc;
}

/** Parses, validates and compiles a policy document (its `responses` rules too, when it has some). */
export function compilePolicy(text: string, origin: string): LocalPolicy {
  const doc = readPolicyDocument(text, origin);
  const policy = compileRules(doc, origin, createHash('sha256').update(text).digest('hex'));
  // Response rules are compiled here, not in compileRules: a policy worker
  // (which compiles the validated document) governs request bodies only.
  const responses = compileResponseRules(doc.responses);
  return responses.ruleCount > 0 ? { ...policy, responses } : policy;
}
