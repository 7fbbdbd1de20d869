import type { Dispatcher } from 'undici';
import type { Config } from '../config.ts';
import { SidecarError } from '../errors.ts';
import { gatewayError } from '../egress/failures.ts';
import type { GatewayClient } from '../identity/gateway.ts';
import type { IdentityStore } from '../identity/store.ts';
import type { BodyBudget, BudgetShare } from '../memory/budget.ts';
import type { Metrics } from '../metrics.ts';
import { isUsableHost } from '../http/headers.ts';
import { createEndpointRewriter, localRewriter } from '../http/sse.ts';
import type { Exchange } from '../http/context.ts';
import { openHop, readBodyOrReply } from './hop.ts';
import { Reply, replySidecarError } from './respond.ts';

/** The only client headers the gateway sees; the gateway adds Authorization and DPoP itself. */
const FORWARDED = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'] as const;

/**
 * `/mcp/...`: the terminal hop to the FirstOps gateway. Same path and query,
 * the agent's bearer and a fresh DPoP proof, the MCP headers and nothing else
 * of the client's; the answer streams back, with legacy SSE `endpoint`
 * events pointed at the sidecar.
 */
export function createMcpHandler(deps: {
  config: Pick<Config, 'gatewayUrl' | 'maxBodyBytes' | 'listenHost' | 'port'>;
  gateway: GatewayClient;
  identity: IdentityStore;
  metrics: Metrics;
  budget: BodyBudget;
}) {
  const { config, gateway, identity, metrics, budget } = deps;
  const toLocal = localRewriter(config.gatewayUrl);
  const fallbackHost = `${config.listenHost.includes(':') ? `[${config.listenHost}]` : config.listenHost}:${config.port}`;

  return async function handleMcp(x: Exchange): Promise<Reply> {
    // A body is this request's memory until its answer is over (an MCP stream may last long: bodies are small).
    const share = budget.open();
    try {
      return await relay(x, share);
    } finally {
      share.release();
    }
  };

  async function relay(x: Exchange, share: BudgetShare): Promise<Reply> {
    const { req, target } = x;
    if (!identity.current()) return replySidecarError(x, new SidecarError('identity_unavailable', identity.missingReason));

    let body: Buffer | undefined;
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      const read = await readBodyOrReply(x, { maxBytes: config.maxBodyBytes, budget: { budget, share, factor: 1 }, route: 'mcp', metrics });
      if (read instanceof Reply) return read;
      body = read;
    }

    const headers: Record<string, string> = {};
    for (const name of FORWARDED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const hop = openHop(x, { route: 'mcp', metrics, classify: gatewayError });
    const response = await hop.send(gateway.request({
      method: req.method ?? 'GET',
      path: target.path,
      search: target.search,
      headers,
      body,
      signal: hop.signal,
    }));
    if (response instanceof Reply) return response;

    // Legacy HTTP+SSE announces its message URL on the GET stream; event
    // streams answering a POST (Streamable HTTP) carry no endpoint event and
    // are relayed untouched.
    if (req.method !== 'GET') return hop.relay(response);
    const host = req.headers.host;
    const localOrigin = `http://${host && isUsableHost(host) ? host : fallbackHost}`;
    return hop.relay(response, () => createEndpointRewriter(toLocal(localOrigin)));
  }
}
