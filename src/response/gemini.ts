import { asArray, createCallTable, setName, setWhole, createTextCollector, int, isObject, NO_EFFECT, str, type EventEffect, type Obj, type StreamDecoder } from './decoder.ts';

/** Every part of a GenerateContentResponse, with its candidate's index, in order. */
function* partsOf(doc: Obj): Generator<{ candidate: number; part: Obj }> {
  const candidates = asArray(doc.candidates);
  for (let pos = 0; pos < candidates.length; pos++) {
    const c = candidates[pos];
    if (!isObject(c) || !isObject(c.content)) continue;
    const candidate = int(c.index, pos);
    for (const part of asArray(c.content.parts)) if (isObject(part)) yield { candidate, part };
  }
}

/**
 * Gemini GenerateContentResponse chunks (SSE with `alt=sse`): a tool call is
 * a `functionCall` part ({name, args, id}) and arrives whole in one chunk,
 * so it is complete with the event that carries it; its arguments are the
 * `args` object, as JSON text for the view. Text parts pass.
 */
export function createGeminiDecoder(): StreamDecoder {
  const calls = createCallTable();
  const text = createTextCollector();
  let next = 0;

  function read(doc: unknown): EventEffect {
    if (!isObject(doc)) return NO_EFFECT;
    const units: string[] = [];
    for (const { candidate, part } of partsOf(doc)) {
      if (isObject(part.functionCall)) {
        const fc = part.functionCall;
        const key = `p${next++}`;
        const a = calls.take(key);
        a.id = str(fc.id) ?? '';
        setName(a, str(fc.name));
        setWhole(a, JSON.stringify(fc.args ?? {}));
        units.push(key);
      } else {
        const t = str(part.text);
        if (t !== undefined && part.thought !== true) text.append(`k${candidate}`, t);
      }
    }
    return units.length ? { units, completes: calls.complete(units) } : NO_EFFECT;
  }

  function rewrite(doc: unknown, units: readonly string[]): void {
    if (!isObject(doc)) return;
    let j = 0;
    for (const { part } of partsOf(doc)) {
      if (!isObject(part.functionCall)) continue;
      const a = calls.get(units[j++] ?? '');
      if (!a?.mod) continue;
      if (!isObject(a.mod.value)) throw new Error(`functionCall ${a.key} cannot carry args that are not a JSON object`);
      part.functionCall.args = a.mod.value;
    }
  }

  return {
    markers: ['functionCall'],
    read,
    done: () => NO_EFFECT,
    open: calls.open,
    call: calls.call,
    variants: calls.variants,
    calls: calls.all,
    modify: calls.modify,
    rewrite,
    text: text.parts,
  };
}

export { partsOf as geminiParts };
