import { toolCallOf } from './arguments.ts';
import { isObject, str, type Modification } from './decoder.ts';
import { geminiParts } from './gemini.ts';
import type { JsonParts } from './json-parts.ts';

/**
 * A Gemini GenerateContentResponse, or an array of them (streamGenerateContent
 * without `alt=sse` answers a JSON array): `functionCall` parts and text parts
 * (thoughts excepted).
 */
export function geminiJsonParts(doc: unknown, into: JsonParts): void {
  const chunks = Array.isArray(doc) ? doc : [doc];
  let n = 0;
  for (const chunk of chunks) {
    if (!isObject(chunk)) continue;
    for (const { candidate, part } of geminiParts(chunk)) {
      const key = `p${n++}`;
      if (isObject(part.functionCall)) {
        const fc = part.functionCall;
        const call = toolCallOf(key, str(fc.id) ?? '', str(fc.name) ?? '', JSON.stringify(fc.args ?? {}));
        into.calls.push({
          call,
          set: (mod: Modification) => {
            if (!isObject(mod.value)) throw new Error(`functionCall ${key} cannot carry args that are not a JSON object`);
            fc.args = mod.value;
          },
        });
      } else if (part.thought !== true) {
        const t = str(part.text);
        if (t !== undefined) into.texts.push({ part: { key: `k${candidate}.${key}`, text: t }, set: (v) => { part.text = v; } });
      }
    }
  }
}
