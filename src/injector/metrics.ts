/**
 * The injector's Prometheus metrics, on a dedicated Registry (never the
 * prom-client global one) so they cannot collide with the proxy's metrics and
 * tests can create as many injectors as they like in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface InjectorMetrics {
  registry: Registry;
  /** Pods that received the sidecar. */
  injections: Counter<'namespace'>;
  /** Pods that asked for the sidecar and did not get it, and unusable requests; by error code. */
  failures: Counter<'namespace' | 'code'>;
  /** Pods left alone on purpose (not opted in, already injected, excluded). */
  skips: Counter<'namespace' | 'reason'>;
  /** Time to answer one /mutate call. */
  duration: Histogram<'outcome'>;
  /** notAfter of the serving certificate currently in use. */
  certExpiry: Gauge;
  tlsReloads: Counter<'result'>;
  /** Log lines stdout did not take in time (main.ts's LineSink), read from the sink at scrape time. */
  logLinesDropped: Counter;
}

export function createInjectorMetrics(): InjectorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'firstops_injector_' });
  return {
    registry,
    injections: new Counter({
      name: 'firstops_injector_injections_total',
      help: 'Pods mutated to carry the FirstOps sidecar, by namespace.',
      labelNames: ['namespace'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'firstops_injector_failures_total',
      help: 'Admission requests that asked for injection and did not get it (rejected or warned) or could not be read, by namespace and error code.',
      labelNames: ['namespace', 'code'],
      registers: [registry],
    }),
    skips: new Counter({
      name: 'firstops_injector_skips_total',
      help: 'Pods admitted unchanged on purpose, by namespace and reason.',
      labelNames: ['namespace', 'reason'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'firstops_injector_request_duration_seconds',
      help: 'Time to answer one AdmissionReview, by outcome (injected, skipped, warned, rejected, error).',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    certExpiry: new Gauge({
      name: 'firstops_injector_tls_cert_not_after_seconds',
      help: 'Expiry (Unix seconds) of the webhook serving certificate in use.',
      registers: [registry],
    }),
    tlsReloads: new Counter({
      name: 'firstops_injector_tls_reloads_total',
      help: 'Attempts to load a changed webhook certificate, by result (success, failure).',
      labelNames: ['result'],
      registers: [registry],
    }),
    logLinesDropped: new Counter({
      name: 'firstops_injector_log_lines_dropped_total',
      help: 'Log lines dropped because stdout did not take them (8 MiB of lines were already waiting, or stdout failed).',
      registers: [registry],
    }),
  };
}
