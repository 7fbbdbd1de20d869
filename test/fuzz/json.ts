/**
 * The test's own duplicate-key detector (independent of the sidecar's): a
 * reference implementation written the slow, obvious way, a recursive
 * descent over JSON text. Only called on text that JSON.parse accepted.
 */
export function hasDuplicateKeys(text: string): boolean {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  let dup = false;
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        const key = str();
        if (keys.has(key)) dup = true;
        keys.add(key);
        ws();
        i++; // :
        value();
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && !',}] \t\r\n'.includes(text[i]!)) i++;
    }
  };
  try {
    value();
  } catch {
    return false; // too deep for the reference: not judged here
  }
  return dup;
}
