import { SidecarError, isSidecarError, type ErrorCode } from '../errors.ts';
import { proxyFailureOf, tlsCode } from './proxy-error.ts';

// How a failed hop (to an LLM upstream, or to the FirstOps gateway) maps to
// the sidecar's stable codes: the egress proxy's own failures first, then
// TLS, then what the network said. The codes and their statuses are in
// src/errors.ts.

/** Node/undici network error codes → the sidecar code for an upstream hop. */
const NETWORK_CODES: Record<string, 'unreachable' | 'reset' | 'timeout' | 'bad_response'> = {
  ECONNREFUSED: 'unreachable',
  ENOTFOUND: 'unreachable',
  EAI_AGAIN: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
  HPE_INVALID_CONSTANT: 'bad_response',
  UND_ERR_INFO: 'bad_response',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'bad_response',
};

function networkKind(err: unknown): 'unreachable' | 'reset' | 'timeout' | 'bad_response' | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code in NETWORK_CODES) return NETWORK_CODES[code];
      if (code.startsWith('HPE_')) return 'bad_response';
    }
    if ((cur as { name?: unknown }).name === 'TimeoutError') return 'timeout';
    // undici's parser errors often carry no code (HPE_ lookup misses): the name says it.
    if ((cur as { name?: unknown }).name === 'HTTPParserError') return 'bad_response';
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A failure of the egress proxy, whichever target was asked for. */
function proxyError(err: unknown): SidecarError | undefined {
  const failure = proxyFailureOf(err);
  if (!failure) return undefined;
  const code: ErrorCode =
    failure.kind === 'refused' ? 'proxy_refused'
    : failure.kind === 'timeout' ? 'proxy_timeout'
    : failure.kind === 'tls' ? 'proxy_tls'
    : 'proxy_unreachable';
  const detail = failure.kind === 'refused' ? `${failure.proxy} answered ${failure.status}` : failure.proxy;
  return new SidecarError(code, detail, { cause: err });
}

/** Classify a failure of the hop to an LLM upstream. */
export function upstreamError(err: unknown): SidecarError {
  if (isSidecarError(err)) return err;
  const viaProxy = proxyError(err);
  if (viaProxy) return viaProxy;
  const tls = tlsCode(err);
  if (tls) return new SidecarError('upstream_tls', tls, { cause: err });
  const kind = networkKind(err);
  const code: ErrorCode =
    kind === 'unreachable' ? 'upstream_unreachable'
    : kind === 'reset' ? 'upstream_reset'
    : kind === 'timeout' ? 'upstream_timeout'
    : kind === 'bad_response' ? 'upstream_bad_response'
    : 'upstream_error';
  return new SidecarError(code, undefined, { cause: err });
}

/** Classify a failure of the hop to the FirstOps gateway. */
export function gatewayError(err: unknown): SidecarError {
  if (isSidecarError(err)) return err;
  const viaProxy = proxyError(err);
  if (viaProxy) return viaProxy;
  const tls = tlsCode(err);
  if (tls) return new SidecarError('gateway_tls', tls, { cause: err });
  const kind = networkKind(err);
  const code: ErrorCode =
    kind === 'unreachable' ? 'gateway_unreachable' : kind === 'timeout' ? 'gateway_timeout' : 'gateway_error';
  return new SidecarError(code, undefined, { cause: err });
}
