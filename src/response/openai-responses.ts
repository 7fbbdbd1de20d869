import { createResponsesTextReader } from './openai-responses-text.ts';
import { argumentsTextOf, asArray, int, LATE, setName, setWhole, isObject, str, type Assembly, type CallTable, type EventEffect, type Obj, type TextCollector } from './decoder.ts';

/**
 * How an output item of the Responses API carries a call the agent runs:
 * the field holding its arguments, and whether that is JSON text, free
 * text or an object. Function and custom tools are named by `name`; the
 * built-in tools the agent itself executes (a shell, a patch, a computer)
 * by their item type. Items run by OpenAI (web search, file search, code
 * interpreter, MCP) are not the agent's to run and pass as text does.
 */
interface CallShape {
  readonly field: string;
  readonly kind: 'text' | 'object';
  readonly named: boolean;
}

const SHAPES: Readonly<Record<string, CallShape>> = {
  function_call: { field: 'arguments', kind: 'text', named: true },
  custom_tool_call: { field: 'input', kind: 'text', named: true },
  local_shell_call: { field: 'action', kind: 'object', named: false },
  shell_call: { field: 'action', kind: 'object', named: false },
  computer_call: { field: 'action', kind: 'object', named: false },
  apply_patch_call: { field: 'operation', kind: 'object', named: false },
};

export function shapeOf(item: unknown): CallShape | undefined {
  if (!isObject(item)) return undefined;
  const type = str(item.type);
  return type !== undefined && Object.hasOwn(SHAPES, type) ? SHAPES[type] : undefined;
}

/** The arguments of a call item as text (an object as JSON); undefined when the item has none. */
export function itemArguments(item: Obj, shape: CallShape): string | undefined {
  const value = item[shape.field];
  if (shape.kind === 'text') return str(value);
  return value === undefined ? undefined : JSON.stringify(value);
}

function outputKey(index: number): string {
  return `o${index}`;
}
/** A final event's item that differs from the call streamed at its index. */
function finalKey(index: number): string {
  return `o${index}.final`;
}

function sameCall(a: Assembly, item: Obj, shape: CallShape): boolean {
  const name = shape.named ? str(item.name) : str(item.type);
  return (name ?? '') === a.name && (itemArguments(item, shape) ?? '') === argumentsTextOf(a);
}

/** Fills a call from an output item: the item's id (`call_id` first, which is what the agent answers with), name and arguments. */
function takeItem(a: Assembly, item: Obj, shape: CallShape, whole: boolean): void {
  const id = str(item.call_id) || str(item.id);
  if (id) a.id = id;
  const name = shape.named ? str(item.name) : str(item.type);
  setName(a, name);
  const args = itemArguments(item, shape);
  if (args === undefined) return;
  if (whole) setWhole(a, args);
  else a.start = args;
}

/** Puts a modified call's arguments into an item. */
function setItem(item: Obj, shape: CallShape, a: Assembly, empty: boolean): void {
  const mod = a.mod!;
  if (shape.kind === 'text') {
    item[shape.field] = empty ? '' : mod.text;
    return;
  }
  if (!isObject(mod.value) && !Array.isArray(mod.value)) throw new Error(`${item.type as string} ${a.key} cannot carry arguments that are not JSON`);
  item[shape.field] = mod.value;
}

const DELTA_EVENTS = new Set(['response.function_call_arguments.delta', 'response.custom_tool_call_input.delta']);
const DONE_EVENTS: Readonly<Record<string, string>> = {
  'response.function_call_arguments.done': 'arguments',
  'response.custom_tool_call_input.done': 'input',
};
const FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/**
 * OpenAI Responses API events. A call is the output item at `output_index`:
 * `response.output_item.added` starts it, argument deltas (and `.done`, and
 * any other event naming its output index) belong to it, and
 * `response.output_item.done` completes it. The final `response.completed`
 * (`.incomplete`, `.failed`) repeats every item: it belongs to the calls it
 * repeats (a modified call is rewritten there too) and completes whatever is
 * open, calls first seen there included.
 */
export function createResponsesReader(calls: CallTable, text: TextCollector, governText: boolean) {
  const texts = createResponsesTextReader(calls);
  /** The shape of each call by key. */
  const shapes = new Map<string, CallShape>();

  function start(key: string, item: Obj, shape: CallShape, whole: boolean): Assembly {
    const a = calls.take(key);
    shapes.set(key, shape);
    takeItem(a, item, shape, whole);
    return a;
  }

  function readFinal(doc: Obj): EventEffect {
    const units: string[] = [];
    const response = isObject(doc.response) ? doc.response : {};
    const output = asArray(response.output);
    for (let k = 0; k < output.length; k++) {
      const item = output[k];
      const shape = shapeOf(item);
      if (!shape || !isObject(item)) continue;
      let key = outputKey(k);
      const a = calls.get(key);
      if (a?.complete && !sameCall(a, item, shape)) {
        // The SDK's final response is this event's: an item that differs from the call governed is governed anew.
        key = finalKey(k);
        start(key, item, shape, true);
      } else if (!a?.complete) {
        start(key, item, shape, true);
      }
      units.push(key);
    }
    return { units, completes: calls.complete(calls.open()) };
  }

  function read(doc: Obj): EventEffect {
    const type = str(doc.type) ?? '';
    if (FINAL_EVENTS.has(type)) {
      if (!governText) return readFinal(doc);
      const t = texts.readFinal(doc);
      const c = readFinal(doc);
      return { units: [...c.units, ...t.units], completes: [...t.completes, ...c.completes] };
    }
    const index = int(doc.output_index, -1);
    const key = outputKey(index);
    if (type === 'response.output_text.delta') text.append(`${key}.p${int(doc.content_index, 0)}`, str(doc.delta) ?? '');
    else if (type === 'response.output_text.done') text.replace(`${key}.p${int(doc.content_index, 0)}`, str(doc.text) ?? '');
    if (governText && !shapeOf(doc.item)) {
      const t = texts.read(doc, type);
      if (t) return t;
    }
    if (type === 'response.output_text.delta' || type === 'response.output_text.done') return { units: [], completes: [] };
    if (index < 0) return { units: [], completes: [] };
    const item = isObject(doc.item) ? doc.item : undefined;
    const shape = shapeOf(item) ?? shapes.get(key);
    if (type === 'response.output_item.added' && item && shape) {
      if (calls.get(key)?.complete) return LATE;
      start(key, item, shape, false);
      return { units: [key], completes: [] };
    }
    if (type === 'response.output_item.done' && item && shape) {
      if (calls.get(key)?.complete) return LATE;
      start(key, item, shape, true);
      return { units: [key], completes: calls.complete([key]) };
    }
    if (DELTA_EVENTS.has(type)) {
      // A delta before its item was announced still opens (and holds) a call.
      if (!shapes.has(key)) shapes.set(key, type.includes('custom') ? SHAPES.custom_tool_call! : SHAPES.function_call!);
      const a = calls.take(key);
      if (a.complete) return LATE;
      a.fragments.push(str(doc.delta) ?? '');
      return { units: [key], completes: [] };
    }
    const doneField = DONE_EVENTS[type];
    if (doneField !== undefined) {
      if (!shapes.has(key)) shapes.set(key, doneField === 'input' ? SHAPES.custom_tool_call! : SHAPES.function_call!);
      const a = calls.take(key);
      if (a.complete) return LATE;
      const whole = str(doc[doneField]);
      if (whole !== undefined) setWhole(a, whole);
      setName(a, str(doc.name));
      return { units: [key], completes: [] };
    }
    // Any other event about an open call's item waits with it.
    const a = calls.get(key);
    return a && !a.complete ? { units: [key], completes: [] } : { units: [], completes: [] };
  }

  function rewrite(doc: Obj, units: readonly string[]): void {
    const type = str(doc.type) ?? '';
    if (governText) texts.rewrite(doc, type, units);
    if (FINAL_EVENTS.has(type)) {
      const output = asArray(isObject(doc.response) ? doc.response.output : undefined);
      for (let k = 0; k < output.length; k++) {
        const item = output[k];
        const shape = shapeOf(item);
        if (!shape || !isObject(item)) continue;
        for (const key of [outputKey(k), finalKey(k)]) {
          const a = calls.get(key);
          if (a?.mod && units.includes(key)) setItem(item, shape, a, false);
        }
      }
      return;
    }
    const key = outputKey(int(doc.output_index, -1));
    const a = calls.get(key);
    const shape = shapes.get(key);
    if (!a?.mod || !shape || !units.includes(key)) return;
    if (type === 'response.output_item.added' && isObject(doc.item)) {
      // The deltas that follow carry the arguments when there are any.
      setItem(doc.item, shape, a, a.fragments.length > 0);
    } else if (type === 'response.output_item.done' && isObject(doc.item)) {
      setItem(doc.item, shape, a, false);
    } else if (DELTA_EVENTS.has(type)) {
      doc.delta = a.sent ? '' : a.mod.text;
      a.sent = true;
    } else if (DONE_EVENTS[type] !== undefined) {
      doc[DONE_EVENTS[type]] = a.mod.text;
    }
  }

  return { read, rewrite };
}

/** Whether a stream event is a Responses API event. */
export function isResponsesEvent(doc: Obj): boolean {
  const type = doc.type;
  return typeof type === 'string' && (type.startsWith('response.') || type === 'error');
}
