import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DecisionSource, Route } from '../metrics.ts';
import type { Target } from './path.ts';

/** What a request's handler learns, for the one log line and the metrics written when it ends. */
export interface RequestRecord {
  readonly route: Route;
  provider: string;
  decision: string | undefined;
  policyId: string | undefined;
  /** Which policy source decided (`local`/`remote`), and why, as the rule or the gateway put it. */
  source: DecisionSource | undefined;
  reason: string | undefined;
  code: string | undefined;
  /** The answer's verdict (src/routes/llm-response.ts): `decision` and the rest describe the request. */
  responseDecision: string | undefined;
  responsePolicyId: string | undefined;
  responseSource: DecisionSource | undefined;
  bytesIn: number;
  bytesOut: number;
  /** From the usage meter (src/usage/): the model requested (or, failing that, answering), and the tokens reported. */
  model: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
}

/**
 * The fields of one finished request, as the request log line has them: all
 * scalars named in code, so an entry never holds headers, bodies, keys or
 * proofs, and its size is bounded (the path and reason are cut).
 */
export interface RequestLine {
  readonly route: string;
  readonly provider: string;
  readonly method: string | undefined;
  readonly path: string;
  readonly status: number;
  readonly duration_ms: number;
  readonly decision: string | undefined;
  readonly policy_id: string | undefined;
  readonly source: string | undefined;
  readonly reason: string | undefined;
  readonly code: string | undefined;
  /** The answer's verdict (issue 22), when response rules or remote response evaluation judged it. */
  readonly response_decision: string | undefined;
  readonly response_policy_id: string | undefined;
  readonly response_source: string | undefined;
  readonly bytes_in: number;
  readonly bytes_out: number;
}

/** One request as a route sees it: node's request and response, its record, and its target parsed and checked once before routing. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly record: RequestRecord;
  readonly target: Target;
}

export function routeOf(url: string | undefined): Route {
  if (url?.startsWith('/llm/')) return 'llm';
  if (url?.startsWith('/mcp/')) return 'mcp';
  return 'other';
}

export function newRecord(route: Route): RequestRecord {
  return {
    route,
    provider: route === 'llm' ? 'unknown' : 'none',
    decision: undefined,
    policyId: undefined,
    source: undefined,
    reason: undefined,
    code: undefined,
    responseDecision: undefined,
    responsePolicyId: undefined,
    responseSource: undefined,
    bytesIn: 0,
    bytesOut: 0,
    model: undefined,
    inputTokens: undefined,
    outputTokens: undefined,
  };
}
