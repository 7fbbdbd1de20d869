import type { ErrorStyle } from '../http/providers.ts';

/** `gen_ai.operation.name` values the sidecar reports (the convention's well-known names). */
export type Operation = 'chat' | 'text_completion' | 'embeddings' | 'generate_content';

/** Where one response shape keeps its usage: an object at `at` with a `usage` object and a `model` string. */
export interface UsageSource {
  /** Keys from the document root to the object holding `usage` ([] for the root). */
  readonly at: readonly string[];
  /** The key of the usage object. */
  readonly usage: string;
  /** Numeric keys summed into input tokens (those present). */
  readonly input: readonly string[];
  /** Numeric keys summed into output tokens (those present). */
  readonly output: readonly string[];
  /** The key naming the model that answered. */
  readonly model: string;
}

/**
 * One provider family's API as data: which request paths are metered, as
 * which operation, where the request names its model, and where responses
 * (JSON bodies and SSE event data alike) carry usage.
 */
export interface UsageFamily {
  readonly style: ErrorStyle;
  /** Matched against the request path after `/llm/<provider>`; the first match wins. */
  readonly operations: ReadonlyArray<{ readonly path: RegExp; readonly operation: Operation }>;
  /** The request model: the JSON body's top-level `model` (when `body`), or the first capture of `path` on the request path. */
  readonly requestModel: { readonly body?: boolean; readonly path?: RegExp };
  /** Later sources overwrite earlier ones field by field; in a stream, later events overwrite earlier ones. */
  readonly sources: readonly UsageSource[];
}

/** What a response reported; a field stays undefined when the response did not say (nothing is guessed). */
export interface Usage {
  input?: number;
  output?: number;
  responseModel?: string;
}
