import { readArguments } from './arguments.ts';
import type { TextPart, ToolCall } from '../policy/response-types.ts';

export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** What one stream event means for the tool calls in flight. */
export interface EventEffect {
  /** Calls this event carries part of: it is held with them, and rewritten when one is modified. */
  readonly units: readonly string[];
  /** Calls complete once this event is read. */
  readonly completes: readonly string[];
  /** The event carries more of a call that was already complete: the gate ends the stream (the SDKs would append it). */
  readonly late?: boolean;
}

export const NO_EFFECT: EventEffect = Object.freeze({ units: [], completes: [] });
export const LATE: EventEffect = Object.freeze({ units: [], completes: [], late: true });

/** How a decoder is built for one response. */
export interface DecoderOptions {
  /**
   * Text parts become units too (held until complete, judged by the text
   * rules, rewritten when modified); otherwise text passes as it arrives and
   * is only collected for the view.
   */
  readonly governText: boolean;
}

/** Appends a text fragment to a governed text unit; LATE when the unit was complete. */
export function textFragment(calls: CallTable, key: string, text: string): 'late' | 'ok' {
  const a = calls.take(key, 'text');
  if (a.complete) return 'late';
  a.fragments.push(text);
  return 'ok';
}

/** Rewrites a streamed text fragment of a modified unit: the first carries the whole new text, the rest ''. */
export function rewriteFragment(a: Assembly | undefined, holder: Obj, field: string): void {
  if (!a?.mod) return;
  if (!a.sent) {
    holder[field] = a.mod.text;
    a.sent = true;
  } else if (typeof holder[field] === 'string') {
    holder[field] = '';
  }
}

/** New arguments for a call, as the gate re-emits its held events. */
export interface Modification {
  /** Parsed when JSON; the object a provider carries as an object (Anthropic input, Gemini args). */
  readonly value: unknown;
  /** As text, for providers that stream arguments as text. */
  readonly text: string;
}

/**
 * One provider family's stream events, read one at a time (each event's
 * `data` parsed as JSON): which tool calls an event belongs to, when a call
 * is complete, what the calls and the text assembled so far are, and how a
 * held event is rewritten for a modified call.
 */
export interface StreamDecoder {
  /**
   * Byte strings (latin1) without which an event cannot start a tool call,
   * when it holds no `\u` escape either: while no call is open, the gate
   * leaves such events unparsed.
   */
  readonly markers: readonly string[];
  read(doc: unknown): EventEffect;
  /** OpenAI's `data: [DONE]`. */
  done(): EventEffect;
  /** Keys of calls not complete yet. */
  open(): readonly string[];
  /** The call as assembled; `complete` false when the stream ended inside it. */
  call(key: string, complete: boolean): ToolCall;
  /** The call, then the other readings of it its events gave the client when they disagree (see createCallTable). */
  variants(key: string, complete: boolean): readonly ToolCall[];
  /** Later rewrites of the call's events carry these arguments. */
  modify(key: string, mod: Modification): void;
  /**
   * Rewrites, in place, an event (a fresh copy of its data) that belongs to
   * `units` for those of them that were modified; called once per event,
   * in stream order. Throws when the call cannot carry the new arguments.
   */
  rewrite(doc: unknown, units: readonly string[]): void;
  /** Every call so far, as assembled. */
  calls(): readonly ToolCall[];
  /** Whether `key` is a tool call or a governed text part. */
  kindOf(key: string): UnitKind;
  /** A governed text part, then its other readings (variants). */
  textVariants(key: string, complete: boolean): readonly TextPart[];
  text(): readonly TextPart[];
}

/** What a unit the gate holds is: a tool call, or (when text is governed) a text part. */
/**
 * A StreamDecoder from a provider's own parts (its markers, how it reads and
 * rewrites an event, what `[DONE]` means) and the call table and text
 * collector every provider shares, which answer the rest.
 */
export function assembleDecoder(
  calls: CallTable,
  text: TextCollector,
  own: Pick<StreamDecoder, 'markers' | 'read' | 'rewrite'> & Partial<Pick<StreamDecoder, 'done'>>,
): StreamDecoder {
  return {
    markers: own.markers,
    read: own.read,
    done: own.done ?? (() => NO_EFFECT),
    open: calls.open,
    call: calls.call,
    variants: calls.variants,
    calls: calls.all,
    kindOf: calls.kindOf,
    textVariants: calls.textVariants,
    modify: calls.modify,
    rewrite: own.rewrite,
    text: text.parts,
  };
}

export type UnitKind = 'tool_call' | 'text';

/** A tool call (or a governed text part: its text as the arguments, no name) being assembled from its events. */
export interface Assembly {
  readonly key: string;
  readonly kind: UnitKind;
  id: string;
  name: string;
  /** Arguments the call started with (an output item's or a content block's). */
  start: string;
  /** Argument fragments since. */
  readonly fragments: string[];
  /** Whole arguments a later event stated (a `.done` event, a final item): the last wins, as in the SDKs. */
  whole: string | undefined;
  /** Every distinct name and whole-arguments text stated (setName, setWhole): all reach the client, all are judged. */
  readonly names: string[];
  readonly wholes: string[];
  complete: boolean;
  /** Set when the call was modified. */
  mod: Modification | undefined;
  /** Whether a rewritten fragment already carried the new arguments (the rest then carry ''). */
  sent: boolean;
}

/** Names the call (an empty name changes nothing, as in the SDKs). */
export function setName(a: Assembly, name: string | undefined): void {
  if (!name) return;
  a.name = name;
  if (!a.names.includes(name)) a.names.push(name);
}

/** Whole arguments stated by an event. */
export function setWhole(a: Assembly, text: string): void {
  a.whole = text;
  if (!a.wholes.includes(text)) a.wholes.push(text);
}

export function argumentsTextOf(a: Assembly): string {
  if (a.whole !== undefined) return a.whole;
  return a.fragments.length === 0 ? a.start : a.start + a.fragments.join('');
}

/** The calls of one response, by key, in the order they started. */
export function createCallTable() {
  const calls = new Map<string, Assembly>();
  function get(key: string): Assembly | undefined {
    return calls.get(key);
  }
  /** The call (or text part) at `key`, started when it is new. */
  function take(key: string, kind: UnitKind = 'tool_call'): Assembly {
    let a = calls.get(key);
    if (!a) {
      a = { key, kind, id: '', name: '', start: '', fragments: [], whole: undefined, names: [], wholes: [], complete: false, mod: undefined, sent: false };
      calls.set(key, a);
    }
    return a;
  }
  function open(): string[] {
    const keys: string[] = [];
    for (const a of calls.values()) if (!a.complete) keys.push(a.key);
    return keys;
  }
  /** Marks the calls complete and returns the keys of those that were not. */
  function complete(keys: Iterable<string>): string[] {
    const done: string[] = [];
    for (const key of keys) {
      const a = calls.get(key);
      if (a && !a.complete) {
        a.complete = true;
        done.push(key);
      }
    }
    return done;
  }
  function callOf(a: Assembly, name: string, argumentsText: string, isComplete: boolean): ToolCall {
    const read = readArguments(argumentsText);
    return { key: a.key, id: a.id, name, arguments: read.value, argumentsText, argumentsJson: read.json, complete: isComplete };
  }
  function call(key: string, isComplete: boolean): ToolCall {
    const a = calls.get(key);
    if (!a) throw new Error(`no tool call ${key}`);
    return callOf(a, a.name, argumentsTextOf(a), isComplete);
  }
  /**
   * The call as `call` gives it, then every other reading of it the client
   * received: each name it was given with each argument text it was given
   * (the fragments joined, each whole text stated), when events disagree.
   */
  function variants(key: string, isComplete: boolean): ToolCall[] {
    const a = calls.get(key);
    if (!a) throw new Error(`no tool call ${key}`);
    const primary = callOf(a, a.name, argumentsTextOf(a), isComplete);
    const texts = [...a.wholes];
    if (a.fragments.length > 0 || a.start !== '' || a.wholes.length === 0) texts.push(a.fragments.length === 0 ? a.start : a.start + a.fragments.join(''));
    const names = a.names.length > 0 ? a.names : [a.name];
    const out = [primary];
    for (const name of names) {
      for (const text of texts) if (name !== primary.name || text !== primary.argumentsText) out.push(callOf(a, name, text, isComplete));
    }
    return out;
  }
  function all(): ToolCall[] {
    const out: ToolCall[] = [];
    for (const a of calls.values()) if (a.kind === 'tool_call') out.push(call(a.key, a.complete));
    return out;
  }
  function kindOf(key: string): UnitKind {
    return calls.get(key)?.kind ?? 'tool_call';
  }
  /** A text unit's readings (see variants), as text parts. */
  function textVariants(key: string, isComplete: boolean): TextPart[] {
    return variants(key, isComplete).map((c) => ({ key, text: c.argumentsText }));
  }
  function modify(key: string, mod: Modification): void {
    const a = calls.get(key);
    if (a) a.mod = mod;
  }
  return { get, take, open, complete, call, variants, textVariants, kindOf, all, modify };
}
export type CallTable = ReturnType<typeof createCallTable>;

/** Text kept for the view is cut past this many characters in all (a bound, not a policy: text rules see what was kept). */
export const MAX_VIEW_TEXT_CHARS = 1 << 20;

/** The text parts of one response, bounded in total. */
export function createTextCollector(max = MAX_VIEW_TEXT_CHARS) {
  const parts = new Map<string, string[]>();
  let total = 0;
  function append(key: string, text: string): void {
    if (text === '' || total >= max) return;
    const piece = total + text.length > max ? text.slice(0, max - total) : text;
    total += piece.length;
    let list = parts.get(key);
    if (!list) parts.set(key, (list = []));
    list.push(piece);
  }
  /** A whole text a later event stated replaces the fragments. */
  function replace(key: string, text: string): void {
    const old = parts.get(key);
    if (old) for (const p of old) total -= p.length;
    parts.delete(key);
    append(key, text);
  }
  function all(): TextPart[] {
    return [...parts].map(([key, list]) => ({ key, text: list.join('') }));
  }
  return { append, replace, parts: all };
}
export type TextCollector = ReturnType<typeof createTextCollector>;

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function int(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}
