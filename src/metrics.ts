import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';

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
  /** Log lines stdout did not take in time (src/log.ts LineSink), read from the sink at scrape time. */
  readonly logLinesDropped: Counter;
  /** The series the proxy's hot path writes once or twice per request, by label values (see CounterSeries). */
  readonly lean: {
    readonly requests: SeriesTable<CounterSeries>;
    readonly requestDuration: SeriesTable<HistogramSeries>;
    readonly inflight: SeriesTable<GaugeSeries>;
    readonly decisions: SeriesTable<CounterSeries>;
    readonly policyDuration: SeriesTable<HistogramSeries>;
    readonly streamsActive: SeriesTable<GaugeSeries>;
    readonly streamDuration: SeriesTable<HistogramSeries>;
  };
}

/** prom-client's record of one series (what its registry formats): the fields a lean series adds to. */
interface SeriesRecord {
  value: number;
  sum: number;
  count: number;
  bucketValues: Record<number, number>;
  labels: Record<string, string | number>;
}
interface MetricInternals {
  hashMap: Record<string, SeriesRecord | undefined>;
  upperBounds?: readonly number[];
}
const internals = (metric: object): MetricInternals => metric as unknown as MetricInternals;

/** The key prom-client filed the series of `labels` under (looked up once per series, and again after a reset). */
function keyOf(metric: object, labels: Readonly<Record<string, string>>): string | undefined {
  const map = internals(metric).hashMap;
  const names = Object.keys(labels);
  search: for (const key in map) {
    const filed = map[key]!.labels;
    if (Object.keys(filed).length !== names.length) continue;
    for (const name of names) if (filed[name] !== labels[name]) continue search;
    return key;
  }
  return undefined;
}

/**
 * One label set of a prom-client metric, kept by the hot path (issue 21).
 * prom-client validates and hashes a label object on every call, and
 * startTimer adds hrtime pairs and an Object.assign: about 6 µs a request
 * over the handful of calls the proxy makes. A series adds to the record
 * prom-client filed its labels under, found by key, so /metrics formats it
 * exactly as prom-client's own calls would; the first call, and any after a
 * reset() or remove() dropped the record, goes through prom-client's API and
 * looks the key up again. Values are the caller's (finite numbers).
 */
export class CounterSeries {
  readonly #metric: Counter<string> | Gauge<string>;
  readonly #labels: Readonly<Record<string, string>>;
  #key: string | undefined;
  constructor(metric: Counter<string> | Gauge<string>, labels: Readonly<Record<string, string>>) {
    this.#metric = metric;
    this.#labels = labels;
  }

  inc(value = 1): void {
    const filed = this.#key === undefined ? undefined : internals(this.#metric).hashMap[this.#key];
    if (filed !== undefined) {
      filed.value += value;
      return;
    }
    this.#metric.inc(this.#labels as LabelValues<string>, value);
    this.#key = keyOf(this.#metric, this.#labels);
  }
}

/** A gauge's series: a counter's that may also go down. */
export class GaugeSeries extends CounterSeries {
  constructor(metric: Gauge<string>, labels: Readonly<Record<string, string>>) {
    super(metric, labels);
  }

  dec(value = 1): void {
    this.inc(-value);
  }
}

export class HistogramSeries {
  readonly #metric: Histogram<string>;
  readonly #labels: Readonly<Record<string, string>>;
  readonly #bounds: readonly number[];
  /** The bounds as the property names of prom-client's bucket record: a double's String() is slow enough to count. */
  readonly #bucketKeys: readonly string[];
  #key: string | undefined;
  constructor(metric: Histogram<string>, labels: Readonly<Record<string, string>>) {
    this.#metric = metric;
    this.#labels = labels;
    this.#bounds = internals(metric).upperBounds ?? [];
    this.#bucketKeys = this.#bounds.map(String);
  }

  /** Seconds, say; the same bucket prom-client would pick (the first bound not below the value). */
  observe(value: number): void {
    const filed = this.#key === undefined ? undefined : internals(this.#metric).hashMap[this.#key];
    if (filed !== undefined && Number.isFinite(value)) {
      filed.sum += value;
      filed.count += 1;
      const bounds = this.#bounds;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          (filed.bucketValues as unknown as Record<string, number>)[this.#bucketKeys[i]!]! += 1;
          break;
        }
      }
      return;
    }
    this.#metric.observe(this.#labels as LabelValues<string>, value);
    this.#key = keyOf(this.#metric, this.#labels);
  }
}

/**
 * Runs `read` whenever `metric` is collected (a scrape, a get()), after any
 * collect it already had: for a gauge that is cheaper to read at a scrape
 * than to set at every change.
 */
export function onCollect(metric: Gauge<string> | Counter<string>, read: () => void): void {
  const target = metric as unknown as { collect?: () => unknown };
  const before = target.collect;
  target.collect = before
    ? function (this: unknown) {
        const done = before.call(this);
        read();
        return done;
      }
    : read;
}

/** A counter that follows a log sink's count of dropped lines (src/log.ts LineSink), read at each scrape. */
export function countDroppedLines(counter: Counter, sink: { readonly dropped: number }): void {
  let counted = 0;
  onCollect(counter, () => {
    const now = sink.dropped;
    if (now > counted) counter.inc(now - counted);
    counted = now;
  });
}

/** A metric's series by label values (in its labelNames order), each made on first use and kept. */
export class SeriesTable<S> {
  readonly #names: readonly string[];
  readonly #make: (labels: Readonly<Record<string, string>>) => S;
  readonly #root = new Map<string, unknown>();
  constructor(names: readonly string[], make: (labels: Readonly<Record<string, string>>) => S) {
    if (names.length < 1 || names.length > 4) throw new RangeError('a series table has one to four labels');
    this.#names = names;
    this.#make = make;
  }

  at(a: string, b?: string, c?: string, d?: string): S {
    const depth = this.#names.length;
    let map = this.#root;
    if (depth > 1) map = SeriesTable.#step(map, a);
    if (depth > 2) map = SeriesTable.#step(map, b!);
    if (depth > 3) map = SeriesTable.#step(map, c!);
    const last = depth === 1 ? a : depth === 2 ? b! : depth === 3 ? c! : d!;
    let series = map.get(last) as S | undefined;
    if (series === undefined) {
      const values = [a, b, c, d];
      const labels: Record<string, string> = {};
      for (let i = 0; i < depth; i++) labels[this.#names[i]!] = values[i]!;
      map.set(last, (series = this.#make(labels)));
    }
    return series;
  }

  static #step(map: Map<string, unknown>, value: string): Map<string, unknown> {
    let next = map.get(value) as Map<string, unknown> | undefined;
    if (next === undefined) map.set(value, (next = new Map()));
    return next;
  }
}

const counterTable = (metric: Counter<string>): SeriesTable<CounterSeries> =>
  new SeriesTable(labelNamesOf(metric), (labels) => new CounterSeries(metric, labels));
const gaugeTable = (metric: Gauge<string>): SeriesTable<GaugeSeries> =>
  new SeriesTable(labelNamesOf(metric), (labels) => new GaugeSeries(metric, labels));
const histogramTable = (metric: Histogram<string>): SeriesTable<HistogramSeries> =>
  new SeriesTable(labelNamesOf(metric), (labels) => new HistogramSeries(metric, labels));
function labelNamesOf(metric: object): readonly string[] {
  return (metric as { labelNames: readonly string[] }).labelNames;
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

  const metrics = {
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
    logLinesDropped: new Counter({
      name: 'firstops_log_lines_dropped_total',
      help: 'Log lines dropped because stdout did not take them (8 MiB of lines were already waiting, or stdout failed).',
      registers,
    }),
  };
  return {
    ...metrics,
    lean: {
      requests: counterTable(metrics.requests),
      requestDuration: histogramTable(metrics.requestDuration),
      inflight: gaugeTable(metrics.inflight),
      decisions: counterTable(metrics.decisions),
      policyDuration: histogramTable(metrics.policyDuration),
      streamsActive: gaugeTable(metrics.streamsActive),
      streamDuration: histogramTable(metrics.streamDuration),
    },
  };
}
