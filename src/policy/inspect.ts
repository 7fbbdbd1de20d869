import { isJsonContentType } from '../headers.ts';
import { parseStrictObject } from '../json-keys.ts';
import type { LocalPolicy } from './local.ts';
import type { LocalVerdict } from './types.ts';

/** Far deeper than any LLM request (tool schemas included); bounds the policy's recursion. */
export const MAX_JSON_DEPTH = 512;
const MAX_MODEL_CHARS = 256;

/** What the route knows about a request before its body is looked at. */
export interface InspectInput {
  readonly toolName: string;
  readonly channel: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly contentTypeCount: number;
}

/** The local rules' answer without the parsed body, which never leaves the thread it was parsed on. */
export type LocalAnswer =
  | { readonly action: 'allow' | 'deny'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'modify'; readonly policyId: string; readonly reason: string; readonly body: Buffer };

export type Inspection =
  /** The body must not be forwarded: strict JSON was declared or implied and not given. */
  | { readonly kind: 'refused'; readonly code: 'bad_request' | 'invalid_json'; readonly detail?: string }
  | {
      readonly kind: 'inspected';
      /** A strict JSON object: the only bodies the gateway is asked about. */
      readonly isObject: boolean;
      /** The body's `model` when it is a string (capped), for metrics and logs. */
      readonly model: string | undefined;
      /** Undefined when no local policy is loaded. */
      readonly local: LocalAnswer | undefined;
    };

/** True when the body, after an optional BOM and white space, starts like a JSON object or array. */
function looksLikeJson(body: Buffer): boolean {
  let i = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return body[i] === 0x7b || body[i] === 0x5b;
}

type Parsed =
  | { readonly kind: 'refused'; readonly code: 'bad_request' | 'invalid_json'; readonly detail?: string }
  | { readonly kind: 'other' }
  | { readonly kind: 'object'; readonly value: Record<string, unknown> };

const OTHER: Parsed = { kind: 'other' };

/**
 * The body as a JSON object to govern, or `other` when it is not one (it is
 * then forwarded after the local rules only). A body that is declared as
 * JSON, carries no Content-Type, or starts like JSON but is not strict UTF-8
 * JSON is refused: a lenient parser upstream (BOM, NaN, trailing commas)
 * would read a request the policy never saw.
 */
function parse(input: InspectInput): Parsed {
  const { body, contentType } = input;
  if (body.length === 0) return OTHER;
  // node keeps the first of two Content-Types; the raw list forwards both.
  if (input.contentTypeCount > 1) return { kind: 'refused', code: 'bad_request', detail: 'more than one Content-Type' };
  const parsed = parseStrictObject(body, MAX_JSON_DEPTH);
  if ('value' in parsed) return { kind: 'object', value: parsed.value };
  switch (parsed.problem) {
    case 'not_json':
      return contentType === undefined || isJsonContentType(contentType) || looksLikeJson(body) ? { kind: 'refused', code: 'invalid_json' } : OTHER;
    case 'not_object':
      return OTHER;
    // The policy would judge the last of two same-named keys, another parser
    // the first; and the policy's recursive walks need a bounded depth.
    case 'duplicate key':
      return { kind: 'refused', code: 'invalid_json', detail: 'an object has a duplicate key' };
    case 'nested too deeply':
      return { kind: 'refused', code: 'invalid_json', detail: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
}

function answer(verdict: LocalVerdict): LocalAnswer {
  return verdict.action === 'modify'
    ? { action: 'modify', policyId: verdict.policyId, reason: verdict.reason, body: verdict.body }
    : verdict;
}

/**
 * Checks the body and runs the local rules on it, parsing it once. Pure and
 * synchronous, so the same code runs inline for small bodies and in a worker
 * thread for large ones (pool.ts).
 */
export function inspect(input: InspectInput, policy: LocalPolicy | undefined): Inspection {
  const parsed = parse(input);
  if (parsed.kind === 'refused') return parsed;
  const toolInput = parsed.kind === 'object' ? parsed.value : undefined;
  const model = typeof toolInput?.model === 'string' ? toolInput.model.slice(0, MAX_MODEL_CHARS) : undefined;
  const local = policy ? answer(policy.evaluate({ toolName: input.toolName, channel: input.channel, toolInput })) : undefined;
  return { kind: 'inspected', isObject: toolInput !== undefined, model, local };
}
