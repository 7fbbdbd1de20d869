import { compileGlobs, type Pattern } from './regex.ts';

/** The policy file (or one rule of it) cannot be used: the message names the rule and the reason. */
export class PolicyFileError extends Error {
  readonly code = 'invalid_policy';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolicyFileError';
  }
}

/**
 * A rule's pattern or glob that RE2 refused, named by where it stands. A
 * missing native module is not the policy's fault: that error is thrown as it is.
 */
export function unusable(where: string, what: string, source: string, err: unknown): PolicyFileError {
  if ((err as { code?: string }).code === 'native_module') throw err;
  return new PolicyFileError(
    `${where}: ${what} ${JSON.stringify(source)} cannot be used: ${(err as Error).message} ` +
      '(patterns use RE2 syntax, which runs in linear time: no backreferences, lookahead, lookbehind or possessive quantifiers)',
    { cause: err },
  );
}

/** A rule's globs (one or a list) compiled, or undefined when the rule leaves them out; refused as `<rule>.match.<field>` when RE2 cannot run them. */
export function ruleGlobs(rule: string, field: string, value: string | readonly string[] | undefined): Pattern | undefined {
  if (value === undefined) return undefined;
  try {
    return compileGlobs(value);
  } catch (err) {
    throw unusable(`${rule}.match.${field}`, 'glob', typeof value === 'string' ? value : value.join(', '), err);
  }
}
