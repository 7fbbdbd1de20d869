import type { Context } from 'hono';
import type { Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import { ClientAbortedError, readBody } from '../body.ts';
import { SidecarError, gatewayError } from '../errors.ts';
import type { GatewayClient } from '../gateway.ts';
import type { IdentityStore } from '../identity-store.ts';
import type { Metrics } from '../metrics.ts';
import { clientGone, relayResponse } from '../relay.ts';
import { createEndpointRewriter, gatewayToLocal } from '../sse.ts';
import type { ProxyEnv } from '../context.ts';
import { RESPONSE_ALREADY_SENT, replySidecarError, targetOf } from './respond.ts';

/** The only client headers the gateway sees; the gateway adds Authorization and DPoP itself. */
const FORWARDED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'] as const;
const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * `/mcp/...`: the terminal hop to the FirstOps gateway. Same path and query,
 * the agent's bearer and a fresh DPoP proof, the MCP headers and nothing else
 * of the client's; the answer streams back, with legacy SSE `endpoint`
 * events pointed at the sidecar.
 */
export function createMcpHandler(deps: {
  config: Pick<Config, 'gatewayUrl' | 'maxBodyBytes' | 'upstreamTimeoutMs' | 'listenHost' | 'port'>;
  gateway: GatewayClient;
  identity: IdentityStore;
  metrics: Metrics;
}) {
  const { config, gateway, identity, metrics } = deps;
  const fallbackHost = `${config.listenHost.includes(':') ? `[${config.listenHost}]` : config.listenHost}:${config.port}`;

  return async function handleMcp(c: Context<ProxyEnv>): Promise<Response> {
    const target = targetOf(c);
    const record = c.env?.record;
    if (!identity.current()) return replySidecarError(c, new SidecarError('identity_unavailable', identity.missingReason));
    const req = c.env?.incoming;
    const res = c.env?.outgoing;
    if (!req || !res) throw new Error('the MCP route needs node bindings');

    let body: Buffer | undefined;
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      try {
        body = await readBody(req, config.maxBodyBytes);
      } catch (err) {
        if (err instanceof ClientAbortedError) {
          if (record) record.code = err.code;
          res.destroy();
          return RESPONSE_ALREADY_SENT;
        }
        if (err instanceof SidecarError) return replySidecarError(c, err);
        throw err;
      }
      if (record) record.bytesIn = body.length;
    }

    const headers: Record<string, string> = {};
    for (const name of FORWARDED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const signal = clientGone(res);
    let response: Dispatcher.ResponseData;
    try {
      response = await gateway.request({
        method: req.method ?? 'GET',
        path: target.path,
        search: target.search,
        headers,
        body,
        signal,
        headersTimeoutMs: config.upstreamTimeoutMs,
      });
    } catch (err) {
      if (signal.aborted) {
        if (record) record.code = 'client_aborted';
        return RESPONSE_ALREADY_SENT;
      }
      const failure = gatewayError(err);
      if (failure.code !== 'identity_unavailable') metrics.upstreamErrors.inc({ route: 'mcp', code: failure.code });
      return replySidecarError(c, failure);
    }

    const host = req.headers.host;
    const localOrigin = `http://${host && HOST.test(host) ? host : fallbackHost}`;
    const relayed = await relayResponse(res, response, {
      route: 'mcp',
      metrics,
      transform: () => createEndpointRewriter(gatewayToLocal(config.gatewayUrl, localOrigin)),
    });
    if (record) record.bytesOut = relayed.bytesOut;
    if (relayed.error) {
      const code = signal.aborted ? 'client_aborted' : gatewayError(relayed.error).code;
      if (record) record.code = code;
      if (!signal.aborted) metrics.upstreamErrors.inc({ route: 'mcp', code });
    }
    return RESPONSE_ALREADY_SENT;
  };
}
