import {
  asArray, assembleDecoder, createCallTable, createTextCollector, int, isObject, NO_EFFECT, rewriteFragment, setName, setWhole, str, textFragment,
  type DecoderOptions, type EventEffect, type Obj, type StreamDecoder,
} from './decoder.ts';

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

/** The candidates of a chunk that say they are finished. */
function finished(doc: Obj): number[] {
  const out: number[] = [];
  const candidates = asArray(doc.candidates);
  for (let pos = 0; pos < candidates.length; pos++) {
    const c = candidates[pos];
    if (isObject(c) && typeof c.finishReason === 'string' && c.finishReason !== '') out.push(int(c.index, pos));
  }
  return out;
}

function textKey(candidate: number): string {
  return `t${candidate}`;
}

/** A text part the rules read (thoughts are not the answer). */
function answerText(part: Obj): string | undefined {
  return part.thought === true ? undefined : str(part.text);
}

/**
 * Gemini GenerateContentResponse chunks (SSE with `alt=sse`): a tool call is
 * a `functionCall` part ({name, args, id}) and arrives whole in one chunk,
 * so it is complete with the event that carries it; its arguments are the
 * `args` object, as JSON text for the view. Text parts pass; a governed
 * text part is a candidate's text, complete when the candidate has a
 * `finishReason` (or the stream ends).
 */
export function createGeminiDecoder(options: DecoderOptions): StreamDecoder {
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
        const t = answerText(part);
        if (t === undefined) continue;
        text.append(`k${candidate}`, t);
        if (!options.governText || t === '') continue;
        if (textFragment(calls, textKey(candidate), t) === 'late') return { units: [], completes: [], late: true };
        if (!units.includes(textKey(candidate))) units.push(textKey(candidate));
      }
    }
    const completes = calls.complete(units.filter((k) => !k.startsWith('t')));
    if (options.governText) completes.push(...calls.complete(finished(doc).map(textKey)));
    return units.length || completes.length ? { units, completes } : NO_EFFECT;
  }

  function rewrite(doc: unknown, units: readonly string[]): void {
    if (!isObject(doc)) return;
    const callUnits = units.filter((k) => !k.startsWith('t'));
    let j = 0;
    for (const { candidate, part } of partsOf(doc)) {
      if (!isObject(part.functionCall)) {
        const key = textKey(candidate);
        if (answerText(part) && units.includes(key)) rewriteFragment(calls.get(key), part, 'text');
        continue;
      }
      const a = calls.get(callUnits[j++] ?? '');
      if (!a?.mod) continue;
      if (!isObject(a.mod.value)) throw new Error(`functionCall ${a.key} cannot carry args that are not a JSON object`);
      part.functionCall.args = a.mod.value;
    }
  }

  return assembleDecoder(calls, text, { markers: ['functionCall'], read, rewrite });
}

export { partsOf as geminiParts };
