import { toolCallOf } from './arguments.ts';
import { asArray, isObject, str, type Modification } from './decoder.ts';
import type { JsonParts } from './json-parts.ts';

/** An Anthropic message: `content[]` blocks, `tool_use` ({id, name, input}) and `text`. */
export function anthropicJsonParts(doc: unknown, into: JsonParts): void {
  if (!isObject(doc)) return;
  const content = asArray(doc.content);
  for (let i = 0; i < content.length; i++) {
    const block = content[i];
    if (!isObject(block)) continue;
    if (block.type === 'tool_use') {
      const call = toolCallOf(`b${i}`, str(block.id) ?? '', str(block.name) ?? '', JSON.stringify(block.input ?? {}));
      into.calls.push({
        call,
        set: (mod: Modification) => {
          if (!isObject(mod.value)) throw new Error(`tool_use b${i} cannot carry input that is not a JSON object`);
          block.input = mod.value;
        },
      });
    } else if (block.type === 'text') {
      const t = str(block.text);
      if (t !== undefined) into.texts.push({ part: { key: `b${i}`, text: t }, set: (v) => { block.text = v; } });
    }
  }
}
