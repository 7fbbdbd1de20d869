import { createRequire } from 'node:module';
import type RE2Type from 're2';

/**
 * Every user-supplied pattern (redactions and globs) runs on RE2: matching
 * costs time linear in the input whatever the pattern, so no prompt can make
 * a rule backtrack. RE2 refuses what it cannot run in linear time
 * (backreferences, lookahead and lookbehind, possessive quantifiers) when
 * the policy is compiled, never at match time.
 */
export type Pattern = RE2Type;

type RE2Constructor = typeof RE2Type;
let RE2: RE2Constructor | undefined;

/** Thrown when the native RE2 binding cannot be loaded (missing, or built for another Node ABI). */
export class NativeModuleError extends Error {
  readonly code = 'native_module';
  constructor(cause: unknown) {
    super(
      `the native module re2 failed to load (${(cause as Error).message.split('\n', 1)[0]}); ` +
        `it must be built for this Node (${process.version}): run npm rebuild re2`,
      { cause },
    );
    this.name = 'NativeModuleError';
  }
}

function re2(): RE2Constructor {
  if (!RE2) {
    try {
      RE2 = createRequire(import.meta.url)('re2') as RE2Constructor;
    } catch (err) {
      throw new NativeModuleError(err);
    }
  }
  return RE2;
}

/** Compiles an RE2 pattern; a SyntaxError names what RE2 refused (e.g. `invalid perl operator: (?=`). */
export function compilePattern(source: string, flags: string): Pattern {
  const Ctor = re2();
  return new Ctor(source, flags);
}

/** Regex source for one glob: `*` any run of characters, `?` exactly one; everything else literal. */
export function globSource(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += /[\\^$.|+()[\]{}]/.test(ch) ? `\\${ch}` : ch;
  }
  return out;
}

/** Globs, any of which may match the whole value, as one anchored RE2 pattern (`.` spans newlines). */
export function compileGlobs(globs: string | readonly string[]): Pattern {
  const list = typeof globs === 'string' ? [globs] : globs;
  return compilePattern(`^(?:${list.map(globSource).join('|')})$`, 's');
}
