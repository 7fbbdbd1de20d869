import type { ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Dispatcher } from 'undici';
import type { Exchange, RequestRecord } from '../http/context.ts';
import { SidecarError } from '../errors.ts';
import { upstreamError } from '../egress/failures.ts';
import { isEventStream, isJsonContentType, relayResponseHeaders } from '../http/headers.ts';
import type { BudgetShare } from '../memory/budget.ts';
import type { Metrics } from '../metrics.ts';
import { denialBody, type ErrorStyle } from '../http/providers.ts';
import { throughTransform, type BodyObserver } from '../http/relay.ts';
import { checkJsonBody, createResponseGateTransform, governJsonResponse, type GateSummary, type HeldReport, type ResponseRules, MAX_GOVERNED_RESPONSE_BYTES } from '../response/index.ts';
import type { Hop } from './hop.ts';
import type { ResponseRemote } from '../response/remote.ts';
import { SENT, replyError, replySidecarError, type Reply } from './respond.ts';

export interface ResponseGovernance {
  readonly provider: string;
  readonly style: ErrorStyle;
  readonly rules: ResponseRules;
  readonly metrics: Metrics;
  /** The request's memory share: a JSON response's bytes are taken into it while it is judged. */
  readonly share: BudgetShare;
  readonly tap: BodyObserver | undefined;
  /** FIRSTOPS_RESPONSE_REMOTE=on with an identity loaded: EvaluateHook judges the answer after the local rules. */
  readonly remote: ResponseRemote | undefined;
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

/** Drops an upstream body the sidecar will not relay; undici's abort error has nobody to reach. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.once('error', () => undefined);
  body.destroy();
}

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

/** The answer's verdict, for the request's log line and the debug history (the request's own stays as it was). */
function noteResponse(record: RequestRecord, decision: string, policyId: string, source: 'local' | 'remote', reason?: string): void {
  record.responseDecision = decision;
  record.responsePolicyId = policyId || undefined;
  record.responseSource = source;
  if (decision === 'deny') {
    record.code = 'policy_denied';
    record.reason = reason || undefined;
  }
}

/** Streaming decoders for the codings a JSON answer is read in, so a compressed stream is governed too. */
function streamDecoderFor(coding: string): Transform | undefined {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'zstd':
      return zlib.createZstdDecompress();
    default:
      return undefined;
  }
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
export async function relayGoverned(x: Exchange, hop: Hop, response: Dispatcher.ResponseData, g: ResponseGovernance): Promise<Reply> {
  if (response.statusCode < 200 || response.statusCode > 299) return hop.relay(response, undefined, g.tap);
  const { res, record } = x;
  const coding = encodingOf(response.headers);
  const local = g.rules.ruleCount > 0;
  const countLocal = (outcome: 'allow' | 'modify' | 'deny'): void => {
    if (local) g.metrics.lean.decisions.at('local', outcome, 'response').inc();
  };

  if (isEventStream(response.headers['content-type'])) {
    let stream = response;
    if (coding !== 'identity') {
      // Decoded as it arrives and relayed uncompressed: the gate reads events, not codings.
      const decoder = streamDecoderFor(coding);
      if (!decoder) {
        discard(response.body);
        return replySidecarError(x, new SidecarError('response_encoding_unsupported', safeCoding(coding)), g.style);
      }
      const { 'content-encoding': _coding, 'content-length': _length, ...headers } = response.headers;
      // Wired by hand (throughTransform), not stream.pipeline: no AbortController and DOMException per response.
      stream = { ...response, headers, body: throughTransform(response.body, decoder) as unknown as Dispatcher.ResponseData['body'] };
    }
    const onHeld = (report: HeldReport): void => g.metrics.responseHold.observe({ kind: report.kind, outcome: report.action }, report.ms / 1000);
    const onEnd = (summary: GateSummary): void => {
      if (summary.outcome === 'aborted') return;
      if (summary.outcome === 'error') {
        record.code = summary.code;
        noteResponse(record, 'error', '', summary.source);
      } else {
        // Remote verdicts are counted per evaluation (response-remote.ts); the local rules' per answer.
        if (summary.source === 'local') countLocal(summary.outcome);
        if (local || summary.source === 'remote' || summary.outcome !== 'allow') noteResponse(record, summary.outcome, summary.policyId, summary.source, summary.reason);
      }
      if (summary.outcome !== 'deny' && summary.outcome !== 'error') return;
      // The client's answer ends with the error event; the upstream is
      // cancelled only once it is over, so the abort cannot cut it short.
      if (res.closed) g.abortUpstream();
      else res.once('close', g.abortUpstream);
    };
    const gate = (): Transform => createResponseGateTransform({
      provider: g.provider, rules: g.rules, remote: g.remote?.callHook, onEnd, onHeld,
      reserve: (bytes) => g.share.take(bytes),
    });
    return hop.relay(stream, gate, g.tap);
  }

  let raw: Buffer | 'too_large' | 'budget';
  try {
    raw = await readBounded(response.body, MAX_GOVERNED_RESPONSE_BYTES, g.share);
  } catch (err) {
    if (hop.signal.aborted) return hop.abandoned();
    const error = upstreamError(err);
    g.metrics.upstreamErrors.inc({ route: 'llm', code: error.code });
    return replySidecarError(x, error, g.style);
  }
  if (raw === 'too_large' || raw === 'budget') {
    discard(response.body);
    return replySidecarError(x, new SidecarError(raw === 'budget' ? 'body_budget_exhausted' : 'response_too_large'), g.style);
  }
  // The usage meter sees what it saw before: the upstream's head and bytes.
  g.tap?.head(response.statusCode, response.headers);
  g.tap?.chunk(raw);
  g.tap?.end();

  const headers = relayResponseHeaders(response.headers);
  const forward = async (body: Buffer, rewritten: boolean): Promise<Reply> => {
    if (rewritten) delete headers['content-encoding'];
    // An empty body (HEAD, 204) keeps the upstream's headers as they were.
    if (body.length > 0) headers['content-length'] = String(body.length);
    record.bytesOut = body.length;
    await send(res, response.statusCode, headers, body);
    return SENT;
  };
  if (raw.length === 0) return forward(raw, false);

  let decoded: Buffer | 'unsupported';
  try {
    decoded = await decode(raw, coding);
  } catch (err) {
    const code = err instanceof TooLarge ? 'response_too_large' : 'response_unreadable';
    return replySidecarError(x, new SidecarError(code), g.style);
  }
  if (decoded === 'unsupported') return replySidecarError(x, new SidecarError('response_encoding_unsupported', safeCoding(coding)), g.style);
  if (decoded !== raw && !g.share.take(decoded.length)) return replySidecarError(x, new SidecarError('body_budget_exhausted'), g.style);

  // With no local rules the body is not read by them: the gateway still needs
  // it to be JSON. Either parse, and a rewrite, is charged to the request's share first.
  const reserve = (bytes: number): boolean => g.share.take(bytes);
  const checked = !local && g.remote ? checkJsonBody(decoded, reserve) : 'json';
  const verdict = checked !== 'json' ? { action: 'error' as const, code: checked } : governJsonResponse(g.provider, decoded, g.rules, reserve);
  if (verdict.action === 'error') {
    // A body that is not JSON and not declared as JSON (audio, an image, text) holds no tool call any client reads.
    const type = headerValue(response.headers['content-type']);
    if (verdict.code === 'response_unreadable' && type !== undefined && !isJsonContentType(type)) return forward(raw, false);
    return replySidecarError(x, new SidecarError(verdict.code), g.style);
  }
  countLocal(verdict.action);
  if (verdict.action === 'deny') {
    noteResponse(record, 'deny', verdict.policyId, 'local', verdict.reason);
    return replyError(x, denialBody(verdict.policyId, verdict.reason || 'response denied'), g.style);
  }
  if (local) noteResponse(record, verdict.action, verdict.action === 'modify' ? verdict.policyId : '', 'local');
  if (!g.remote) return verdict.action === 'modify' ? forward(verdict.body, true) : forward(raw, false);

  // The gateway sees what would be forwarded: after a local rewrite, the rewritten body.
  const remote = await g.remote.judgeJson(verdict.action === 'modify' ? verdict.body : decoded, hop.signal);
  if (hop.signal.aborted) return hop.abandoned();
  switch (remote.action) {
    case 'deny':
      noteResponse(record, 'deny', remote.policyId, 'remote', remote.reason);
      return replyError(x, denialBody(remote.policyId, remote.reason || 'response denied'), g.style);
    case 'unavailable':
      // A budget shortfall is no failed evaluation: the gateway decided, its rewrite could not be held.
      noteResponse(record, remote.code === 'policy_unavailable' ? 'fail_closed' : 'error', '', 'remote');
      return replySidecarError(x, new SidecarError(remote.code, remote.code === 'policy_unavailable' ? remote.reason : undefined), g.style);
    case 'modify':
      noteResponse(record, 'modify', remote.policyId, 'remote');
      return forward(remote.body, true);
    default:
      if (remote.action === 'fail_open' || remote.policyId) noteResponse(record, remote.action, remote.policyId, 'remote');
      return verdict.action === 'modify' ? forward(verdict.body, true) : forward(raw, false);
  }
}
