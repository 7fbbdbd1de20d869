import type { Modification } from './decoder.ts';
import type { ResponseFamily, TextPart, ToolCall } from '../policy/response-types.ts';

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
