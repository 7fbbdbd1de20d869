/** Compiles globs (`*` any run, `?` one character, anchored) into one RegExp. */
export function compileGlobs(globs: string | readonly string[]): RegExp {
  const list = typeof globs === 'string' ? [globs] : globs;
  const alternatives = list.map((glob) =>
    glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.'),
  );
  return new RegExp(`^(?:${alternatives.join('|')})$`, 's');
}
