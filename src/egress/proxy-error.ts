/** What went wrong on the hop to the egress proxy (not to the target behind it). */
export type ProxyFailure = 'unreachable' | 'refused' | 'timeout' | 'tls';

/**
 * A failure of the egress proxy itself, tagged where it happens (the
 * connection to the proxy, its answer to CONNECT), so a client is told "the
 * proxy" and not "the upstream". `proxy` is the redacted URL.
 */
export class ProxyError extends Error {
  readonly code = 'FIRSTOPS_PROXY_FAILED';
  readonly kind: ProxyFailure;
  readonly proxy: string;
  /** The proxy's status answering CONNECT (refused only). */
  readonly status: number | undefined;
  constructor(kind: ProxyFailure, proxy: string, options?: { status?: number; cause?: unknown }) {
    const what = kind === 'refused' ? `answered ${options?.status ?? '?'}` : kind;
    super(`egress proxy ${proxy} ${what}`, { cause: options?.cause });
    this.name = 'ProxyError';
    this.kind = kind;
    this.proxy = proxy;
    this.status = options?.status;
  }
}

/** Node and undici codes of a certificate or handshake failure. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA',
  'INVALID_PURPOSE', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The TLS code of an error (or one of its causes), or undefined when it is not a TLS failure. */
export function tlsCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The proxy failure an outbound error stands for, if any: a ProxyError
 * tagged on the way, or the two failures undici itself names as the proxy's
 * (a forward-proxied request answered 407; the proxy's certificate for
 * another name).
 */
export function proxyFailureOf(err: unknown): ProxyError | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 4; depth++) {
    if (cur instanceof ProxyError) return cur;
    const code = (cur as { code?: unknown }).code;
    const message = String((cur as { message?: unknown }).message ?? '');
    if (code === 'UND_ERR_INVALID_ARG' && message.includes('Proxy Authentication Required (407)')) {
      return new ProxyError('refused', 'egress proxy', { status: 407, cause: cur });
    }
    if (code === 'UND_ERR_PRX_TLS') return new ProxyError('tls', 'egress proxy', { cause: cur });
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
