import { denialBody, errorEnvelope, errorStyleFor } from '../http/providers.ts';
import { anthropicJsonParts } from './json-anthropic.ts';
import { geminiJsonParts } from './json-gemini.ts';
import { openAiJsonParts } from './json-openai.ts';
import type { JsonParts } from './json-parts.ts';
import { responseFamilyOf } from './decoders.ts';
import type { ResponseRules } from '../policy/response-rules.ts';
import type { PartVerdict, ResponseFamily, ResponseView } from '../policy/response-types.ts';

const READERS: Readonly<Record<ResponseFamily, (doc: unknown, into: JsonParts) => void>> = {
  openai: openAiJsonParts,
  anthropic: anthropicJsonParts,
  gemini: geminiJsonParts,
};

/** The tool calls and text of a parsed JSON response body of `family`; nothing for bodies of another shape. */
function jsonParts(family: ResponseFamily, doc: unknown): JsonParts {
  const parts: JsonParts = { calls: [], texts: [] };
  READERS[family](doc, parts);
  return parts;
}

/** What the rules decided for a JSON response body. */
/** The largest JSON answer (as received, and decoded) the response rules read; a larger one is refused (response_too_large), never passed ungoverned. */
export const MAX_GOVERNED_RESPONSE_BYTES = 8 << 20;

export type JsonResponseVerdict =
  | { readonly action: 'allow'; readonly body: Buffer }
  | {
      readonly action: 'deny';
      readonly policyId: string;
      readonly reason: string;
      /** The part denied: a tool call's or text part's key (no argument values). */
      readonly key: string;
    }
  | {
      readonly action: 'modify';
      /** The first modifying rule's. */
      readonly policyId: string;
      readonly reason: string;
      /** The rewritten body (re-serialised JSON: set Content-Length from it). */
      readonly body: Buffer;
      /** Each rewritten part's key and rule. */
      readonly changes: ReadonlyArray<{ readonly key: string; readonly policyId: string }>;
    }
  | {
      readonly action: 'error';
      /**
       * The body is not JSON (`unreadable`), a rewrite does not fit the
       * provider's shape (`unmodifiable`), or the memory a parse (or a
       * rewrite) of it takes is more than the request's share can reserve
       * (`body_budget_exhausted`).
       */
      readonly code: 'response_unreadable' | 'response_unmodifiable' | 'body_budget_exhausted';
    };

/** Takes bytes from the request's memory share; false when they are not there (src/memory/budget.ts). */
export type Reserve = (bytes: number) => boolean;

/**
 * Heap bytes a JSON value costs at most beyond its text, per structural
 * byte (`{`, `[`, `,`, `:`): every value and member is delimited by one,
 * and the costliest shapes (`[{},{},…]`, members with unique keys, boxed
 * numbers) measure 24–60 bytes each with the parser's own scratch
 * (test/response/json-cost.test.ts).
 */
const BYTES_PER_DELIMITER = 64;
/** Bodies up to this size are charged their worst case without counting. */
const FLAT_COST_BYTES = 16 * 1024;

/**
 * An upper bound on the memory `JSON.parse` of `body` takes: the decoded
 * text twice (the decoded body and the strings parsed from it, each at most
 * two bytes a byte as UTF-16) plus BYTES_PER_DELIMITER per
 * structural byte (those inside strings count too: the bound only grows).
 * The body itself is already charged by whoever read it.
 */
export function parseCostBytes(body: Buffer): number {
  // A small body is charged as if every byte were a delimiter (at most ~1 MiB):
  // counting would cost as much as the parse.
  if (body.length <= FLAT_COST_BYTES) return (4 + BYTES_PER_DELIMITER) * body.length;
  let delimiters = 0;
  // One pass, ~1 ns a byte: cheaper than an indexOf call per delimiter.
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === 0x2c || b === 0x3a || b === 0x7b || b === 0x5b) delimiters++;
  }
  return 4 * body.length + BYTES_PER_DELIMITER * delimiters;
}

type Parsed = { ok: true; doc: unknown } | { ok: false; code: 'response_unreadable' | 'body_budget_exhausted' };

function parse(body: Buffer, reserve: Reserve | undefined): Parsed {
  if (reserve && !reserve(parseCostBytes(body))) return { ok: false, code: 'body_budget_exhausted' };
  try {
    return { ok: true, doc: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false, code: 'response_unreadable' };
  }
}

/**
 * Whether the body parses as JSON (what a remote judgement of it needs, with
 * no local rule reading it): `body_budget_exhausted` when the parse does not
 * fit `reserve`.
 */
export function checkJsonBody(body: Buffer, reserve?: Reserve): 'json' | 'response_unreadable' | 'body_budget_exhausted' {
  const parsed = parse(body, reserve);
  return parsed.ok ? 'json' : parsed.code;
}

/** The provider-neutral view of a JSON response body; undefined when it is not JSON. */
export function viewOfJsonBody(provider: string, body: Buffer): ResponseView | undefined {
  const parsed = parse(body, undefined);
  if (!parsed.ok) return undefined;
  const family = responseFamilyOf(provider);
  const parts = jsonParts(family, parsed.doc);
  return { family, text: parts.texts.map((t) => t.part), toolCalls: parts.calls.map((c) => c.call) };
}

/**
 * Judges a JSON response body (uncompressed: decode it first) by the rules:
 * each tool call, then each text part, by the first rule of its target that
 * matches. The first denied part denies the response; otherwise modified
 * parts are rewritten and the body re-serialised; otherwise the body passes
 * as it came (the same Buffer). A body that is not JSON cannot be governed:
 * `error` with `response_unreadable` (the caller decides; refusing is the
 * safe answer when rules exist).
 */
export function governJsonResponse(provider: string, body: Buffer, rules: ResponseRules, reserve?: Reserve): JsonResponseVerdict {
  if (rules.ruleCount === 0) return { action: 'allow', body };
  const parsed = parse(body, reserve);
  if (!parsed.ok) return { action: 'error', code: parsed.code };
  const parts = jsonParts(responseFamilyOf(provider), parsed.doc);
  const changes: Array<{ key: string; policyId: string; verdict: PartVerdict; apply: () => void }> = [];
  for (const c of parts.calls) {
    const v = rules.evaluateCall(c.call);
    if (v.action === 'deny') return { action: 'deny', policyId: v.policyId, reason: v.reason, key: c.call.key };
    if (v.action === 'modify') changes.push({ key: c.call.key, policyId: v.policyId, verdict: v, apply: () => c.set({ value: v.value, text: v.text }) });
  }
  for (const t of parts.texts) {
    const v = rules.evaluateText(t.part);
    if (v.action === 'deny') return { action: 'deny', policyId: v.policyId, reason: v.reason, key: t.part.key };
    if (v.action === 'modify') changes.push({ key: t.part.key, policyId: v.policyId, verdict: v, apply: () => t.set(v.text) });
  }
  if (changes.length === 0) return { action: 'allow', body };
  try {
    for (const change of changes) change.apply();
  } catch {
    return { action: 'error', code: 'response_unmodifiable' };
  }
  const first = changes[0]!.verdict;
  if (reserve) {
    // Re-serialised, the body is at most its own length in UTF-16 units plus
    // each new text escaped (six units a character at most); that text takes
    // two bytes a unit, and its UTF-8 bytes three.
    let units = body.length;
    for (const change of changes) if (change.verdict.action === 'modify') units += 6 * change.verdict.text.length;
    if (!reserve(5 * units)) return { action: 'error', code: 'body_budget_exhausted' };
  }
  const text = JSON.stringify(parsed.doc);
  return {
    action: 'modify',
    policyId: first.policyId,
    reason: first.reason,
    body: Buffer.from(text, 'utf8'),
    changes: changes.map(({ key, policyId }) => ({ key, policyId })),
  };
}

/**
 * The answer to a denied JSON response: the request side's provider-shaped
 * 403 (src/http/providers.ts), so the official SDKs raise PermissionDeniedError
 * with `blocked by FirstOps policy: <reason>`.
 */
export function responseDenial(provider: string, policyId: string, reason: string): { status: number; body: Buffer } {
  const body = denialBody(policyId, reason || 'response denied');
  return { status: body.status, body: Buffer.from(JSON.stringify(errorEnvelope(errorStyleFor(provider), body)), 'utf8') };
}
