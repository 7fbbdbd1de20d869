import { Hono } from 'hono';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  /** Why not ready (or `draining`); empty when ready. */
  reasons: string[];
}

/**
 * The admin listener: liveness, readiness and Prometheus metrics, nothing
 * else. It binds where probes and scrapers reach it; the proxy listener stays
 * on loopback.
 */
export function createAdminApp(deps: { registry: Registry; readiness: () => Readiness }): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const state = deps.readiness();
    return state.ready ? c.json({ status: 'ready' }) : c.json({ status: 'not_ready', reasons: state.reasons }, 503);
  });
  app.get('/metrics', async (c) => {
    const body = await deps.registry.metrics();
    return c.body(body, 200, { 'content-type': deps.registry.contentType });
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'admin listener serves /healthz, /readyz and /metrics only' } }, 404));
  return app;
}
