import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Route = 'llm' | 'mcp' | 'other';
export type DecisionSource = 'local' | 'remote';
/** `fail_open` is its own outcome: a pass that no policy approved. */
export type DecisionOutcome = 'allow' | 'deny' | 'modify' | 'ask' | 'fail_open' | 'fail_closed' | 'skipped';
/** What was judged: the request the agent sent, or the answer it gets (issue 22). */
export type DecisionPhase = 'request' | 'response';

/** The sidecar's version, as build_info and the debug listener report it; kept in step with package.json by a test. */
export const VERSION = '0.1.0';

const KNOWN_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);
/**
 * prom-client's default collectors include three gauges named like counters
 * (`_total`), which promtool rejects. Each has a per-type twin that sums to
 * it: `sum(nodejs_active_handles)` and so on.
 */
const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Keeps the method label bounded whatever a client sends. */
export function methodLabel(method: string | undefined): string {
  return method && KNOWN_METHODS.has(method) ? method : 'other';
}

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'provider' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'route' | 'provider'>;
  readonly inflight: Gauge<'route'>;
  readonly decisions: Counter<'source' | 'outcome' | 'phase'>;
  /** How long a streamed tool call (or governed text part) was held back before its release or drop. */
  readonly responseHold: Histogram<'kind' | 'outcome'>;
  readonly policyDuration: Histogram<'source'>;
  readonly upstreamErrors: Counter<'route' | 'code'>;
  readonly streamsActive: Gauge<'route'>;
  readonly streamDuration: Histogram<'route'>;
  readonly dpopNonceRetries: Counter<string>;
  readonly identityLoaded: Gauge<string>;
  readonly identityReloads: Counter<'result'>;
  readonly policyReloads: Counter<'result'>;
  readonly draining: Gauge<string>;
  /** 1 while /readyz answers 200. */
  readonly ready: Gauge<string>;
  /** The in-flight body memory budget (src/memory/budget.ts): its size and what is in use. */
  readonly budgetBytes: Gauge<'state'>;
  readonly budgetRefusals: Counter<'route'>;
}

/** One dedicated registry per sidecar instance (tests build many). */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  }
  const registers = [registry];

  new Gauge({
    name: 'firstops_build_info',
    help: 'Build information; the value is always 1.',
    labelNames: ['version', 'node_version'],
    registers,
  }).set({ version: VERSION, node_version: process.version }, 1);

  return {
    registry,
    requests: new Counter({
      name: 'firstops_requests_total',
      help: 'Proxied requests by route, provider, method and final status.',
      labelNames: ['route', 'provider', 'method', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'firstops_request_duration_seconds',
      help: 'Time from request start to the end of the response, streams included.',
      labelNames: ['route', 'provider'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    inflight: new Gauge({
      name: 'firstops_inflight_requests',
      help: 'Requests being served right now.',
      labelNames: ['route'],
      registers,
    }),
    decisions: new Counter({
      name: 'firstops_policy_decisions_total',
      help: 'Policy outcomes by source and phase (request: what the agent sent; response: what the model answered); fail_open counts passes no policy approved, fail_closed refusals for the same cause.',
      labelNames: ['source', 'outcome', 'phase'],
      registers,
    }),
    responseHold: new Histogram({
      name: 'firstops_response_hold_seconds',
      help: 'Time a streamed tool call (kind="tool_call") or governed text part (kind="text") was held back by the response rules, from its first event to its release (outcome allow, modify) or drop (deny).',
      labelNames: ['kind', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    policyDuration: new Histogram({
      name: 'firstops_policy_evaluation_duration_seconds',
      help: 'Time spent evaluating policy, by source.',
      labelNames: ['source'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'firstops_upstream_errors_total',
      help: 'Failed hops to an upstream or the gateway, by error code.',
      labelNames: ['route', 'code'],
      registers,
    }),
    streamsActive: new Gauge({
      name: 'firstops_streams_active',
      help: 'Event-stream responses being relayed right now.',
      labelNames: ['route'],
      registers,
    }),
    streamDuration: new Histogram({
      name: 'firstops_stream_duration_seconds',
      help: 'Lifetime of relayed event-stream responses.',
      labelNames: ['route'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    }),
    dpopNonceRetries: new Counter({
      name: 'firstops_dpop_nonce_retries_total',
      help: 'Requests to the gateway retried with a server-provided DPoP nonce.',
      registers,
    }),
    identityLoaded: new Gauge({
      name: 'firstops_identity_loaded',
      help: '1 when an agent identity is loaded, else 0.',
      registers,
    }),
    identityReloads: new Counter({
      name: 'firstops_identity_reloads_total',
      help: 'Identity changes seen on disk, by result (success, failure).',
      labelNames: ['result'],
      registers,
    }),
    policyReloads: new Counter({
      name: 'firstops_policy_reloads_total',
      help: 'Policy file changes seen on disk, by result (success, failure).',
      labelNames: ['result'],
      registers,
    }),
    draining: new Gauge({
      name: 'firstops_draining',
      help: '1 while the sidecar drains after SIGTERM.',
      registers,
    }),
    ready: new Gauge({
      name: 'firstops_ready',
      help: '1 while the sidecar is ready (/readyz 200): the proxy listens and it is not draining.',
      registers,
    }),
    budgetBytes: new Gauge({
      name: 'firstops_memory_budget_bytes',
      help: 'The in-flight request body memory budget (state="limit") and the bytes of it in use (state="in_use").',
      labelNames: ['state'],
      registers,
    }),
    budgetRefusals: new Counter({
      name: 'firstops_memory_budget_refusals_total',
      help: 'Requests refused with 503 body_budget_exhausted because their body did not fit the memory budget.',
      labelNames: ['route'],
      registers,
    }),
  };
}
