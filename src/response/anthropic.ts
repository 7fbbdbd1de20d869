import { asArray, createCallTable, setName, setWhole, createTextCollector, int, isObject, NO_EFFECT, str, type Assembly, type EventEffect, type Obj, type StreamDecoder } from './decoder.ts';

const LATE: EventEffect = Object.freeze({ units: [], completes: [], late: true });

function blockKey(index: number): string {
  return `b${index}`;
}

/** Puts a modified call's input into a tool_use block (an object, as Anthropic carries it). */
function setInput(block: Obj, a: Assembly): void {
  if (!isObject(a.mod!.value)) throw new Error(`tool_use ${a.key} cannot carry input that is not a JSON object`);
  block.input = a.mod!.value;
}

/**
 * Anthropic Messages events. A tool call is a `tool_use` content block:
 * `content_block_start` opens it (id, name, a starting `input`), its
 * `input_json_delta` deltas carry the input as JSON fragments, and
 * `content_block_stop` completes it; `message_stop` completes any left
 * open. The input is the fragments when there are any, else the starting
 * input, as the SDK builds it. Text blocks and everything else pass.
 */
export function createAnthropicDecoder(): StreamDecoder {
  const calls = createCallTable();
  const text = createTextCollector();

  function startBlock(key: string, block: Obj, complete: boolean): void {
    const a = calls.take(key);
    const id = str(block.id);
    if (id) a.id = id;
    const name = str(block.name);
    setName(a, name);
    a.start = JSON.stringify(block.input ?? {});
    if (complete) setWhole(a, a.start);
  }

  function read(doc: unknown): EventEffect {
    if (!isObject(doc)) return NO_EFFECT;
    const type = str(doc.type);
    if (type === 'message_start') {
      // A message that starts with content (not what the API sends, but a compatible server might).
      const content = asArray(isObject(doc.message) ? doc.message.content : undefined);
      const units: string[] = [];
      for (let i = 0; i < content.length; i++) {
        const block = content[i];
        if (!isObject(block)) continue;
        if (block.type === 'tool_use') {
          startBlock(blockKey(i), block, true);
          units.push(blockKey(i));
        } else if (block.type === 'text') {
          text.append(blockKey(i), str(block.text) ?? '');
        }
      }
      return { units, completes: calls.complete(units) };
    }
    if (type === 'message_stop') return { units: [], completes: calls.complete(calls.open()) };
    const index = int(doc.index, -1);
    if (index < 0) return NO_EFFECT;
    const key = blockKey(index);
    if (type === 'content_block_start' && isObject(doc.content_block)) {
      const block = doc.content_block;
      if (block.type === 'tool_use') {
        if (calls.get(key)?.complete) return LATE;
        startBlock(key, block, false);
        return { units: [key], completes: [] };
      }
      if (block.type === 'text') text.append(key, str(block.text) ?? '');
      return NO_EFFECT;
    }
    if (type === 'content_block_delta' && isObject(doc.delta)) {
      const delta = doc.delta;
      if (delta.type === 'input_json_delta') {
        // A delta without its block start still opens (and holds) a call.
        const a = calls.take(key);
        if (a.complete) return LATE;
        // Deltas replace the starting input (the SDK parses their concatenation alone).
        if (a.fragments.length === 0) a.start = '';
        a.fragments.push(str(delta.partial_json) ?? '');
        return { units: [key], completes: [] };
      }
      if (delta.type === 'text_delta') text.append(key, str(delta.text) ?? '');
    }
    const a = calls.get(key);
    if (!a || a.complete) return NO_EFFECT;
    if (type === 'content_block_stop') return { units: [key], completes: calls.complete([key]) };
    return { units: [key], completes: [] };
  }

  function rewrite(doc: unknown, units: readonly string[]): void {
    if (!isObject(doc)) return;
    if (doc.type === 'message_start' && isObject(doc.message)) {
      const content = asArray(doc.message.content);
      for (let i = 0; i < content.length; i++) {
        const a = calls.get(blockKey(i));
        const block = content[i];
        if (a?.mod && isObject(block) && units.includes(a.key)) setInput(block, a);
      }
      return;
    }
    const key = blockKey(int(doc.index, -1));
    const a = calls.get(key);
    if (!a?.mod || !units.includes(key)) return;
    if (doc.type === 'content_block_start' && isObject(doc.content_block)) {
      // With deltas to follow, they carry the input and the block starts empty, as the API sends it.
      if (a.fragments.length > 0) doc.content_block.input = {};
      else setInput(doc.content_block, a);
    } else if (doc.type === 'content_block_delta' && isObject(doc.delta) && doc.delta.type === 'input_json_delta') {
      doc.delta.partial_json = a.sent ? '' : a.mod.text;
      a.sent = true;
    }
  }

  return {
    markers: ['tool_use', 'input_json'],
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
