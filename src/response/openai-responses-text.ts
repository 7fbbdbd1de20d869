import { asArray, int, isObject, LATE, NO_EFFECT, rewriteFragment, setWhole, str, textFragment, type CallTable, type EventEffect, type Obj } from './decoder.ts';

function partKey(output: number, content: number): string {
  return `o${output}.p${content}`;
}

/** The output_text parts of a message item, with their content index. */
function* textParts(item: unknown): Generator<{ index: number; part: Obj }> {
  if (!isObject(item) || item.type !== 'message') return;
  const content = asArray(item.content);
  for (let i = 0; i < content.length; i++) {
    const part = content[i];
    if (isObject(part) && part.type === 'output_text') yield { index: i, part };
  }
}

/**
 * Governed text of the Responses API: each `output_text` part of a message
 * item is a unit, from `response.content_part.added` (or the item that
 * carries it) through its `output_text` deltas and `.done`, complete at
 * `response.content_part.done`. Every later event that repeats the text
 * (the message's `output_item.done`, the final `response.completed`) is
 * rewritten with it; one that says another text is a new unit (final
 * event) or ends the stream (a done item).
 */
export function createResponsesTextReader(calls: CallTable) {
  /** The text of a message item's parts: a new unit each when unseen, checked against the unit when seen. */
  function itemParts(output: number, item: unknown, phase: 'added' | 'done' | 'final'): EventEffect {
    const units: string[] = [];
    const completes: string[] = [];
    for (const { index, part } of textParts(item)) {
      const text = str(part.text) ?? '';
      let key = partKey(output, index);
      const a = calls.get(key);
      if (phase === 'added') {
        if (a) return LATE;
        calls.take(key, 'text').start = text;
      } else if (a?.complete) {
        if (calls.call(key, true).argumentsText !== text) {
          if (phase === 'done') return LATE;
          key = `${key}.final`;
          setWhole(calls.take(key, 'text'), text);
          completes.push(key);
        }
      } else {
        setWhole(calls.take(key, 'text'), text);
        completes.push(key);
      }
      units.push(key);
    }
    return { units, completes: calls.complete(completes) };
  }

  /** The effect of a text event, or undefined for other events. */
  function read(doc: Obj, type: string): EventEffect | undefined {
    const output = int(doc.output_index, -1);
    const key = partKey(output, int(doc.content_index, 0));
    switch (type) {
      case 'response.output_item.added':
        return itemParts(output, doc.item, 'added');
      case 'response.output_item.done':
        return itemParts(output, doc.item, 'done');
      case 'response.content_part.added': {
        if (!isObject(doc.part) || doc.part.type !== 'output_text') return NO_EFFECT;
        const a = calls.take(key, 'text');
        if (a.complete || a.fragments.length > 0) return LATE;
        a.start = str(doc.part.text) ?? '';
        return { units: [key], completes: [] };
      }
      case 'response.output_text.delta':
        return textFragment(calls, key, str(doc.delta) ?? '') === 'late' ? LATE : { units: [key], completes: [] };
      case 'response.output_text.done': {
        const a = calls.take(key, 'text');
        if (a.complete) return LATE;
        setWhole(a, str(doc.text) ?? '');
        return { units: [key], completes: [] };
      }
      case 'response.content_part.done': {
        if (!isObject(doc.part) || doc.part.type !== 'output_text') return NO_EFFECT;
        const a = calls.take(key, 'text');
        if (a.complete) return LATE;
        setWhole(a, str(doc.part.text) ?? '');
        return { units: [key], completes: calls.complete([key]) };
      }
      default:
        return undefined;
    }
  }

  function readFinal(doc: Obj): EventEffect {
    const units: string[] = [];
    const completes: string[] = [];
    const output = asArray(isObject(doc.response) ? doc.response.output : undefined);
    for (let k = 0; k < output.length; k++) {
      const e = itemParts(k, output[k], 'final');
      units.push(...e.units);
      completes.push(...e.completes);
    }
    return { units, completes };
  }

  function setParts(output: number, item: unknown, units: readonly string[], empty: boolean): void {
    for (const { index, part } of textParts(item)) {
      for (const key of [partKey(output, index), `${partKey(output, index)}.final`]) {
        const a = calls.get(key);
        if (a?.mod && units.includes(key)) part.text = empty && a.fragments.length > 0 ? '' : a.mod.text;
      }
    }
  }

  function rewrite(doc: Obj, type: string, units: readonly string[]): void {
    const output = int(doc.output_index, -1);
    const key = partKey(output, int(doc.content_index, 0));
    const a = units.includes(key) ? calls.get(key) : undefined;
    switch (type) {
      case 'response.output_item.added':
        setParts(output, doc.item, units, true);
        return;
      case 'response.output_item.done':
        setParts(output, doc.item, units, false);
        return;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed': {
        const items = asArray(isObject(doc.response) ? doc.response.output : undefined);
        for (let k = 0; k < items.length; k++) setParts(k, items[k], units, false);
        return;
      }
    }
    if (!a?.mod) return;
    if (type === 'response.content_part.added' && isObject(doc.part)) doc.part.text = a.fragments.length > 0 ? '' : a.mod.text;
    else if (type === 'response.output_text.delta') rewriteFragment(a, doc, 'delta');
    else if (type === 'response.output_text.done') doc.text = a.mod.text;
    else if (type === 'response.content_part.done' && isObject(doc.part)) doc.part.text = a.mod.text;
  }

  return { read, readFinal, rewrite };
}
