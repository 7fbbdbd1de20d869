import { denialBody, errorEnvelope, type ErrorBody } from '../http/providers.ts';
import type { ResponseFamily } from '../policy/response-types.ts';

/** Why the gate ended a response that no rule denied. */
export type GateFailure =
  /** The stream ended inside a tool call (with `incomplete: 'deny'`). */
  | 'response_tool_call_incomplete'
  /** Held events outgrew `maxHoldBytes`. */
  | 'response_hold_exceeded'
  /** A call was held longer than `maxHoldMs`. */
  | 'response_hold_timeout'
  /** An event's data is not JSON: what it says cannot be governed. */
  | 'response_unreadable'
  /** An event continued a tool call after it had ended (the SDKs would append it to the call judged). */
  | 'response_out_of_order'
  /** A modified call's new arguments do not fit where the provider carries them. */
  | 'response_unmodifiable'
  /** The remote evaluation failed (the hook rejected). */
  | 'policy_unavailable'
  /** What the gate holds did not fit the request's share of the in-flight memory budget. */
  | 'body_budget_exhausted';

const FAILURES: Readonly<Record<GateFailure, { status: number; message: string }>> = {
  response_tool_call_incomplete: { status: 502, message: 'the upstream response ended inside a tool call; an incomplete tool call is not passed on ungoverned' },
  response_hold_exceeded: { status: 503, message: 'a tool call in the response outgrew the hold-back bound and cannot be governed' },
  response_hold_timeout: { status: 504, message: 'a tool call in the response was held past the hold-back time bound' },
  response_unreadable: { status: 502, message: 'the upstream response holds an event that is not JSON and cannot be governed' },
  response_out_of_order: { status: 502, message: 'the upstream response continued a tool call after it had ended; it cannot be governed' },
  response_unmodifiable: { status: 502, message: 'a policy rewrite of a tool call cannot be carried by the provider\'s response' },
  policy_unavailable: { status: 503, message: 'response policy evaluation failed and FIRSTOPS_FAIL_MODE is closed' },
  body_budget_exhausted: { status: 503, message: 'the tool call held back in the response does not fit the in-flight memory budget; retry later' },
};

export function failureBody(code: GateFailure): ErrorBody {
  const f = FAILURES[code];
  return { status: f.status, type: 'firstops_error', code, message: f.message };
}

export function denyBody(policyId: string, reason: string): ErrorBody {
  return denialBody(policyId, reason || 'response denied');
}

/**
 * The error event each family's SDK raises on, ending a stream:
 * - OpenAI (Chat Completions and Responses): `data: {"error":{...}}`, the
 *   SDK throws APIError for any event whose data has `error`;
 * - Anthropic: `event: error` with `{"type":"error","error":{type,message}}`;
 * - Gemini: `data: {"error":{code,message,status}}`, as its API reports errors.
 * The envelopes are the request side's (src/http/providers.ts).
 */
export function streamErrorEvent(family: ResponseFamily, body: ErrorBody): Buffer {
  const data = JSON.stringify(errorEnvelope(family, body));
  return Buffer.from(family === 'anthropic' ? `event: error\ndata: ${data}\n\n` : `data: ${data}\n\n`, 'utf8');
}
