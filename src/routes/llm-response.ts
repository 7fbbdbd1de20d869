import type { Context } from 'hono';
import type { ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Dispatcher } from 'undici';
import type { ProxyEnv, RequestRecord } from '../context.ts';
import { SidecarError, upstreamError } from '../errors.ts';
import { isEventStream, isJsonContentType, relayResponseHeaders } from '../headers.ts';
import type { BudgetShare } from '../memory/budget.ts';
import type { Metrics } from '../metrics.ts';
import { denialBody, type ErrorStyle } from '../providers.ts';
import type { BodyObserver } from '../relay.ts';
import { createResponseGateTransform, governJsonResponse, type GateSummary, type ResponseRules } from '../response/index.ts';
import type { Hop } from './hop.ts';
import { RESPONSE_ALREADY_SENT, replyError, replySidecarError } from './respond.ts';

/** The largest JSON response body (as received, and decoded) the response rules read; a larger one is refused, never passed ungoverned. */
export const MAX_GOVERNED_RESPONSE_BYTES = 8 << 20;

export interface ResponseGovernance {
  readonly provider: string;
  readonly style: ErrorStyle;
  readonly rules: ResponseRules;
  readonly metrics: Metrics;
  /** The request's memory share: a JSON response's bytes are taken into it while it is judged. */
  readonly share: BudgetShare;
  readonly tap: BodyObserver | undefined;
  /** Aborts the upstream request (used once the client's answer is over, after a stream was ended early). */
  readonly abortUpstream: () => void;
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const brotli = promisify(zlib.brotliDecompress);
const zstd = promisify(zlib.zstdDecompress);

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The response's content coding, lower-cased ('identity' when none). */
function encodingOf(headers: Dispatcher.ResponseData['headers']): string {
  const value = headers['content-encoding'];
  const text = (Array.isArray(value) ? value.join(',') : value ?? '').trim().toLowerCase();
  return text === '' ? 'identity' : text;
}

/** A coding named in an error's detail only when it looks like one (it comes from the upstream). */
function safeCoding(coding: string): string | undefined {
  return /^[a-z0-9_, -]{1,40}$/.test(coding) ? coding : undefined;
}

class TooLarge extends Error {}

async function decode(body: Buffer, coding: string): Promise<Buffer | 'unsupported'> {
  const options = { maxOutputLength: MAX_GOVERNED_RESPONSE_BYTES };
  try {
    switch (coding) {
      case 'identity':
        return body;
      case 'gzip':
      case 'x-gzip':
        return await gunzip(body, options);
      case 'deflate':
        // HTTP's deflate is zlib-wrapped; some servers send it raw.
        return await inflate(body, options).catch(() => inflateRaw(body, options));
      case 'br':
        return await brotli(body, options);
      case 'zstd':
        return await zstd(body, options);
      default:
        return 'unsupported';
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) throw new TooLarge();
    throw err;
  }
}

/** Reads a response body whole, up to `max` bytes, taking each chunk into the share. */
async function readBounded(body: Dispatcher.ResponseData['body'], max: number, share: BudgetShare): Promise<Buffer | 'too_large' | 'budget'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return 'too_large';
    if (!share.take(chunk.length)) return 'budget';
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

function noteDenial(record: RequestRecord | undefined, policyId: string, reason: string): void {
  if (!record) return;
  record.decision = 'deny';
  record.policyId = policyId || undefined;
  record.source = 'local';
  record.reason = reason || undefined;
}

function send(res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: Buffer): Promise<void> {
  return new Promise((resolve) => {
    res.once('close', resolve);
    res.writeHead(status, headers);
    res.end(body);
  });
}

/**
 * Relays an upstream answer through the policy's response rules (issue 22).
 * Only a 2xx answer carries a model response the SDKs read, so other
 * statuses are relayed as before. An event stream passes through the
 * response gate (src/response/gate.ts); any other body is read whole (up to
 * MAX_GOVERNED_RESPONSE_BYTES), decoded, and judged by governJsonResponse:
 * allow forwards the original bytes, modify the rewritten body, deny answers
 * the request side's provider-shaped 403. What cannot be read is refused
 * with a `response_*` code, never passed on ungoverned.
 */
export async function relayGoverned(c: Context<ProxyEnv>, hop: Hop, response: Dispatcher.ResponseData, g: ResponseGovernance): Promise<Response> {
  if (response.statusCode < 200 || response.statusCode > 299) return hop.relay(response, undefined, g.tap);
  const res = c.env!.outgoing!;
  const record = c.env?.record;
  const coding = encodingOf(response.headers);

  if (isEventStream(response.headers['content-type'])) {
    if (coding !== 'identity') {
      response.body.destroy();
      return replySidecarError(c, new SidecarError('response_encoding_unsupported', safeCoding(coding)), g.style);
    }
    const onEnd = (summary: GateSummary): void => {
      if (summary.outcome !== 'deny' && summary.outcome !== 'error') return;
      if (summary.outcome === 'deny') noteDenial(record, summary.policyId, summary.reason);
      if (record) record.code = summary.outcome === 'deny' ? 'policy_denied' : summary.code;
      // The client's answer ends with the error event; the upstream is
      // cancelled only once it is over, so the abort cannot cut it short.
      if (res.closed) g.abortUpstream();
      else res.once('close', g.abortUpstream);
    };
    return hop.relay(response, () => createResponseGateTransform({ provider: g.provider, rules: g.rules, onEnd }), g.tap);
  }

  let raw: Buffer | 'too_large' | 'budget';
  try {
    raw = await readBounded(response.body, MAX_GOVERNED_RESPONSE_BYTES, g.share);
  } catch (err) {
    if (hop.signal.aborted) return hop.abandoned();
    const error = upstreamError(err);
    g.metrics.upstreamErrors.inc({ route: 'llm', code: error.code });
    return replySidecarError(c, error, g.style);
  }
  if (raw === 'too_large' || raw === 'budget') {
    response.body.destroy();
    return replySidecarError(c, new SidecarError(raw === 'budget' ? 'body_budget_exhausted' : 'response_too_large'), g.style);
  }
  // The usage meter sees what it saw before: the upstream's head and bytes.
  g.tap?.head(response.statusCode, response.headers);
  g.tap?.chunk(raw);
  g.tap?.end();

  const headers = relayResponseHeaders(response.headers);
  const forward = async (body: Buffer, rewritten: boolean): Promise<Response> => {
    if (rewritten) delete headers['content-encoding'];
    // An empty body (HEAD, 204) keeps the upstream's headers as they were.
    if (body.length > 0) headers['content-length'] = String(body.length);
    if (record) record.bytesOut = body.length;
    await send(res, response.statusCode, headers, body);
    return RESPONSE_ALREADY_SENT;
  };
  if (raw.length === 0) return forward(raw, false);

  let decoded: Buffer | 'unsupported';
  try {
    decoded = await decode(raw, coding);
  } catch (err) {
    const code = err instanceof TooLarge ? 'response_too_large' : 'response_unreadable';
    return replySidecarError(c, new SidecarError(code), g.style);
  }
  if (decoded === 'unsupported') return replySidecarError(c, new SidecarError('response_encoding_unsupported', safeCoding(coding)), g.style);
  if (decoded !== raw && !g.share.take(decoded.length)) return replySidecarError(c, new SidecarError('body_budget_exhausted'), g.style);

  const verdict = governJsonResponse(g.provider, decoded, g.rules);
  switch (verdict.action) {
    case 'allow':
      return forward(raw, false);
    case 'modify':
      return forward(verdict.body, true);
    case 'deny':
      noteDenial(record, verdict.policyId, verdict.reason);
      return replyError(c, denialBody(verdict.policyId, verdict.reason || 'response denied'), g.style);
    case 'error': {
      // A body that is not JSON and not declared as JSON (audio, an image, text) holds no tool call any client reads.
      const type = headerValue(response.headers['content-type']);
      if (verdict.code === 'response_unreadable' && type !== undefined && !isJsonContentType(type)) return forward(raw, false);
      return replySidecarError(c, new SidecarError(verdict.code), g.style);
    }
  }
}
