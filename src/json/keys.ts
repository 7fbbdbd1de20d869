/**
 * True when some JSON object in `text` names the same key twice (after
 * unescaping: `"a"` and `"\u0061"` are one key). JSON.parse keeps the last
 * value and other parsers the first, so a policy could judge one value while
 * the upstream reads another; such bodies are refused.
 *
 * Only called on text JSON.parse accepted, so it skips validation: one pass,
 * iterative (no recursion, any depth), strings jumped over with indexOf.
 */
export function hasDuplicateKeys(text: string): boolean {
  return jsonShapeProblem(text, Number.POSITIVE_INFINITY) === 'duplicate key';
}

/**
 * The same pass, also refusing nesting deeper than `maxDepth`: the policy
 * code walks documents recursively, and a body of a million `[` (valid JSON)
 * would otherwise overflow the stack and answer 500.
 */
export function jsonShapeProblem(text: string, maxDepth: number): 'duplicate key' | 'nested too deeply' | undefined {
  const stack: Array<Set<string> | undefined> = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c /* \ */) slashes++;
        if (slashes % 2 === 0) break;
      }
      if (keyNext) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return 'duplicate key';
        keys.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      if (stack.push(new Set()) > maxDepth) return 'nested too deeply';
      keyNext = true;
    } else if (c === 0x5b /* [ */) {
      if (stack.push(undefined) > maxDepth) return 'nested too deeply';
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      keyNext = false;
    } else if (c === 0x2c /* , */) {
      keyNext = stack[stack.length - 1] !== undefined;
    }
  }
  return undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why bytes are not a strict JSON object; `not_json` covers bad UTF-8, a BOM and lenient syntax. */
export type StrictObjectProblem = 'not_json' | 'not_object' | 'duplicate key' | 'nested too deeply';

/**
 * Bytes as one strict JSON object: UTF-8 (a BOM is refused), JSON.parse's
 * grammar, no object naming a key twice and at most `maxDepth` levels.
 */
export function parseStrictObject(bytes: Uint8Array, maxDepth: number): { value: Record<string, unknown> } | { problem: StrictObjectProblem } {
  let text: string;
  let value: unknown;
  try {
    text = strictUtf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return { problem: 'not_json' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { problem: 'not_object' };
  const problem = jsonShapeProblem(text, maxDepth);
  return problem ? { problem } : { value: value as Record<string, unknown> };
}
