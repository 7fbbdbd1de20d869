import { asArray, int, isObject, rewriteFragment, setName, str, textFragment, type CallTable, type EventEffect, type Obj, type TextCollector } from './decoder.ts';

/**
 * OpenAI Chat Completions chunks (`object: chat.completion.chunk`): text in
 * `choices[].delta.content`, tool calls in `choices[].delta.tool_calls[]`
 * by `index` (function calls' `function.{name,arguments}`, custom tools'
 * `custom.{name,input}`), the deprecated `delta.function_call` too. Calls
 * of different indices may interleave. A call is complete when its choice
 * has a `finish_reason`, or at `[DONE]`: no event closes one call alone.
 * Names and ids are taken as the SDK's accumulator does (the last non-empty
 * one), arguments are the fragments in order. A governed text part is a
 * choice's content, complete when the choice is.
 */

function callKey(choice: number, index: number): string {
  return `c${choice}.t${index}`;
}
function legacyKey(choice: number): string {
  return `c${choice}.f`;
}
function textKey(choice: number): string {
  return `c${choice}`;
}

/** The function-like object of a tool_calls entry and the field carrying its arguments. */
function fnOf(entry: Obj): { fn: Obj; field: 'arguments' | 'input' } | undefined {
  if (isObject(entry.function)) return { fn: entry.function, field: 'arguments' };
  if (isObject(entry.custom)) return { fn: entry.custom, field: 'input' };
  return undefined;
}

export function createChatReader(calls: CallTable, text: TextCollector, governText: boolean) {
  /** Open call keys per choice. */
  const byChoice = new Map<number, Set<string>>();

  function note(choice: number, key: string): void {
    let set = byChoice.get(choice);
    if (!set) byChoice.set(choice, (set = new Set()));
    set.add(key);
  }

  function read(doc: Obj): EventEffect {
    const units = new Set<string>();
    const completes: string[] = [];
    let late = false;
    const choices = asArray(doc.choices);
    for (let pos = 0; pos < choices.length; pos++) {
      const ch = choices[pos];
      if (!isObject(ch)) continue;
      const c = int(ch.index, pos);
      const delta = ch.delta;
      if (isObject(delta)) {
        const content = str(delta.content);
        if (content !== undefined) text.append(textKey(c), content);
        if (governText && content) {
          if (textFragment(calls, textKey(c), content) === 'late') late = true;
          else {
            note(c, textKey(c));
            units.add(textKey(c));
          }
        }
        const entries = asArray(delta.tool_calls);
        for (let j = 0; j < entries.length; j++) {
          const entry = entries[j];
          if (!isObject(entry)) continue;
          const key = callKey(c, int(entry.index, j));
          const a = calls.take(key);
          if (a.complete) {
            late = true;
            continue;
          }
          const id = str(entry.id);
          if (id) a.id = id;
          const f = fnOf(entry);
          if (f) {
            const name = str(f.fn.name);
            setName(a, name);
            const args = str(f.fn[f.field]);
            if (args) a.fragments.push(args);
          }
          note(c, key);
          units.add(key);
        }
        if (isObject(delta.function_call)) {
          const key = legacyKey(c);
          const a = calls.take(key);
          if (a.complete) late = true;
          else {
            const name = str(delta.function_call.name);
            setName(a, name);
            const args = str(delta.function_call.arguments);
            if (args) a.fragments.push(args);
            note(c, key);
            units.add(key);
          }
        }
      }
      if (typeof ch.finish_reason === 'string' && ch.finish_reason !== '') {
        const open = byChoice.get(c);
        if (open) {
          completes.push(...calls.complete(open));
          byChoice.delete(c);
        }
      }
    }
    return { units: [...units], completes, late };
  }

  function done(): EventEffect {
    byChoice.clear();
    return { units: [], completes: calls.complete(calls.open()) };
  }

  function rewrite(doc: Obj, units: readonly string[]): void {
    const choices = asArray(doc.choices);
    for (let pos = 0; pos < choices.length; pos++) {
      const ch = choices[pos];
      if (!isObject(ch) || !isObject(ch.delta)) continue;
      const c = int(ch.index, pos);
      if (units.includes(textKey(c)) && typeof ch.delta.content === 'string') rewriteFragment(calls.get(textKey(c)), ch.delta, 'content');
      const entries = asArray(ch.delta.tool_calls);
      for (let j = 0; j < entries.length; j++) {
        const entry = entries[j];
        if (!isObject(entry)) continue;
        const key = callKey(c, int(entry.index, j));
        if (!units.includes(key)) continue;
        const f = fnOf(entry);
        // An entry without its function object carries no arguments: a later one gets them.
        if (f) rewriteFragment(calls.get(key), f.fn, f.field);
      }
      const key = legacyKey(c);
      if (isObject(ch.delta.function_call) && units.includes(key)) rewriteFragment(calls.get(key), ch.delta.function_call, 'arguments');
    }
  }

  return { read, done, rewrite };
}

/** Whether a stream event is a Chat Completions chunk rather than a Responses API event. */
export function isChatChunk(doc: Obj): boolean {
  return Array.isArray(doc.choices);
}
