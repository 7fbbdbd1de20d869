import type { ErrorStyle } from '../http/providers.ts';

/**
 * The provider families a response is read as. They follow the error style
 * (src/http/providers.ts): `openai` covers Chat Completions and the Responses API
 * (told apart per event and per body), `anthropic` the Messages API and
 * `gemini` generateContent / streamGenerateContent.
 */
export type ResponseFamily = ErrorStyle;

/** One tool call the model made, whatever the provider. */
export interface ToolCall {
  /** Where it sits in the response, unique in it (`choice 0 call 1`, `output 2`, `block 1`, `part 3`). */
  readonly key: string;
  /** The provider's call id ('' when it sent none, as Gemini may). */
  readonly id: string;
  /** The tool the model calls; for the Responses API's built-in agent tools (local_shell_call, ...) the item type. */
  readonly name: string;
  /** The arguments parsed when `argumentsText` is strict JSON, else `argumentsText` itself. */
  readonly arguments: unknown;
  /** The arguments as the provider sent them (Gemini's `args` object as JSON text). */
  readonly argumentsText: string;
  /** Whether `arguments` is parsed JSON: no duplicate keys, at most 512 levels deep. */
  readonly argumentsJson: boolean;
  /** False when the stream ended before the call did: `arguments` is what had arrived. */
  readonly complete: boolean;
}

/** One piece of text the model wrote (a choice's content, a text block, an output_text part, a text part). */
export interface TextPart {
  readonly key: string;
  readonly text: string;
}

/** A response as the rules see it. */
export interface ResponseView {
  readonly family: ResponseFamily;
  readonly text: readonly TextPart[];
  readonly toolCalls: readonly ToolCall[];
}

/** What one rule (or the remote hook) decided for one tool call or text part. */
export type PartVerdict =
  | { readonly action: 'allow' | 'deny'; readonly policyId: string; readonly reason: string }
  | {
      readonly action: 'modify';
      readonly policyId: string;
      readonly reason: string;
      /** A tool call's new arguments (parsed when JSON) or a text part's new text. */
      readonly value: unknown;
      /** The new arguments as text (JSON when the call's were), or the new text. */
      readonly text: string;
    };

/** No rule matched: the part passes unchanged. */
export const NO_MATCH: PartVerdict = Object.freeze({ action: 'allow', policyId: '', reason: '' });
