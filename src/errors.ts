/**
 * Every error the sidecar answers with has a stable machine `code`. The table
 * below is the one place where a code gets its HTTP status and its default
 * client-facing message; handlers throw or build a SidecarError by code.
 */
export const ERROR_TABLE = {
  not_found: { status: 404, message: 'no such route: the sidecar serves /llm/<provider>/... and /mcp/... only' },
  bad_request_target: { status: 400, message: 'request target must be a path (absolute-form and asterisk-form are refused)' },
  path_traversal: { status: 400, message: 'path contains a dot segment (., .. or an encoded form); refused so the governed path is the forwarded path' },
  bad_request: { status: 400, message: 'malformed HTTP request' },
  header_too_large: { status: 431, message: 'request headers too large' },
  request_timeout: { status: 408, message: 'request was not received in time' },
  invalid_json: { status: 400, message: 'request body is declared as JSON but is not valid UTF-8 JSON' },
  body_too_large: { status: 413, message: 'request body exceeds FIRSTOPS_MAX_BODY_BYTES' },
  body_budget_exhausted: { status: 503, message: 'the sidecar has no memory left for this body right now (bodies in flight use the budget, FIRSTOPS_MEMORY_BUDGET_BYTES); retry later' },
  unsupported_content_encoding: { status: 415, message: 'compressed request bodies cannot be governed; send the body uncompressed' },
  unknown_provider: { status: 502, message: 'unknown LLM provider' },
  governance_not_configured: { status: 503, message: 'LLM governance not configured: set FIRSTOPS_POLICY_FILE or mount an agent identity for remote evaluation' },
  identity_unavailable: { status: 503, message: 'agent identity not loaded' },
  policy_unavailable: { status: 503, message: 'policy evaluation failed and FIRSTOPS_FAIL_MODE is closed' },
  policy_budget_exceeded: { status: 503, message: 'local policy evaluation did not finish within FIRSTOPS_POLICY_BUDGET_MS and FIRSTOPS_FAIL_MODE is closed' },
  policy_denied: { status: 403, message: 'blocked by FirstOps policy' },
  upstream_unreachable: { status: 502, message: 'upstream refused or could not be reached' },
  upstream_reset: { status: 502, message: 'upstream closed the connection before answering' },
  upstream_bad_response: { status: 502, message: 'upstream sent a malformed response' },
  upstream_timeout: { status: 504, message: 'upstream did not answer in time' },
  upstream_error: { status: 502, message: 'upstream request failed' },
  upstream_tls: { status: 502, message: 'TLS verification of the upstream failed (unknown CA, wrong name, expired certificate or a refused client certificate); a private CA goes in NODE_EXTRA_CA_CERTS' },
  response_too_large: { status: 502, message: 'the upstream response is larger than the response rules read (8 MiB); it is not passed on ungoverned' },
  response_encoding_unsupported: { status: 502, message: 'the upstream response is compressed in a way the response rules cannot read; it is not passed on ungoverned' },
  response_unreadable: { status: 502, message: 'the upstream response is not JSON and cannot be governed by the response rules' },
  response_unmodifiable: { status: 502, message: 'a response rule\'s rewrite cannot be carried by the provider\'s response' },
  response_tool_call_incomplete: { status: 502, message: 'the upstream response ended inside a tool call; an incomplete tool call is not passed on ungoverned' },
  response_hold_exceeded: { status: 503, message: 'a tool call in the response outgrew the hold-back bound and cannot be governed' },
  response_hold_timeout: { status: 504, message: 'a tool call in the response was held past the hold-back time bound' },
  response_out_of_order: { status: 502, message: 'the upstream response continued a tool call after it had ended; it cannot be governed' },
  gateway_unreachable: { status: 502, message: 'FirstOps gateway refused or could not be reached' },
  gateway_timeout: { status: 504, message: 'FirstOps gateway did not answer in time' },
  gateway_error: { status: 502, message: 'FirstOps gateway request failed' },
  gateway_tls: { status: 502, message: 'TLS verification of the FirstOps gateway failed (unknown CA, wrong name or expired certificate); a private CA goes in NODE_EXTRA_CA_CERTS' },
  proxy_unreachable: { status: 502, message: 'egress proxy (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY) refused or could not be reached' },
  proxy_refused: { status: 502, message: 'egress proxy refused to open a tunnel to the target' },
  proxy_timeout: { status: 504, message: 'egress proxy did not answer in time' },
  proxy_tls: { status: 502, message: 'TLS verification of the egress proxy failed; a private CA goes in NODE_EXTRA_CA_CERTS' },
  debug_invalid_input: { status: 400, message: 'invalid debug listener request' },
  debug_not_found: { status: 404, message: 'the debug listener serves /, /debug/requests, /debug/requests/stream, /debug/config, /debug/evaluate and /debug/log-level only' },
  debug_host_refused: { status: 403, message: 'the debug listener answers requests addressed to a loopback host only (Host header; guards against DNS rebinding)' },
  debug_stream_full: { status: 503, message: 'too many readers on /debug/requests/stream' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class SidecarError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra client-safe detail appended to the message (never secrets or body text). */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ERROR_TABLE[code];
    super(detail ? `${entry.message}: ${detail}` : entry.message, options);
    this.name = 'SidecarError';
    this.code = code;
    this.status = entry.status;
    this.detail = detail;
  }
}

export function isSidecarError(err: unknown): err is SidecarError {
  return err instanceof SidecarError;
}
