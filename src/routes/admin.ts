import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { Reply, writeReply } from './respond.ts';

export interface Readiness {
  ready: boolean;
  /** Why not ready (or `draining`); empty when ready. */
  reasons: string[];
}

const NOT_FOUND = JSON.stringify({ error: { code: 'not_found', message: 'admin listener serves /healthz, /readyz and /metrics only' } });
const INTERNAL = JSON.stringify({ error: { code: 'internal', message: 'internal error' } });

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  writeReply(res, new Reply(status, { 'content-type': contentType }, body));
}

/**
 * The admin listener: liveness, readiness and Prometheus metrics (GET or
 * HEAD), nothing else. It binds where probes and scrapers reach it; the proxy
 * listener stays on loopback. Served on node's own request and response, as
 * the proxy listener is: a web-standard app here would load Node's bundled
 * undici (its Request, Response and Headers) for three fixed answers, about
 * 3 MB of the image's idle memory (docs/performance.md, "Fifth round").
 */
export function createAdminHandler(deps: { registry: Registry; readiness: () => Readiness }) {
  const { registry, readiness } = deps;
  return function handleAdminRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 404, 'application/json', NOT_FOUND);
    switch (path) {
      case '/healthz':
        return send(res, 200, 'application/json', '{"status":"ok"}');
      case '/readyz': {
        const state = readiness();
        return state.ready
          ? send(res, 200, 'application/json', '{"status":"ready"}')
          : send(res, 503, 'application/json', JSON.stringify({ status: 'not_ready', reasons: state.reasons }));
      }
      case '/metrics':
        registry.metrics().then(
          (page) => send(res, 200, registry.contentType, page),
          () => send(res, 500, 'application/json', INTERNAL),
        );
        return;
      default:
        return send(res, 404, 'application/json', NOT_FOUND);
    }
  };
}
