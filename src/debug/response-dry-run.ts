import type { Metrics } from '../metrics.ts';
import {
  compileResponseRules, createResponseGate, MAX_GOVERNED_RESPONSE_BYTES, createStreamViewer, governJsonResponse, responseDenial, viewOfJsonBody,
  type GateSummary, type ResponseRules, type ResponseView,
} from '../response/index.ts';

const NO_RESPONSE_RULES = compileResponseRules(undefined);

/** What a response dry run judges: an upstream's JSON answer, or the SSE events of a streamed one. */
export type ResponseDryRunInput =
  | { readonly kind: 'json'; readonly response: Record<string, unknown> }
  | { readonly kind: 'stream'; readonly events: string };

/** Tool calls by id and name only: an argument value never leaves the dry run, except as a modify rewrote it. */
function callNames(view: ResponseView | undefined): Array<{ id: string; name: string }> {
  return (view?.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name }));
}

/** Runs a whole stream through the gate the route uses; resolves with what the client would get, write by write, and the summary. */
function gateStream(provider: string, rules: ResponseRules, events: Buffer): Promise<{ writes: Buffer[]; summary: GateSummary }> {
  return new Promise((resolve) => {
    const writes: Buffer[] = [];
    const gate = createResponseGate(
      { provider, rules, onEnd: (summary) => resolve({ writes, summary }) },
      { write: (chunk) => writes.push(Buffer.from(chunk)), end: () => undefined },
    );
    gate.write(events);
    gate.end();
  });
}

/**
 * The debug listener's response dry run (issue 22): the loaded policy's
 * response rules judge `input` with the functions the LLM route uses
 * (governJsonResponse, createResponseGate), locally only. The answer names
 * the tool calls (id and name) but holds no argument value: a modify's
 * rewritten body or events hold them as the rules left them, and a deny
 * shows only the error the client would get. Counted in
 * `firstops_policy_decisions_total` (phase `response`) as the route counts
 * its local verdicts, when `metrics` is given.
 */
export async function dryRunResponse(options: {
  readonly provider: string;
  readonly toolName: string;
  readonly rules: ResponseRules | undefined;
  readonly input: ResponseDryRunInput;
  readonly metrics: Metrics | undefined;
}): Promise<Record<string, unknown>> {
  const { provider, toolName, input, metrics } = options;
  const rules = options.rules ?? NO_RESPONSE_RULES;
  const extra: Record<string, unknown> = {};
  let toolCalls: Array<{ id: string; name: string }>;
  let decision: string;
  let policyId = '';
  let reason = '';

  if (input.kind === 'json') {
    const body = Buffer.from(JSON.stringify(input.response), 'utf8');
    // The route reads no JSON answer past this bound: neither does its dry run.
    if (body.length > MAX_GOVERNED_RESPONSE_BYTES) return { phase: 'response', tool_name: toolName, decision: 'error', code: 'response_too_large', policy_id: null, reason: null, source: null, tool_calls: [] };
    const verdict = governJsonResponse(provider, body, rules);
    toolCalls = callNames(viewOfJsonBody(provider, body));
    decision = verdict.action;
    switch (verdict.action) {
      case 'error':
        extra.code = verdict.code;
        break;
      case 'deny': {
        ({ policyId, reason } = verdict);
        const denial = responseDenial(provider, policyId, reason);
        extra.status = denial.status;
        extra.error_body = JSON.parse(denial.body.toString('utf8'));
        break;
      }
      case 'modify':
        ({ policyId, reason } = verdict);
        extra.body = JSON.parse(verdict.body.toString('utf8'));
        break;
      default:
        break;
    }
  } else {
    const events = Buffer.from(input.events, 'utf8');
    const viewer = createStreamViewer(provider);
    viewer.push(events);
    toolCalls = callNames(viewer.end());
    const { writes, summary } = await gateStream(provider, rules, events);
    decision = summary.outcome;
    policyId = summary.policyId;
    reason = summary.reason;
    if (summary.outcome === 'modify') extra.events = Buffer.concat(writes).toString('utf8');
    // The gate appends its error event as its last write; what it let through before is not repeated here.
    if (summary.outcome === 'deny' || summary.outcome === 'error') extra.error_event = writes.at(-1)?.toString('utf8') ?? null;
    if (summary.outcome === 'error') extra.code = summary.code ?? null;
  }

  if (metrics && rules.ruleCount > 0 && (decision === 'allow' || decision === 'modify' || decision === 'deny')) {
    metrics.decisions.inc({ source: 'local', outcome: decision, phase: 'response' });
  }
  return {
    phase: 'response',
    tool_name: toolName,
    decision,
    policy_id: policyId || null,
    reason: reason || (rules.ruleCount === 0 ? 'the policy has no response rules' : null),
    source: decision === 'allow' && !policyId ? null : 'local',
    tool_calls: toolCalls,
    ...extra,
  };
}
