import type { Modification } from './decoder.ts';
import type { ResponseFamily, TextPart, ToolCall } from '../policy/response-types.ts';
import { anthropicJsonParts } from './json-anthropic.ts';
import { geminiJsonParts } from './json-gemini.ts';
import { openAiJsonParts } from './json-openai.ts';

/** A tool call found in a parsed JSON response, and how to give it new arguments (in place). */
export interface JsonCall {
  readonly call: ToolCall;
  /** Throws when the provider cannot carry the new arguments (an object field given text). */
  set(mod: Modification): void;
}

/** A text part found in a parsed JSON response, and how to replace it (in place). */
export interface JsonText {
  readonly part: TextPart;
  set(text: string): void;
}

export interface JsonParts {
  readonly calls: JsonCall[];
  readonly texts: JsonText[];
}

const READERS: Readonly<Record<ResponseFamily, (doc: unknown, into: JsonParts) => void>> = {
  openai: openAiJsonParts,
  anthropic: anthropicJsonParts,
  gemini: geminiJsonParts,
};

/** The tool calls and text of a parsed JSON response body of `family`; nothing for bodies of another shape. */
export function jsonParts(family: ResponseFamily, doc: unknown): JsonParts {
  const parts: JsonParts = { calls: [], texts: [] };
  READERS[family](doc, parts);
  return parts;
}
