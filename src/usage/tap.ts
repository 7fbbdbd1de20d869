import type { IncomingHttpHeaders } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import type { RequestRecord } from '../http/context.ts';
import { isEventStream, isJsonContentType } from '../http/headers.ts';
import type { BodyObserver } from '../http/relay.ts';
import { readUsage, readUsageText, requestModelOf } from './extract.ts';
import { usageFamilyFor } from './families.ts';
import { cleanModel } from './labels.ts';
import type { GenAiMetrics } from './metrics.ts';
import { JsonCollector, MAX_JSON_BYTES, createSseScanner, usagePattern } from './scan.ts';
import type { Operation, Usage, UsageFamily } from './types.ts';

/** A body observer that also says when its figures are recorded. */
export interface UsageTap extends BodyObserver {
  /** After end(): settles once the figures are recorded (src/usage/tap.ts, recordLater). */
  settled(): Promise<void> | undefined;
}

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

interface Keys {
  /** Quoted, as they appear in a body. */
  readonly needles: readonly string[];
  readonly pattern: RegExp;
}
const KEYS = new WeakMap<UsageFamily, Keys>();
/** The family's usage keys, and the pattern that finds them in a stream. */
function keysOf(family: UsageFamily): Keys {
  let keys = KEYS.get(family);
  if (!keys) {
    const names = [...new Set(family.sources.map((s) => s.usage))];
    KEYS.set(family, (keys = { needles: names.map((n) => JSON.stringify(n)), pattern: usagePattern(names) }));
  }
  return keys;
}

function header(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

function operationOf(family: UsageFamily, path: string): Operation | undefined {
  for (const o of family.operations) if (o.path.test(path)) return o.operation;
  return undefined;
}

type SseScanner = ReturnType<typeof createSseScanner>;

/**
 * Taps whose response is over, recorded together once the event loop turn
 * that ended them is done. Reading a body and recording it costs about a
 * microsecond when the code runs hot and several times that when it runs
 * once per request among everything else a request does (measured, see
 * docs/performance.md): in a batch it runs hot. The client already has its
 * response; only the figures and the log line wait.
 */
const ended: Tap[] = [];

function recordLater(tap: Tap): void {
  ended.push(tap);
  if (ended.length === 1) setImmediate(recordEnded);
}

function recordEnded(): void {
  const batch = ended.splice(0);
  for (const tap of batch) tap.record();
}

/**
 * One metered operation. A class rather than closures: a tap is built for
 * every governed LLM request, and its cost is part of the request's.
 */
class Tap implements UsageTap {
  readonly #family: UsageFamily;
  readonly #operation: Operation;
  readonly #provider: string;
  readonly #requestModel: string | undefined;
  readonly #metrics: GenAiMetrics;
  readonly #record: RequestRecord | undefined;
  readonly #started = performance.now();
  readonly #usage: Usage = {};
  #status = 0;
  #stream = false;
  #firstChunkAt = 0;
  #json: JsonCollector | undefined;
  #sse: SseScanner | undefined;
  #decoder: Transform | undefined;
  #settled: Promise<void> | undefined;
  #recorded: (() => void) | undefined;
  #error: Error | undefined;
  #endedAt = 0;

  constructor(family: UsageFamily, operation: Operation, provider: string, requestModel: string | undefined, metrics: GenAiMetrics, record: RequestRecord | undefined) {
    this.#family = family;
    this.#operation = operation;
    this.#provider = provider;
    this.#requestModel = requestModel;
    this.#metrics = metrics;
    this.#record = record;
  }

  head(statusCode: number, headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): void {
    this.#status = statusCode;
    const contentType = header(headers, 'content-type');
    this.#stream = isEventStream(contentType);
    const encoding = header(headers, 'content-encoding');
    const coding = encoding === undefined ? 'identity' : encoding.trim().toLowerCase();
    const makeDecoder = coding === 'identity' ? undefined : DECODERS[coding];
    if (coding !== 'identity' && !makeDecoder) return;
    const keys = keysOf(this.#family);
    if (this.#stream) {
      this.#sse = createSseScanner(keys.pattern, (data) => this.#parseEvent(data));
    } else if (isJsonContentType(contentType)) {
      if (!makeDecoder && Number(header(headers, 'content-length') ?? 0) > MAX_JSON_BYTES) return;
      this.#json = new JsonCollector(keys.needles);
    } else {
      return;
    }
    if (makeDecoder) this.#decodeFirst(makeDecoder());
  }

  chunk(chunk: Buffer): void {
    if (!this.#firstChunkAt) this.#firstChunkAt = performance.now();
    if (this.#decoder) {
      if (!this.#decoder.destroyed) this.#decoder.write(chunk);
      return;
    }
    this.#feed(chunk);
  }

  end(error?: Error): void {
    this.#endedAt = performance.now();
    this.#error = error;
    const decoder = this.#decoder;
    if (!decoder) {
      this.#settled = new Promise((resolve) => {
        this.#recorded = resolve;
      });
      recordLater(this);
      return;
    }
    if (!decoder.destroyed) decoder.end();
    this.#settled = this.#settled!.then(() => this.#finishSafely());
  }

  settled(): Promise<void> | undefined {
    return this.#settled;
  }

  /** Called by recordEnded, once; never throws, so the others in the batch still record. */
  record(): void {
    this.#finishSafely();
    this.#recorded!();
  }

  #finishSafely(): void {
    try {
      this.#finish();
    } catch {
      // Metering never breaks a request: a body it trips over loses its own figures.
    }
  }

  #feed(chunk: Buffer): void {
    try {
      if (this.#json) this.#json.push(chunk);
      else this.#sse?.push(chunk);
    } catch {
      // Metering never breaks a relay: a body it trips over reports duration only.
      this.#json = this.#sse = undefined;
    }
  }

  /** A compressed body: the relayed bytes go through a side decoder, its output is what is read. */
  #decodeFirst(d: Transform): void {
    this.#decoder = d;
    d.on('data', (out: Buffer) => {
      this.#feed(out);
      // A JSON body past the bound is not worth decoding further.
      if (this.#json?.skipped) d.destroy();
    });
    this.#settled = new Promise((resolve) => {
      d.once('end', resolve).once('close', resolve).once('error', () => {
        // A body that does not decode reports nothing.
        this.#json = this.#sse = undefined;
        resolve();
      });
    });
  }

  #parseEvent(data: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(data);
    } catch {
      return;
    }
    readUsage(this.#family, doc, this.#usage);
  }

  #finish(): void {
    const usage = this.#usage;
    const error = this.#error;
    if (this.#json) {
      const text = this.#json.body();
      this.#json = undefined;
      if (text !== undefined) readUsageText(this.#family, text, usage);
    }
    this.#sse?.end();
    const metrics = this.#metrics;
    const series = metrics.modelSeries(this.#operation, this.#provider, metrics.requestModel(this.#requestModel), metrics.responseModel(usage.responseModel));
    const status = this.#status;
    const errorType = status >= 400 ? String(status)
      : error ? ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? 'client_aborted' : 'response_incomplete')
      : '';
    series.duration(errorType).observe((this.#endedAt - this.#started) / 1000);
    if (this.#stream && this.#firstChunkAt && status < 400) series.timeToFirstChunk().observe((this.#firstChunkAt - this.#started) / 1000);
    if (usage.input !== undefined) series.tokens('input').observe(usage.input);
    if (usage.output !== undefined) series.tokens('output').observe(usage.output);
    const record = this.#record;
    if (record) {
      record.model = cleanModel(this.#requestModel ?? usage.responseModel) || undefined;
      record.inputTokens = usage.input;
      record.outputTokens = usage.output;
    }
  }
}

/**
 * Meters one LLM operation, or returns undefined when the request is not one
 * the provider's family meters (see src/usage/<family>.ts). Created just
 * before the request goes upstream: durations start there. It reads a copy
 * of what the relay already sent: the client's bytes are never held back,
 * and a body it cannot read (too large, unknown encoding, not JSON or SSE,
 * malformed) records duration only.
 */
export function openUsageTap(options: {
  provider: string;
  method: string | undefined;
  path: string;
  /** The JSON body's `model`, as the policy chain read it. */
  bodyModel: string | undefined;
  metrics: GenAiMetrics;
  record?: RequestRecord | undefined;
}): UsageTap | undefined {
  if (options.method !== 'POST') return undefined;
  const family = usageFamilyFor(options.provider);
  const operation = operationOf(family, options.path);
  if (!operation) return undefined;
  const requestModel = requestModelOf(family, options.path, options.bodyModel);
  return new Tap(family, operation, options.provider, requestModel, options.metrics, options.record);
}
