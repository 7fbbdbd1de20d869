/**
 * Response governance (issue 22): the model's tool calls (and, with text
 * rules, its text) meet the policy file's `responses` rules before the agent
 * gets them. The relay's entry points:
 *
 * - compileResponseRules(section)          the `responses` section → ResponseRules (throws PolicyFileError)
 * - createResponseGateTransform(options)   an SSE response body through the gate (a Node Transform)
 * - createResponseGate(options, sink)      the same as a push API (write/end/destroy)
 * - governJsonResponse(provider, body, rules, reserve) and responseDenial(...) for JSON bodies;
 *   checkJsonBody and parseCostBytes: what a parse of one costs the request's memory share
 * - viewOfJsonBody / createStreamViewer    the provider-neutral view (debug dry run, remote events)
 */
export { compileResponseRules, type ResponseRuleDoc, type ResponseRules } from '../policy/response-rules.ts';
export {
  createResponseGate, judgeLocally, DEFAULT_MAX_HOLD_BYTES, DEFAULT_MAX_HOLD_MS,
  type GateSink, type GateSummary, type HeldReport, type RemoteCallHook, type ResponseGate, type ResponseGateOptions,
} from './gate.ts';
export { createResponseGateTransform } from './transform.ts';
export { checkJsonBody, governJsonResponse, parseCostBytes, responseDenial, viewOfJsonBody, MAX_GOVERNED_RESPONSE_BYTES, type JsonResponseVerdict, type Reserve } from './json.ts';
export { createStreamViewer } from './view.ts';
export { responseFamilyOf } from './decoders.ts';
export { streamErrorEvent, type GateFailure } from './stream-error.ts';
export type { PartVerdict, ResponseFamily, ResponseView, TextPart, ToolCall } from '../policy/response-types.ts';
