/**
 * Entry point of `firstops-sidecar injector`: the Kubernetes mutating
 * admission webhook that adds the FirstOps sidecar to opted-in pods.
 * Environment variables are listed in ./config.ts (INJECTOR_ENV) and in the
 * chart README.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { loadInjectorConfig } from './config.ts';
import { countDroppedLines } from '../metrics.ts';
import { createInjectorMetrics } from './metrics.ts';
import { createMetricsServer, createWebhookServer } from './server.ts';
import { loadTls, watchTls } from './tls.ts';

export { INJECTOR_ENV, loadInjectorConfig } from './config.ts';
export type { InjectorConfig } from './config.ts';
export { InjectorError } from './errors.ts';
export type { InjectorErrorCode } from './errors.ts';

export interface StartInjectorOptions {
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Where the logger's lines go (main.ts's LineSink): its dropped lines are counted in /metrics. */
  logSink?: { readonly dropped: number };
}

export interface RunningInjector {
  /**
   * Turns /healthz to 503 and keeps serving for FIRSTOPS_INJECTOR_SHUTDOWN_DELAY_MS
   * (the API server keeps routing to a terminating pod until the endpoints
   * update), then stops accepting connections and lets in-flight reviews
   * finish (bounded by FIRSTOPS_INJECTOR_DRAIN_TIMEOUT_MS).
   */
  close(): Promise<void>;
  port: number;
  metricsPort?: number;
}

function listen(server: HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function shutdown(server: HttpServer, drainTimeoutMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Validates the environment (throws InjectorError INJECTOR_CONFIG_INVALID or
 * INJECTOR_TLS_INVALID), then serves the webhook until close().
 */
export async function startInjector(opts: StartInjectorOptions): Promise<RunningInjector> {
  const config = loadInjectorConfig(opts.env);
  // The caller binds its own fields (main.ts adds component=injector).
  const logger = opts.logger;
  const files = { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile };
  const tls = loadTls(files);
  const metrics = createInjectorMetrics();
  if (opts.logSink) countDroppedLines(metrics.logLinesDropped, opts.logSink);
  metrics.certExpiry.set(tls.notAfter.getTime() / 1000);

  let serving = true;
  const deps = { config, logger, metrics, isServing: () => serving };
  const webhook = createWebhookServer(deps, tls);
  const plain = config.metricsPort === undefined ? undefined : createMetricsServer(deps);

  let port: number;
  let metricsPort: number | undefined;
  try {
    port = await listen(webhook, config.port, config.host);
    if (plain !== undefined && config.metricsPort !== undefined) {
      metricsPort = await listen(plain, config.metricsPort, config.host);
    }
  } catch (err) {
    await Promise.all([shutdown(webhook, 0), ...(plain ? [shutdown(plain, 0)] : [])]);
    throw err;
  }

  const watcher = config.tlsReloadIntervalMs > 0
    ? watchTls({
        files,
        intervalMs: config.tlsReloadIntervalMs,
        current: tls,
        onChange: (material) => {
          webhook.setSecureContext({ cert: material.cert, key: material.key });
          metrics.certExpiry.set(material.notAfter.getTime() / 1000);
          metrics.tlsReloads.inc({ result: 'success' });
          logger.info({ fingerprint: material.fingerprint, notAfter: material.notAfter.toISOString() }, 'webhook certificate reloaded');
        },
        onError: (error) => {
          metrics.tlsReloads.inc({ result: 'failure' });
          logger.warn({ code: error.code, detail: error.message }, 'webhook certificate not reloaded; keeping the previous one');
        },
      })
    : undefined;

  logger.info({
    port, metricsPort, host: config.host, native: config.sidecar.native, image: config.sidecar.image,
    missingSecret: config.missingSecretAction, fingerprint: tls.fingerprint, notAfter: tls.notAfter.toISOString(),
  }, 'injector listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      serving = false;
      if (config.shutdownDelayMs > 0) {
        logger.info({ delayMs: config.shutdownDelayMs }, 'injector shutting down: /healthz answers 503, still serving until endpoints drop this pod');
        await new Promise<void>((resolve) => setTimeout(resolve, config.shutdownDelayMs));
      }
      watcher?.stop();
      await Promise.all([shutdown(webhook, config.drainTimeoutMs), ...(plain ? [shutdown(plain, config.drainTimeoutMs)] : [])]);
      logger.info('injector stopped');
    })();
    return closing;
  };

  return metricsPort === undefined ? { close, port } : { close, port, metricsPort };
}
