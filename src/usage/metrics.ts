import type { Registry } from 'prom-client';
import { LeanHistogram, type Series } from './histogram.ts';
import { createLabelBound } from './labels.ts';

/** The convention's buckets for `gen_ai.client.token.usage`. */
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** The convention's buckets for `gen_ai.client.operation.duration` and `.time_to_first_chunk`. */
export const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/** The labels every gen_ai metric has, in this order, before its own. */
export const MODEL_LABELS = ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model', 'gen_ai_response_model'] as const;

/**
 * The OpenTelemetry GenAI client metrics under the names Prometheus gives
 * them (dots to underscores, unit `s` as `_seconds`, the `{token}`
 * annotation dropped). Label values are positional: MODEL_LABELS, then the
 * metric's own label.
 */
export interface GenAiMetrics {
  /** ...MODEL_LABELS, gen_ai_token_type */
  readonly tokenUsage: LeanHistogram;
  /** ...MODEL_LABELS, error_type ('' when it succeeded) */
  readonly operationDuration: LeanHistogram;
  /** ...MODEL_LABELS */
  readonly timeToFirstChunk: LeanHistogram;
  /** Bounds `gen_ai_request_model` values (100 distinct, then `other`). */
  readonly requestModel: (model: string | undefined) => string;
  /** Bounds `gen_ai_response_model` values the same way. */
  readonly responseModel: (model: string | undefined) => string;
  /** The series of one label set (values already bounded), looked up once per operation. */
  readonly modelSeries: (operation: string, provider: string, requestModel: string, responseModel: string) => ModelSeries;
}

/** Every gen_ai series of one (operation, provider, request model, response model). */
export interface ModelSeries {
  /** `errorType` is '' when the operation succeeded. */
  duration(errorType: string): Series;
  timeToFirstChunk(): Series;
  tokens(type: 'input' | 'output'): Series;
}

/**
 * ModelSeries handles, one per label set, each taking its Series from the
 * histograms on first use. As many as the label sets the bounds allow; a
 * histogram reset (epoch) drops them all.
 */
function createModelSeriesCache(m: Pick<GenAiMetrics, 'tokenUsage' | 'operationDuration' | 'timeToFirstChunk'>) {
  const epochOf = (): number => m.tokenUsage.epoch + m.operationDuration.epoch + m.timeToFirstChunk.epoch;
  let epoch = epochOf();
  /** operation → provider → request model → response model: lookups of strings the caller already has, no key built. */
  type Level<T> = Map<string, T>;
  let cache: Level<Level<Level<Level<ModelSeries>>>> = new Map();
  return function modelSeries(operation: string, provider: string, requestModel: string, responseModel: string): ModelSeries {
    if (epochOf() !== epoch) {
      epoch = epochOf();
      cache = new Map();
    }
    let byProvider = cache.get(operation);
    if (!byProvider) cache.set(operation, (byProvider = new Map()));
    let byRequest = byProvider.get(provider);
    if (!byRequest) byProvider.set(provider, (byRequest = new Map()));
    let byResponse = byRequest.get(requestModel);
    if (!byResponse) byRequest.set(requestModel, (byResponse = new Map()));
    let group = byResponse.get(responseModel);
    if (group) return group;
    const labels = [operation, provider, requestModel, responseModel];
    let ok: Series | undefined;
    let input: Series | undefined;
    let output: Series | undefined;
    let ttfc: Series | undefined;
    group = {
      duration: (errorType) => errorType ? m.operationDuration.series([...labels, errorType]) : (ok ??= m.operationDuration.series([...labels, ''])),
      timeToFirstChunk: () => (ttfc ??= m.timeToFirstChunk.series(labels)),
      tokens: (type) => type === 'input' ? (input ??= m.tokenUsage.series([...labels, 'input'])) : (output ??= m.tokenUsage.series([...labels, 'output'])),
    };
    byResponse.set(responseModel, group);
    return group;
  };
}

const BY_REGISTRY = new WeakMap<Registry, GenAiMetrics>();

/** The GenAI families of a registry, created on first use: one set per registry however many sidecars share it. */
export function genAiMetricsFor(registry: Registry): GenAiMetrics {
  let m = BY_REGISTRY.get(registry);
  if (!m) BY_REGISTRY.set(registry, (m = createGenAiMetrics([registry])));
  return m;
}

export function createGenAiMetrics(registers: Registry[]): GenAiMetrics {
  const histograms = {
    tokenUsage: new LeanHistogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens per LLM operation as the provider reported them, by token type (input, output); OpenTelemetry gen_ai.client.token.usage.',
      labelNames: [...MODEL_LABELS, 'gen_ai_token_type'],
      buckets: TOKEN_BUCKETS,
      registers,
    }),
    operationDuration: new LeanHistogram({
      name: 'gen_ai_client_operation_duration_seconds',
      help: 'Time from sending an LLM request upstream to the end of its response; error_type is set when it failed. OpenTelemetry gen_ai.client.operation.duration.',
      labelNames: [...MODEL_LABELS, 'error_type'],
      buckets: DURATION_BUCKETS,
      registers,
    }),
    timeToFirstChunk: new LeanHistogram({
      name: 'gen_ai_client_operation_time_to_first_chunk_seconds',
      help: 'Time from sending a streaming LLM request upstream to the first chunk of its response; OpenTelemetry gen_ai.client.operation.time_to_first_chunk.',
      labelNames: MODEL_LABELS,
      buckets: DURATION_BUCKETS,
      registers,
    }),
  };
  return {
    ...histograms,
    requestModel: createLabelBound(),
    responseModel: createLabelBound(),
    modelSeries: createModelSeriesCache(histograms),
  };
}
