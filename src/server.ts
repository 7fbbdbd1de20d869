import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Config } from './config.ts';
import { createDebugListener, type DebugListener } from './debug/listener.ts';
import { openDispatcher } from './egress/upstream.ts';
import { createProxyServer, listen, onClientError, type ProxyServer } from './http/listener.ts';
import { createGatewayClient, type GatewayClient } from './identity/gateway.ts';
import { openIdentityStore, type IdentityStore } from './identity/store.ts';
import type { Logger } from './log.ts';
import { countDroppedLines, createMetrics, onCollect, type Metrics } from './metrics.ts';
import { createBodyBudget, type BodyBudget } from './memory/budget.ts';
import { describeMemory, SMALL_BODY_BYTES } from './memory/plan.ts';
import { RECLAIM_EVERY_BYTES, reclaimSoon } from './memory/reclaim.ts';
import { createPolicyChain, type PolicyChain } from './policy/chain.ts';
import { createInspector, type Inspector } from './policy/pool.ts';
import { createRemoteEvaluator } from './policy/remote.ts';
import { openPolicyStore, type PolicyStore } from './policy/store.ts';
import type { RemoteEvaluator } from './policy/types.ts';
import { createAdminHandler } from './routes/admin.ts';
import { createLlmHandler } from './routes/llm.ts';
import { createMcpHandler } from './routes/mcp.ts';
import { createProxyRoutes } from './routes/proxy.ts';

export interface Sidecar {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  /** Undefined when FIRSTOPS_DEBUG_PORT=off. */
  readonly debugAddress: AddressInfo | undefined;
  readonly metrics: Metrics;
  readonly identity: IdentityStore;
  readonly policy: PolicyStore | undefined;
  /** SIGTERM: not ready, no new connections, in-flight work gets the drain period, then everything closes. */
  drain(): Promise<void>;
}

/** What start-up opened so far, closed in reverse when a later step fails (and at the end of a drain). */
class Openings {
  readonly #closers: Array<() => unknown> = [];
  add(close: () => unknown): void {
    this.#closers.push(close);
  }
  closeAll(): void {
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        void Promise.resolve(close()).catch(() => undefined);
      } catch {
        // Closing is best effort: one failure must not keep the others open.
      }
    }
  }
}

/** Step: the way out (proxies, client certificates) for upstreams and the gateway. */
async function openEgress(config: Config, logger: Logger, opened: Openings): Promise<Dispatcher> {
  const dispatcher = await openDispatcher(config, logger);
  opened.add(() => dispatcher.close());
  return dispatcher;
}

/** Step: the agent's identity from the mounted Secret (reloaded on change), and the gateway client that signs with it. */
async function openIdentity(config: Config, dispatcher: Dispatcher, logger: Logger, metrics: Metrics, opened: Openings): Promise<{ identity: IdentityStore; gateway: GatewayClient }> {
  const identity = await openIdentityStore({ dir: config.identityDir, reloadIntervalMs: config.reloadIntervalMs, logger, metrics });
  opened.add(() => identity.close());
  const gateway = createGatewayClient({ gatewayUrl: config.gatewayUrl, identity, dispatcher, metrics });
  return { identity, gateway };
}

/** The in-flight body budget, its gauges, and one line saying how it was sized (a warning when the cap does not fit it). */
function openBudget(config: Config, metrics: Metrics, logger: Logger): BodyBudget {
  const { memory } = config;
  metrics.budgetBytes.set({ state: 'limit' }, memory.budgetBytes);
  metrics.budgetBytes.set({ state: 'in_use' }, 0);
  const fields = describeMemory(memory);
  if (memory.warning) logger.warn({ component: 'memory', ...fields }, memory.warning);
  else logger.info({ component: 'memory', ...fields }, 'memory budget for request bodies in flight');
  const budget = createBodyBudget({
    bytes: memory.budgetBytes,
    smallBytes: SMALL_BODY_BYTES,
    observer: {
      // A large body's memory is freed for real before its share is used again (memory/reclaim.ts).
      released: (bytes) => {
        if (bytes >= RECLAIM_EVERY_BYTES) reclaimSoon();
      },
    },
  });
  // Read when scraped rather than set at every take and release (twice a request, ~1 µs; issue 21).
  onCollect(metrics.budgetBytes, () => metrics.budgetBytes.set({ state: 'in_use' }, budget.inUse()));
  return budget;
}

/** What governs a request: the policy file (reloaded on change), the local-then-remote chain, the worker pool, the body budget. */
interface Governance {
  readonly policy: PolicyStore | undefined;
  readonly chain: PolicyChain;
  readonly remote: RemoteEvaluator;
  readonly budget: BodyBudget;
}

/** Step: the policy file, the remote evaluator, the in-flight budget and the chain that uses them. */
async function openGovernance(config: Config, identity: IdentityStore, gateway: GatewayClient, logger: Logger, metrics: Metrics, opened: Openings): Promise<Governance> {
  const policy = config.policyFile
    ? await openPolicyStore({ file: config.policyFile, reloadIntervalMs: config.reloadIntervalMs, logger, metrics })
    : undefined;
  if (policy) opened.add(() => policy.close());
  // A modify payload may outgrow the body it rewrites a little, never without bound.
  const remote = createRemoteEvaluator({ gateway, timeoutMs: config.policyTimeoutMs, maxPayloadBytes: config.maxBodyBytes + Math.ceil(config.maxBodyBytes / 4) });
  const budget = openBudget(config, metrics, logger);
  const inspector: Inspector = createInspector({
    workers: config.policyWorkers,
    offloadBytes: config.policyOffloadBytes,
    budgetMs: config.policyBudgetMs,
    maxQueue: 16 * config.policyWorkers,
  });
  opened.add(() => inspector.close());
  const chain = createPolicyChain({
    local: () => policy?.current(),
    inspector,
    remote: () => (config.remotePolicy !== 'off' && identity.current() ? remote : undefined),
    failMode: config.failMode,
    metrics,
    logger,
  });
  return { policy, chain, remote, budget };
}

/** Step: the proxy listener and its routes: /llm (governed both ways) and /mcp (signed). */
function buildProxyServer(config: Config, deps: { dispatcher: Dispatcher; identity: IdentityStore; gateway: GatewayClient; governance: Governance; metrics: Metrics; logger: Logger; debug: DebugListener | undefined }): ProxyServer {
  const { dispatcher, identity, gateway, governance: { policy, chain, remote, budget }, metrics, logger, debug } = deps;
  const handle = createProxyRoutes({
    llm: createLlmHandler({
      config, chain, dispatcher, metrics, budget, logger,
      responseRules: () => policy?.current().responses,
      responseRemote: () => (config.responseRemote === 'on' && config.remotePolicy !== 'off' && identity.current() ? remote : undefined),
    }),
    mcp: createMcpHandler({ config, gateway, identity, metrics, budget }),
    logger,
  });
  return createProxyServer({ handle, metrics, logger, onLine: debug ? (line) => debug.record(line) : undefined });
}

/** Step: the admin listener (/healthz, /readyz, /metrics) for probes and scrapers. */
function buildAdminServer(metrics: Metrics, readiness: () => { ready: boolean; reasons: string[] }): Server {
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, createAdminHandler({ registry: metrics.registry, readiness }));
  server.on('clientError', onClientError);
  return server;
}

/** Stops new connections, gives in-flight requests the drain period, cuts the rest, then closes everything. */
async function drainAll(config: Config, logger: Logger, metrics: Metrics, parts: { proxy: ProxyServer; admin: Server; debug: DebugListener | undefined; opened: Openings }): Promise<void> {
  const { proxy, admin, debug, opened } = parts;
  metrics.draining.set(1);
  metrics.ready.set(0);
  logger.info({ in_flight: proxy.active.size, drain_timeout_ms: config.drainTimeoutMs }, 'draining');
  proxy.startDraining();
  const closed = new Promise<void>((resolve) => proxy.server.close(() => resolve()));
  proxy.server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), config.drainTimeoutMs);
  });
  const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    logger.warn({ cut: proxy.active.size }, 'drain period over; closing the remaining connections');
    proxy.server.closeAllConnections();
    await closed;
  }
  opened.closeAll();
  await debug?.close();
  await new Promise<void>((resolve) => {
    admin.close(() => resolve());
    admin.closeAllConnections();
  });
  logger.info('drained; bye');
}

/**
 * Starts the sidecar: egress, identity, governance, then the listeners
 * (admin first, so probes answer while the proxy comes up). Throws, with
 * nothing left running, on a bad identity, policy file or port.
 */
export async function startSidecar(options: {
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  /** Where the logger's lines go (main.ts's LineSink): its dropped lines are counted in /metrics. */
  logSink?: { readonly dropped: number };
}): Promise<Sidecar> {
  const { config, logger, logSink } = options;
  const metrics = options.metrics ?? createMetrics();
  if (logSink) countDroppedLines(metrics.logLinesDropped, logSink);
  const opened = new Openings();
  let draining = false;
  let proxyListening = false;
  const admin = buildAdminServer(metrics, () => {
    const reasons: string[] = [];
    if (draining) reasons.push('draining');
    if (!proxyListening) reasons.push('proxy listener not up');
    return { ready: reasons.length === 0, reasons };
  });
  let proxy: ProxyServer | undefined;
  let debug: DebugListener | undefined;
  try {
    const dispatcher = await openEgress(config, logger, opened);
    const { identity, gateway } = await openIdentity(config, dispatcher, logger, metrics, opened);
    const governance = await openGovernance(config, identity, gateway, logger, metrics, opened);
    debug = config.debugPort === undefined
      ? undefined
      : createDebugListener({ config, chain: governance.chain, identity, policy: governance.policy, logger, metrics });
    proxy = buildProxyServer(config, { dispatcher, identity, gateway, governance, metrics, logger, debug });

    const adminAddress = await listen(admin, config.adminPort, config.adminHost, { host: 'FIRSTOPS_ADMIN_HOST', port: 'FIRSTOPS_ADMIN_PORT' });
    const debugAddress = debug ? await listen(debug.server, config.debugPort!, config.debugHost, { host: 'FIRSTOPS_DEBUG_HOST', port: 'FIRSTOPS_DEBUG_PORT' }) : undefined;
    const proxyAddress = await listen(proxy.server, config.port, config.listenHost, { host: 'FIRSTOPS_LISTEN_HOST', port: 'FIRSTOPS_PORT' });
    proxyListening = true;
    metrics.ready.set(1);
    logger.info({
      proxy: `${proxyAddress.address}:${proxyAddress.port}`,
      admin: `${adminAddress.address}:${adminAddress.port}`,
      debug: debugAddress ? `${debugAddress.address}:${debugAddress.port}` : 'off',
    }, 'firstops-sidecar listening');

    const parts = { proxy, admin, debug, opened };
    let drained: Promise<void> | undefined;
    return {
      proxyAddress, adminAddress, debugAddress, metrics, identity, policy: governance.policy,
      drain: () => {
        draining = true;
        drained ??= drainAll(config, logger, metrics, parts);
        return drained;
      },
    };
  } catch (err) {
    admin.close();
    proxy?.server.close();
    void debug?.close();
    opened.closeAll();
    throw err;
  }
}
