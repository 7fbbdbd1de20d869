import { toolCallOf } from './arguments.ts';
import { asArray, int, isObject, str, type Modification, type Obj } from './decoder.ts';
import type { JsonParts } from './json-parts.ts';
import { itemArguments, shapeOf } from './openai-responses.ts';

/** A Chat Completions body: `choices[].message` with `content`, `tool_calls[]` and the deprecated `function_call`. */
function chatParts(doc: Obj, into: JsonParts): void {
  const choices = asArray(doc.choices);
  for (let pos = 0; pos < choices.length; pos++) {
    const ch = choices[pos];
    if (!isObject(ch) || !isObject(ch.message)) continue;
    const message = ch.message;
    const c = int(ch.index, pos);
    const content = str(message.content);
    if (content !== undefined) {
      into.texts.push({ part: { key: `c${c}`, text: content }, set: (t) => { message.content = t; } });
    }
    const entries = asArray(message.tool_calls);
    for (let j = 0; j < entries.length; j++) {
      const entry = entries[j];
      if (!isObject(entry)) continue;
      const fn = isObject(entry.function) ? entry.function : isObject(entry.custom) ? entry.custom : undefined;
      const field = isObject(entry.function) ? 'arguments' : 'input';
      const call = toolCallOf(`c${c}.t${j}`, str(entry.id) ?? '', str(fn?.name) ?? '', str(fn?.[field]) ?? '');
      into.calls.push({ call, set: (mod: Modification) => { if (fn) fn[field] = mod.text; } });
    }
    if (isObject(message.function_call)) {
      const fc = message.function_call;
      const call = toolCallOf(`c${c}.f`, '', str(fc.name) ?? '', str(fc.arguments) ?? '');
      into.calls.push({ call, set: (mod: Modification) => { fc.arguments = mod.text; } });
    }
  }
}

/** A Responses API body: `output[]` items, call items (see openai-responses.ts) and messages' `output_text` parts. */
function responsesParts(doc: Obj, into: JsonParts): void {
  const output = asArray(doc.output);
  for (let k = 0; k < output.length; k++) {
    const item = output[k];
    if (!isObject(item)) continue;
    const shape = shapeOf(item);
    if (shape) {
      const name = (shape.named ? str(item.name) : str(item.type)) ?? '';
      const call = toolCallOf(`o${k}`, str(item.call_id) || str(item.id) || '', name, itemArguments(item, shape) ?? '');
      into.calls.push({
        call,
        set: (mod: Modification) => {
          if (shape.kind === 'text') item[shape.field] = mod.text;
          else if (isObject(mod.value) || Array.isArray(mod.value)) item[shape.field] = mod.value;
          else throw new Error(`${item.type as string} o${k} cannot carry arguments that are not JSON`);
        },
      });
      continue;
    }
    if (item.type !== 'message') continue;
    const content = asArray(item.content);
    for (let p = 0; p < content.length; p++) {
      const part = content[p];
      if (!isObject(part) || part.type !== 'output_text') continue;
      const t = str(part.text);
      if (t !== undefined) into.texts.push({ part: { key: `o${k}.p${p}`, text: t }, set: (v) => { part.text = v; } });
    }
  }
}

/** OpenAI-style bodies: a Responses API object (`object: response`, or an `output` array) or a chat completion. */
export function openAiJsonParts(doc: unknown, into: JsonParts): void {
  if (!isObject(doc)) return;
  if (doc.object === 'response' || Array.isArray(doc.output)) responsesParts(doc, into);
  else chatParts(doc, into);
}
