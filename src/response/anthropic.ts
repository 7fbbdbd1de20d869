import {
  asArray, assembleDecoder, createCallTable, createTextCollector, int, isObject, LATE, NO_EFFECT, rewriteFragment, setName, setWhole, str,
  type Assembly, type DecoderOptions, type EventEffect, type Obj, type StreamDecoder, type UnitKind,
} from './decoder.ts';

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
 * input, as the SDK builds it. A governed text part is a `text` block (its
 * starting text, then its `text_delta`s). Everything else passes.
 */
export function createAnthropicDecoder(options: DecoderOptions): StreamDecoder {
  const calls = createCallTable();
  const text = createTextCollector();

  /** The unit a block is, or undefined for blocks that pass (thinking, server tools; text unless governed). */
  function unitKind(block: Obj): UnitKind | undefined {
    if (block.type === 'tool_use') return 'tool_call';
    if (block.type === 'text' && options.governText) return 'text';
    return undefined;
  }

  function startBlock(key: string, block: Obj, kind: UnitKind, complete: boolean): void {
    const a = calls.take(key, kind);
    if (kind === 'tool_call') {
      const id = str(block.id);
      if (id) a.id = id;
      setName(a, str(block.name));
      a.start = JSON.stringify(block.input ?? {});
    } else {
      a.start = str(block.text) ?? '';
    }
    if (complete) setWhole(a, a.start);
  }

  function readStart(doc: Obj): EventEffect {
    // A message that starts with content (not what the API sends, but a compatible server might).
    const content = asArray(isObject(doc.message) ? doc.message.content : undefined);
    const units: string[] = [];
    for (let i = 0; i < content.length; i++) {
      const block = content[i];
      if (!isObject(block)) continue;
      if (block.type === 'text') text.append(blockKey(i), str(block.text) ?? '');
      const kind = unitKind(block);
      if (!kind) continue;
      startBlock(blockKey(i), block, kind, true);
      units.push(blockKey(i));
    }
    return { units, completes: calls.complete(units) };
  }

  function read(doc: unknown): EventEffect {
    if (!isObject(doc)) return NO_EFFECT;
    const type = str(doc.type);
    if (type === 'message_start') return readStart(doc);
    if (type === 'message_stop') return { units: [], completes: calls.complete(calls.open()) };
    const index = int(doc.index, -1);
    if (index < 0) return NO_EFFECT;
    const key = blockKey(index);
    if (type === 'content_block_start' && isObject(doc.content_block)) {
      const block = doc.content_block;
      if (block.type === 'text') text.append(key, str(block.text) ?? '');
      const kind = unitKind(block);
      if (!kind) return NO_EFFECT;
      if (calls.get(key)) return LATE;
      startBlock(key, block, kind, false);
      return { units: [key], completes: [] };
    }
    if (type === 'content_block_delta' && isObject(doc.delta)) {
      const delta = doc.delta;
      if (delta.type === 'input_json_delta') {
        // A delta without its block start still opens (and holds) a call.
        const a = calls.take(key);
        if (a.complete || a.kind !== 'tool_call') return LATE;
        // Deltas replace the starting input (the SDK parses their concatenation alone).
        if (a.fragments.length === 0) a.start = '';
        a.fragments.push(str(delta.partial_json) ?? '');
        return { units: [key], completes: [] };
      }
      if (delta.type === 'text_delta') {
        const t = str(delta.text) ?? '';
        text.append(key, t);
        if (options.governText) {
          const a = calls.take(key, 'text');
          if (a.complete || a.kind !== 'text') return LATE;
          a.fragments.push(t);
          return { units: [key], completes: [] };
        }
      }
    }
    const a = calls.get(key);
    if (!a || a.complete) return NO_EFFECT;
    if (type === 'content_block_stop') return { units: [key], completes: calls.complete([key]) };
    return { units: [key], completes: [] };
  }

  function setBlock(block: Obj, a: Assembly, empty: boolean): void {
    if (a.kind === 'text') block.text = empty ? '' : a.mod!.text;
    else if (empty) block.input = {};
    else setInput(block, a);
  }

  function rewrite(doc: unknown, units: readonly string[]): void {
    if (!isObject(doc)) return;
    if (doc.type === 'message_start' && isObject(doc.message)) {
      const content = asArray(doc.message.content);
      for (let i = 0; i < content.length; i++) {
        const a = calls.get(blockKey(i));
        const block = content[i];
        if (a?.mod && isObject(block) && units.includes(a.key)) setBlock(block, a, false);
      }
      return;
    }
    const key = blockKey(int(doc.index, -1));
    const a = calls.get(key);
    if (!a?.mod || !units.includes(key)) return;
    if (doc.type === 'content_block_start' && isObject(doc.content_block)) {
      // With deltas to follow, they carry the new content and the block starts empty, as the API sends it.
      setBlock(doc.content_block, a, a.fragments.length > 0);
    } else if (doc.type === 'content_block_delta' && isObject(doc.delta)) {
      if (doc.delta.type === 'input_json_delta') rewriteFragment(a, doc.delta, 'partial_json');
      else if (doc.delta.type === 'text_delta') rewriteFragment(a, doc.delta, 'text');
    }
  }

  return assembleDecoder(calls, text, { markers: ['tool_use', 'input_json'], read, rewrite });
}
