import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { RequestError, getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Dispatcher } from 'undici';
import type { Config } from './config.ts';
import { ERROR_TABLE, type ErrorCode } from './errors.ts';
import { createGatewayClient } from './identity/gateway.ts';
import { openIdentityStore, type IdentityStore } from './identity/store.ts';
import { scalarChild, type Logger } from './log.ts';
import { createMetrics, methodLabel, type Metrics } from './metrics.ts';
import { createPolicyChain } from './policy/chain.ts';
import { createInspector } from './policy/pool.ts';
import { createRemoteEvaluator } from './policy/remote.ts';
import { createBodyBudget, type BodyBudget } from './memory/budget.ts';
import { describeMemory, SMALL_BODY_BYTES } from './memory/plan.ts';
import { RECLAIM_EVERY_BYTES, reclaimSoon } from './memory/reclaim.ts';
import { openPolicyStore, type PolicyStore } from './policy/store.ts';
import { newRecord, routeOf, type ProxyBindings, type ProxyEnv, type RequestRecord } from './http/context.ts';
import { createAdminApp } from './routes/admin.ts';
import { createLlmHandler } from './routes/llm.ts';
import { createMcpHandler } from './routes/mcp.ts';
import { createProxyApp } from './routes/proxy.ts';
import { openDispatcher } from './egress/upstream.ts';
import { createDebugListener, type DebugListener } from './debug/listener.ts';
import type { RequestLine } from './debug/history.ts';

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

const MAX_LOGGED_PATH = 256;
const MAX_LOGGED_REASON = 256;

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How long a refused connection keeps reading (and dropping) what the client still sends. */
const LINGER_MS = 2_000;

/** Answers what node's HTTP parser refuses (bad framing, huge headers, slow clients) with a JSON error. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'header_too_large'
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout'
    : 'bad_request';
  const { status, message } = ERROR_TABLE[code];
  const body = JSON.stringify({ error: { code, message } });
  // Lingering close: what the client is still sending is read and dropped for a
  // moment, so its kernel does not see a reset (which can discard this answer
  // before the client reads it) while it writes the rest of a large body.
  socket.resume();
  const answer = (): void => {
    if (socket.destroyed) return;
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
    socket.end(
      `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };
  // A request read whole from this connection (the bytes after it are what
  // failed) gets its own answer first: ending the socket under it would turn
  // that answer into a reset. One still reading its body (the client left
  // mid-body) is ended with the socket. node keeps the response in flight on
  // the socket.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight && inFlight.req.complete && !inFlight.writableFinished) inFlight.once('close', answer);
  else answer();
}

/** The in-flight body budget, its gauges, and one line saying how it was sized (a warning when the cap does not fit it). */
function openBudget(config: Config, metrics: Metrics, logger: Logger): BodyBudget {
  const { memory } = config;
  metrics.budgetBytes.set({ state: 'limit' }, memory.budgetBytes);
  metrics.budgetBytes.set({ state: 'in_use' }, 0);
  const fields = describeMemory(memory);
  if (memory.warning) logger.warn({ component: 'memory', ...fields }, memory.warning);
  else logger.info({ component: 'memory', ...fields }, 'memory budget for request bodies in flight');
  return createBodyBudget({
    bytes: memory.budgetBytes,
    smallBytes: SMALL_BODY_BYTES,
    observer: {
      inUse: (bytes) => metrics.budgetBytes.set({ state: 'in_use' }, bytes),
      // A large body's memory is freed for real before its share is used again (memory/reclaim.ts).
      released: (bytes) => {
        if (bytes >= RECLAIM_EVERY_BYTES) reclaimSoon();
      },
    },
  });
}

/** Starts both listeners with everything they need; throws (nothing left running) on a bad identity, policy file or port. */
export async function startSidecar(options: { config: Config; logger: Logger; metrics?: Metrics }): Promise<Sidecar> {
  const { config, logger } = options;
  const metrics = options.metrics ?? createMetrics();
  const requestLog = scalarChild(logger, { component: 'request' });

  const dispatcher: Dispatcher = await openDispatcher(config, logger);
  const identity = await openIdentityStore({ dir: config.identityDir, reloadIntervalMs: config.reloadIntervalMs, logger, metrics }).catch((err: unknown) => {
    void dispatcher.close();
    throw err;
  });
  let policy: PolicyStore | undefined;
  try {
    policy = config.policyFile
      ? await openPolicyStore({ file: config.policyFile, reloadIntervalMs: config.reloadIntervalMs, logger, metrics })
      : undefined;
  } catch (err) {
    identity.close();
    void dispatcher.close();
    throw err;
  }

  const gateway = createGatewayClient({ gatewayUrl: config.gatewayUrl, identity, dispatcher, metrics });
  // A modify payload may outgrow the body it rewrites a little, never without bound.
  const remote = createRemoteEvaluator({ gateway, timeoutMs: config.policyTimeoutMs, maxPayloadBytes: config.maxBodyBytes + Math.ceil(config.maxBodyBytes / 4) });
  const budget = openBudget(config, metrics, logger);
  const inspector = createInspector({
    workers: config.policyWorkers,
    offloadBytes: config.policyOffloadBytes,
    budgetMs: config.policyBudgetMs,
    maxQueue: 16 * config.policyWorkers,
  });
  const chain = createPolicyChain({
    local: () => policy?.current(),
    inspector,
    remote: () => (config.remotePolicy !== 'off' && identity.current() ? remote : undefined),
    failMode: config.failMode,
    metrics,
    logger,
  });
  const debug: DebugListener | undefined = config.debugPort === undefined
    ? undefined
    : createDebugListener({ config, chain, identity, policy, logger });
  const proxyApp: Hono<ProxyEnv> = createProxyApp({
    llm: createLlmHandler({
      config, chain, dispatcher, metrics, budget, logger,
      responseRules: () => policy?.current().responses,
      responseRemote: () => (config.responseRemote === 'on' && config.remotePolicy !== 'off' && identity.current() ? remote : undefined),
    }),
    mcp: createMcpHandler({ config, gateway, identity, metrics, budget }),
    logger,
  });

  let draining = false;
  let proxyListening = false;
  const active = new Set<ServerResponse>();
  const records = new WeakMap<IncomingMessage, RequestRecord>();
  const honoListener = getRequestListener(
    (request, env) => {
      const bindings = env as ProxyBindings;
      const record = records.get(bindings.incoming);
      if (record) bindings.record = record;
      return proxyApp.fetch(request, bindings);
    },
    {
      autoCleanupIncoming: false,
      overrideGlobalObjects: false,
      hostname: config.listenHost,
      // A Host header the adapter cannot build a URL from gets the same JSON error as everything else.
      errorHandler: (err) => {
        const code: ErrorCode = err instanceof RequestError ? 'bad_request' : 'internal';
        if (code === 'internal') logger.error({ err: { message: (err as Error).message } }, 'request failed in the HTTP adapter');
        const { status, message } = ERROR_TABLE[code];
        return new Response(JSON.stringify({ error: { code, message } }), {
          status,
          headers: { 'content-type': 'application/json', connection: 'close' },
        });
      },
    },
  );

  const finish = (req: IncomingMessage, res: ServerResponse, record: RequestRecord, started: number, closedAt: number): void => {
    active.delete(res);
    const seconds = (closedAt - started) / 1000;
    // 499 (nginx's convention) whenever the client left first, even mid-stream.
    const status = record.code === 'client_aborted' || !res.headersSent ? 499 : res.statusCode;
    const provider = record.provider;
    metrics.inflight.dec({ route: record.route });
    metrics.requests.inc({ route: record.route, provider, method: methodLabel(req.method), status: String(status) });
    metrics.requestDuration.observe({ route: record.route, provider }, seconds);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const line: RequestLine = {
      route: record.route,
      provider,
      method: req.method,
      path: (q === -1 ? url : url.slice(0, q)).slice(0, MAX_LOGGED_PATH),
      status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      decision: record.decision,
      policy_id: record.policyId,
      source: record.source,
      reason: record.reason?.slice(0, MAX_LOGGED_REASON),
      code: record.code,
      response_decision: record.responseDecision,
      response_policy_id: record.responsePolicyId,
      response_source: record.responseSource,
      bytes_in: record.bytesIn,
      bytes_out: record.bytesOut,
    };
    // The debug history keeps the request's governance fields; the log line adds what the response said.
    requestLog.info({ ...line, model: record.model, input_tokens: record.inputTokens, output_tokens: record.outputTokens }, 'request');
    debug?.record(line);
  };

  const proxyServer = createServer(
    { headersTimeout: 30_000, requestTimeout: 300_000, keepAliveTimeout: 5_000, noDelay: true },
    (req, res) => {
      const started = performance.now();
      const record = newRecord(routeOf(req.url));
      active.add(res);
      metrics.inflight.inc({ route: record.route });
      if (draining) res.setHeader('connection', 'close');
      records.set(req, record);
      // The line is written once the socket side is done and the handler has
      // recorded everything it learned (bytes, error codes after a relay, the
      // usage meter's figures); the duration is the client's, up to the close.
      const closed = new Promise<number>((resolve) => res.once('close', () => resolve(performance.now())));
      const handled = Promise.resolve(honoListener(req, res)).catch(() => undefined);
      void Promise.all([closed, handled]).then(([closedAt]) => finish(req, res, record, started, closedAt));
    },
  );
  proxyServer.on('clientError', onClientError);

  const adminApp = createAdminApp({
    registry: metrics.registry,
    readiness: () => {
      const reasons: string[] = [];
      if (draining) reasons.push('draining');
      if (!proxyListening) reasons.push('proxy listener not up');
      return { ready: reasons.length === 0, reasons };
    },
  });
  const adminServer = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, getRequestListener(adminApp.fetch, { overrideGlobalObjects: false }));
  adminServer.on('clientError', onClientError);

  const closeAll = (): void => {
    identity.close();
    policy?.close();
    void inspector.close();
    void dispatcher.close().catch(() => undefined);
  };

  let proxyAddress: AddressInfo;
  let adminAddress: AddressInfo;
  let debugAddress: AddressInfo | undefined;
  try {
    adminAddress = await listen(adminServer, config.adminPort, config.adminHost);
    if (debug) debugAddress = await listen(debug.server, config.debugPort!, config.debugHost);
    proxyAddress = await listen(proxyServer, config.port, config.listenHost);
    proxyListening = true;
    metrics.ready.set(1);
  } catch (err) {
    adminServer.close();
    proxyServer.close();
    void debug?.close();
    closeAll();
    throw err;
  }
  logger.info({
    proxy: `${proxyAddress.address}:${proxyAddress.port}`,
    admin: `${adminAddress.address}:${adminAddress.port}`,
    debug: debugAddress ? `${debugAddress.address}:${debugAddress.port}` : 'off',
  }, 'firstops-sidecar listening');

  let drained: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    drained ??= (async () => {
      draining = true;
      metrics.draining.set(1);
      metrics.ready.set(0);
      logger.info({ in_flight: active.size, drain_timeout_ms: config.drainTimeoutMs }, 'draining');
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
      const closed = new Promise<void>((resolve) => proxyServer.close(() => resolve()));
      proxyServer.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.drainTimeoutMs);
      });
      const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        logger.warn({ cut: active.size }, 'drain period over; closing the remaining connections');
        proxyServer.closeAllConnections();
        await closed;
      }
      closeAll();
      await debug?.close();
      await new Promise<void>((resolve) => {
        adminServer.close(() => resolve());
        adminServer.closeAllConnections();
      });
      logger.info('drained; bye');
    })();
    return drained;
  };

  return { proxyAddress, adminAddress, debugAddress, metrics, identity, policy, drain };
}
