/**
 * HTTP layer: the HTTPS webhook listener (`POST /mutate`, `/healthz`, `/readyz`,
 * `/metrics`) and the optional plain-HTTP listener for Prometheus and probes
 * (`/metrics`, `/healthz`). The API server calls `/mutate?timeout=5s`; only
 * the path is matched.
 */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { review } from './admission.ts';
import type { InjectorConfig } from './config.ts';
import type { InjectorErrorCode } from './errors.ts';
import { InjectorError } from './errors.ts';
import type { InjectorMetrics } from './metrics.ts';
import type { TlsMaterial } from './tls.ts';

export interface ServerDeps {
  config: InjectorConfig;
  logger: Logger;
  metrics: InjectorMetrics;
  /** False once shutdown began: /healthz answers 503. */
  isServing(): boolean;
}

class BodyTooLarge extends InjectorError {
  constructor(limit: number) {
    super('ADMISSION_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new BodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(payload);
}

function sendError(res: ServerResponse, status: number, code: InjectorErrorCode | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED', message: string, close = false): void {
  sendJson(res, status, { error: { code, message } }, close);
}

async function handleMetrics(res: ServerResponse, deps: ServerDeps): Promise<void> {
  const text = await deps.metrics.registry.metrics();
  res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
  res.end(text);
}

/** Liveness: 200 while the process runs, shutdown included (a restart then would cut the drain short). */
function handleHealth(res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/** Readiness: 503 from the moment shutdown begins, so the endpoints drop the pod while it still serves. */
function handleReady(res: ServerResponse, deps: ServerDeps): void {
  if (deps.isServing()) sendJson(res, 200, { status: 'ready' });
  else sendJson(res, 503, { status: 'draining' });
}

async function handleMutate(req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const { config, logger, metrics } = deps;
  const stop = metrics.duration.startTimer();
  let parsed: unknown;
  try {
    const body = await readBody(req, config.maxRequestBytes);
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new InjectorError('ADMISSION_REVIEW_INVALID', 'body is not valid JSON');
    }
    const result = review(parsed, config);
    const { decision, namespace, pod } = result;
    const uid = result.body.response.uid;
    switch (decision.outcome) {
      case 'injected':
        metrics.injections.inc({ namespace });
        logger.info({ namespace, pod, uid, operations: decision.patch.length, warnings: decision.warnings }, 'sidecar injected');
        break;
      case 'skipped':
        metrics.skips.inc({ namespace, reason: decision.reason });
        if (decision.warnings !== undefined) {
          logger.warn({ namespace, pod, uid, reason: decision.reason, warnings: decision.warnings }, 'pod admitted unchanged');
        } else {
          logger.debug({ namespace, pod, uid, reason: decision.reason }, 'pod admitted unchanged');
        }
        break;
      case 'warned':
      case 'rejected':
        metrics.failures.inc({ namespace, code: decision.reason });
        logger.warn({ namespace, pod, uid, code: decision.reason, detail: decision.message },
          decision.outcome === 'rejected' ? 'pod rejected' : 'pod admitted without sidecar');
        break;
    }
    stop({ outcome: decision.outcome });
    sendJson(res, 200, result.body);
  } catch (err) {
    stop({ outcome: 'error' });
    const known = err instanceof InjectorError ? err : undefined;
    const code: InjectorErrorCode = known?.code ?? 'INJECTOR_INTERNAL';
    metrics.failures.inc({ namespace: 'unknown', code });
    if (code === 'ADMISSION_BODY_TOO_LARGE') {
      logger.warn({ code }, known?.message);
      sendError(res, 413, code, known?.message ?? '', true);
    } else if (code === 'ADMISSION_REVIEW_INVALID') {
      logger.warn({ code, detail: known?.message }, 'unusable admission request');
      sendError(res, 400, code, known?.message ?? '');
    } else {
      logger.error({ code, err }, 'admission request failed');
      sendError(res, 500, 'INJECTOR_INTERNAL', 'internal error');
    }
  }
}

type Route = (req: IncomingMessage, res: ServerResponse, deps: ServerDeps) => Promise<void> | void;

function router(routes: Record<string, { method: 'GET' | 'POST'; handle: Route }>, deps: ServerDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://injector').pathname;
    const route = routes[path];
    if (route === undefined) {
      sendError(res, 404, 'NOT_FOUND', `no route for ${path}`);
      return;
    }
    const method = req.method === 'HEAD' && route.method === 'GET' ? 'GET' : req.method;
    if (method !== route.method) {
      res.setHeader('allow', route.method);
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${path} accepts ${route.method}`);
      return;
    }
    Promise.resolve(route.handle(req, res, deps)).catch((err: unknown) => {
      deps.logger.error({ err, path }, 'request handler failed');
      if (!res.headersSent) sendError(res, 500, 'INJECTOR_INTERNAL', 'internal error');
      else res.destroy();
    });
  };
}

const TIMEOUTS = { requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 30_000 } as const;

export function createWebhookServer(deps: ServerDeps, tls: TlsMaterial): HttpsServer {
  const server = createHttpsServer(
    { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...TIMEOUTS },
    router({
      '/mutate': { method: 'POST', handle: handleMutate },
      '/healthz': { method: 'GET', handle: (_req, res) => handleHealth(res) },
      '/readyz': { method: 'GET', handle: (_req, res) => handleReady(res, deps) },
      '/metrics': { method: 'GET', handle: (_req, res) => handleMetrics(res, deps) },
    }, deps),
  );
  server.on('tlsClientError', (err) => deps.logger.debug({ err: err.message }, 'TLS handshake failed'));
  return server;
}

export function createMetricsServer(deps: ServerDeps): HttpServer {
  return createHttpServer(
    TIMEOUTS,
    router({
      '/healthz': { method: 'GET', handle: (_req, res) => handleHealth(res) },
      '/readyz': { method: 'GET', handle: (_req, res) => handleReady(res, deps) },
      '/metrics': { method: 'GET', handle: (_req, res) => handleMetrics(res, deps) },
    }, deps),
  );
}
