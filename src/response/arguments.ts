import { jsonShapeProblem } from '../json/keys.ts';
import type { ToolCall } from '../policy/response-types.ts';

/** Deeper JSON is read as text: the rules walk values, and no tool takes arguments this deep. */
export const MAX_ARGUMENT_DEPTH = 512;

/**
 * A tool call's arguments as the rules read them: parsed when the text is
 * strict JSON (no duplicate keys, which parsers resolve differently, and
 * bounded depth), else the text itself, so a malformed or ambiguous
 * argument string is still matched and redacted, as text.
 */
export function readArguments(text: string): { value: unknown; json: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { value: text, json: false };
  }
  if (value !== null && typeof value === 'object' && jsonShapeProblem(text, MAX_ARGUMENT_DEPTH)) return { value: text, json: false };
  return { value, json: true };
}

/** A complete call from its parts (a JSON body's, where nothing is streamed). */
export function toolCallOf(key: string, id: string, name: string, argumentsText: string): ToolCall {
  const read = readArguments(argumentsText);
  return { key, id, name, arguments: read.value, argumentsText, argumentsJson: read.json, complete: true };
}
