import type { Dispatcher } from 'undici';
import { SidecarError } from '../errors.ts';
import { gatewayError } from '../egress/failures.ts';
import type { IdentityStore } from './store.ts';
import type { Metrics } from '../metrics.ts';
import { undiciBody } from '../json/edits.ts';

export interface GatewayRequest {
  readonly method: string;
  /** Path (and query) under the gateway base URL, as the client sent it; starts with `/`. */
  readonly path: string;
  readonly search?: string;
  /** Extra headers; Authorization and DPoP are set here, never taken from the caller. */
  readonly headers?: Record<string, string>;
  /** One buffer, or parts written in order (a large event, never joined); re-sendable for a nonce retry. */
  readonly body?: Buffer | readonly Uint8Array[] | undefined;
  readonly signal?: AbortSignal;
  readonly headersTimeoutMs?: number;
  /** Longest silence while the answer body arrives; the dispatcher's default (none) otherwise. */
  readonly bodyTimeoutMs?: number;
}

export interface GatewayClient {
  /** The exact URL string a request to `path` is sent to (and signed for). */
  urlFor(path: string): string;
  request(req: GatewayRequest): Promise<Dispatcher.ResponseData>;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The only client of the FirstOps gateway. Every request carries the agent's
 * bearer and a fresh DPoP proof whose `htu` is the URL string sent, cut at
 * the query. RFC 9449 §8 nonces: the latest `DPoP-Nonce` the gateway sent is
 * put in every proof, and a 401 `use_dpop_nonce` is retried once.
 */
export function createGatewayClient(options: {
  gatewayUrl: string;
  identity: IdentityStore;
  dispatcher: Dispatcher;
  metrics: Metrics;
}): GatewayClient {
  const base = new URL(options.gatewayUrl);
  const origin = base.origin;
  const basePath = base.pathname === '/' ? '' : base.pathname.replace(/\/+$/, '');
  let nonce: string | undefined;

  const urlFor = (path: string): string => options.gatewayUrl + path;

  async function send(req: GatewayRequest): Promise<Dispatcher.ResponseData> {
    const identity = options.identity.current();
    if (!identity) throw new SidecarError('identity_unavailable', options.identity.missingReason);
    const proof = identity.proof(req.method, urlFor(req.path), nonce);
    const response = await options.dispatcher.request({
      origin,
      path: basePath + req.path + (req.search ?? ''),
      method: req.method as Dispatcher.HttpMethod,
      headers: { ...req.headers, authorization: `Bearer ${identity.bearer}`, dpop: proof },
      body: req.body && undiciBody(req.body),
      signal: req.signal,
      headersTimeout: req.headersTimeoutMs,
      ...(req.bodyTimeoutMs === undefined ? {} : { bodyTimeout: req.bodyTimeoutMs }),
    });
    const fresh = header(response.headers, 'dpop-nonce');
    if (fresh) nonce = fresh;
    return response;
  }

  return {
    urlFor,
    async request(req: GatewayRequest): Promise<Dispatcher.ResponseData> {
      try {
        const first = await send(req);
        const challenge = first.statusCode === 401 && header(first.headers, 'dpop-nonce') !== undefined &&
          /error\s*=\s*"?use_dpop_nonce/i.test(header(first.headers, 'www-authenticate') ?? '');
        if (!challenge) return first;
        await first.body.dump();
        options.metrics.dpopNonceRetries.inc();
        return await send(req);
      } catch (err) {
        throw gatewayError(err);
      }
    },
  };
}
