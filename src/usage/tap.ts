import type { IncomingHttpHeaders } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import type { RequestRecord } from '../context.ts';
import { isEventStream, isJsonContentType } from '../headers.ts';
import type { BodyObserver } from '../relay.ts';
import { readUsage, readUsageText, requestModelOf } from './extract.ts';
import { usageFamilyFor } from './families.ts';
import { cleanModel } from './labels.ts';
import type { GenAiMetrics } from './metrics.ts';
import { MAX_JSON_BYTES, createJsonCollector, createSseScanner, usagePattern } from './scan.ts';
import type { Usage, UsageFamily } from './types.ts';

/** A body observer that also says when its figures are recorded (after a compressed body's side decoder drains). */
export interface UsageTap extends BodyObserver {
  settled(): Promise<void>;
}

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

const PATTERNS = new WeakMap<UsageFamily, RegExp>();
function patternOf(family: UsageFamily): RegExp {
  let pattern = PATTERNS.get(family);
  if (!pattern) PATTERNS.set(family, (pattern = usagePattern(family.sources.map((s) => s.usage))));
  return pattern;
}

function header(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
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
  const operation = family.operations.find((o) => o.path.test(options.path))?.operation;
  if (!operation) return undefined;
  const { metrics, record, provider } = options;
  const requestModel = requestModelOf(family, options.path, options.bodyModel);
  const pattern = patternOf(family);
  const started = performance.now();
  const usage: Usage = {};

  let status = 0;
  let stream = false;
  let firstChunkAt = 0;
  let feed: ((chunk: Buffer) => void) | undefined;
  let decoder: Transform | undefined;
  let json: ReturnType<typeof createJsonCollector> | undefined;
  let sse: ReturnType<typeof createSseScanner> | undefined;
  let settled: Promise<void> = Promise.resolve();

  const parseInto = (text: string): void => {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return;
    }
    readUsage(family, doc, usage);
  };

  const finish = (error: Error | undefined, endedAt: number): void => {
    if (json) {
      const text = json.body();
      if (text !== undefined) readUsageText(family, text, usage);
    }
    sse?.end();
    const req = metrics.requestModel(requestModel);
    const res = metrics.responseModel(usage.responseModel);
    const errorType = status >= 400 ? String(status)
      : error ? ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' ? 'client_aborted' : 'response_incomplete')
      : '';
    metrics.operationDuration.observe([operation, provider, req, res, errorType], (endedAt - started) / 1000);
    if (stream && firstChunkAt && status < 400) metrics.timeToFirstChunk.observe([operation, provider, req, res], (firstChunkAt - started) / 1000);
    if (usage.input !== undefined) metrics.tokenUsage.observe([operation, provider, req, res, 'input'], usage.input);
    if (usage.output !== undefined) metrics.tokenUsage.observe([operation, provider, req, res, 'output'], usage.output);
    if (record) {
      record.model = cleanModel(requestModel ?? usage.responseModel) || undefined;
      record.inputTokens = usage.input;
      record.outputTokens = usage.output;
    }
  };

  return {
    head(statusCode, headers) {
      status = statusCode;
      const contentType = header(headers, 'content-type');
      stream = isEventStream(contentType);
      const encoding = (header(headers, 'content-encoding') ?? 'identity').trim().toLowerCase();
      const makeDecoder = encoding === 'identity' ? undefined : DECODERS[encoding];
      if (encoding !== 'identity' && !makeDecoder) return;
      if (stream) {
        sse = createSseScanner(pattern, parseInto);
        feed = sse.push;
      } else if (isJsonContentType(contentType)) {
        const length = Number(header(headers, 'content-length') ?? 0);
        if (!makeDecoder && length > MAX_JSON_BYTES) return;
        json = createJsonCollector(pattern);
        feed = json.push;
      } else {
        return;
      }
      if (makeDecoder) {
        const inner = feed;
        const d = makeDecoder();
        decoder = d;
        d.on('data', (out: Buffer) => {
          inner(out);
          // A JSON body past the bound is not worth decoding further.
          if (json?.skipped) d.destroy();
        });
        settled = new Promise((resolve) => {
          d.once('end', resolve).once('close', resolve).once('error', () => {
            // A body that does not decode reports nothing.
            json = undefined;
            sse = undefined;
            resolve();
          });
        });
        feed = (chunk) => {
          if (!d.destroyed) d.write(chunk);
        };
      }
    },
    chunk(chunk) {
      if (!firstChunkAt) firstChunkAt = performance.now();
      try {
        feed?.(chunk);
      } catch {
        // Metering never breaks a relay: a body it trips over reports duration only.
        feed = undefined;
        json = undefined;
        sse = undefined;
      }
    },
    end(error) {
      const endedAt = performance.now();
      if (!decoder) {
        finish(error, endedAt);
        return;
      }
      if (!decoder.destroyed) decoder.end();
      settled = settled.then(() => finish(error, endedAt));
    },
    settled: () => settled,
  };
}
