import { isJsonContentType } from '../http/headers.ts';
import { fieldTrie, Kind, scanJson, unescapeJsonString, type FieldTrie } from '../json/scan.ts';
import { MODEL_FIELD, RewriteTooLargeError, type FieldValue, type JsonObjectBody, type LocalPolicy } from './rules.ts';
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

/** The local rules' answer: a rewrite is a list of edits of the body's bytes, which the caller applies to its own copy. */
export type LocalAnswer = LocalVerdict;

export type Inspection =
  /** The body must not be forwarded: strict JSON was declared or implied and not given. */
  | { readonly kind: 'refused'; readonly code: 'bad_request' | 'invalid_json'; readonly detail?: string }
  /** The rules could not finish within what the request may use (a rewrite too large): the fail mode decides. */
  | { readonly kind: 'unfinished'; readonly reason: string }
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
  | { readonly kind: 'object'; readonly json: JsonObjectBody };

const OTHER: Parsed = { kind: 'other' };
/** With no policy loaded, only the model is read. */
const MODEL_ONLY = fieldTrie([['model']]);

/**
 * The body as a JSON object to govern, or `other` when it is not one (it is
 * then forwarded after the local rules only). A body that is declared as
 * JSON, carries no Content-Type, or starts like JSON but is not strict UTF-8
 * JSON is refused: a lenient parser upstream (BOM, NaN, trailing commas)
 * would read a request the policy never saw. The bytes are scanned in place:
 * no string or object tree of the body is made.
 */
function parse(input: InspectInput, fields: FieldTrie): Parsed {
  const { body, contentType } = input;
  if (body.length === 0) return OTHER;
  // node keeps the first of two Content-Types; the raw list forwards both.
  if (input.contentTypeCount > 1) return { kind: 'refused', code: 'bad_request', detail: 'more than one Content-Type' };
  const values: FieldValue[] = [];
  const scanned = scanJson(body, {
    maxDepth: MAX_JSON_DEPTH,
    fields,
    field: (id, kind, start, end, escaped) => {
      values[id] = { kind, start, end, escaped };
    },
  });
  if (scanned.ok) return { kind: 'object', json: { bytes: body, values } };
  switch (scanned.problem) {
    case 'not_json':
      return contentType === undefined || isJsonContentType(contentType) || looksLikeJson(body) ? { kind: 'refused', code: 'invalid_json' } : OTHER;
    case 'not_object':
      return OTHER;
    // The policy would judge the last of two same-named keys, another parser
    // the first; and the policy's walks need a bounded depth.
    case 'duplicate key':
      return { kind: 'refused', code: 'invalid_json', detail: 'an object has a duplicate key' };
    case 'nested too deeply':
      return { kind: 'refused', code: 'invalid_json', detail: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
}

/** The top-level `model` when it is a string, capped: read from at most its first few KiB. */
function modelOf(json: JsonObjectBody): string | undefined {
  const value = json.values[MODEL_FIELD];
  if (value?.kind !== Kind.String) return undefined;
  const b = json.bytes;
  let end = Math.min(value.end, value.start + MAX_MODEL_CHARS * 6);
  if (!value.escaped) return b.toString('utf8', value.start, end).slice(0, MAX_MODEL_CHARS);
  // Cut before an escape the cap would split.
  let i = value.start;
  while (i < end) {
    if (b[i] !== 0x5c) i++;
    else if (i + (b[i + 1] === 0x75 ? 6 : 2) <= end) i += b[i + 1] === 0x75 ? 6 : 2;
    else break;
  }
  end = i;
  return unescapeJsonString(b, value.start, end).toString('utf8').slice(0, MAX_MODEL_CHARS);
}

/**
 * Checks the body and runs the local rules on it, reading it once (twice for
 * a redaction). Pure and synchronous, so the same code runs inline for small
 * bodies and in a worker thread for large ones (pool.ts). `maxAddedBytes`
 * bounds what a redaction may add.
 */
export function inspect(input: InspectInput, policy: LocalPolicy | undefined, maxAddedBytes?: number): Inspection {
  const parsed = parse(input, policy?.fields ?? MODEL_ONLY);
  if (parsed.kind === 'refused') return parsed;
  const json = parsed.kind === 'object' ? parsed.json : undefined;
  const model = json ? modelOf(json) : undefined;
  let local: LocalAnswer | undefined;
  try {
    local = policy?.evaluate({ toolName: input.toolName, channel: input.channel, json }, maxAddedBytes);
  } catch (err) {
    if (err instanceof RewriteTooLargeError) return { kind: 'unfinished', reason: err.message };
    throw err;
  }
  return { kind: 'inspected', isObject: json !== undefined, model, local };
}
