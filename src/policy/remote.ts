import type { Readable } from 'node:stream';
import type { GatewayClient } from '../identity/gateway.ts';
import { joinParts, partsLength, type BodyParts } from '../json/edits.ts';
import { createReclaimer } from '../memory/reclaim.ts';
import { AnswerTooLargeError, createAnswerReader, type StreamedPayload } from './answer.ts';
import type { RemoteEvaluator, RemoteVerdict } from './types.ts';

/** Events up to this size are joined into one buffer (one write); larger ones go as their parts. */
const JOIN_BELOW = 64 * 1024;

export const EVALUATE_HOOK_PATH = '/api/v1/daemon/evaluate-hook';
const KNOWN = new Set(['allow', 'deny', 'ask', 'modify']);
/**
 * What an answer may hold besides its modify payload's content (decision,
 * reason, policy id): kept whole and parsed. The payload itself is decoded as
 * it streams, bounded by the request's memory share and by `maxPayloadBytes`.
 */
export const MAX_ANSWER_REST_BYTES = 1024 * 1024;

/** Remote evaluation did not produce a decision the sidecar can act on. */
export class RemoteEvaluationError extends Error {
  readonly code: string = 'remote_evaluation_failed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RemoteEvaluationError';
  }
}

/**
 * The gateway answered modify, but its payload does not fit what is left of
 * the in-flight memory budget. Not a failed evaluation: the decision is
 * known and cannot be applied, so no fail mode may forward the original.
 */
export class PayloadOverBudgetError extends RemoteEvaluationError {
  override readonly code = 'body_budget_exhausted';
  constructor() {
    super('modified_payload does not fit the memory budget (FIRSTOPS_MEMORY_BUDGET_BYTES)');
    this.name = 'PayloadOverBudgetError';
  }
}

/** RFC 4648 §4 with padding, as Python's b64decode(validate=True) accepts it; one pass, no regex backtracking. */
export function isStandardBase64(value: string): boolean {
  if (value.length % 4 !== 0) return false;
  const pad = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  for (let i = 0; i < value.length - pad; i++) {
    const c = value.charCodeAt(i);
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f;
    if (!ok) return false;
  }
  return true;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Python's truthiness, which the SDK's `data.get("decision") or "allow"`
 * applies: a missing, null, empty (string, list, object), false or zero
 * decision is a clean allow.
 */
function falsy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

/**
 * Reads an EvaluateHook answer as the SDK does. What the SDK cannot act on
 * (an unknown decision, a modify without a usable payload) is an error here,
 * never an allow: the fail mode decides. A modify's payload is forwarded
 * exactly as decoded, whatever it holds.
 */
export function parseHookAnswer(answer: unknown, streamed?: StreamedPayload): RemoteVerdict {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
    throw new RemoteEvaluationError('answer is not a JSON object');
  }
  const data = answer as Record<string, unknown>;
  const decision = falsy(data.decision) ? 'allow' : data.decision;
  const reason = text(data.reason);
  const policyId = text(data.policy_id);
  if (typeof decision !== 'string' || !KNOWN.has(decision)) {
    throw new RemoteEvaluationError(`unknown decision ${JSON.stringify(decision).slice(0, 40)}`);
  }
  if (decision !== 'modify') return { action: decision as 'allow' | 'deny' | 'ask', policyId, reason };

  const payload = data.modified_payload;
  if (streamed && payload === '') {
    // The payload's content was decoded as it arrived (answer.ts).
    if (streamed.chars === 0) throw new RemoteEvaluationError('modify without modified_payload');
    if (streamed.problem === 'over the memory budget') throw new PayloadOverBudgetError();
    if (!streamed.parts) throw new RemoteEvaluationError('modified_payload is not standard base64');
    return { action: 'modify', policyId, reason, body: streamed.parts };
  }
  if (typeof payload !== 'string' || payload === '') throw new RemoteEvaluationError('modify without modified_payload');
  if (!isStandardBase64(payload)) throw new RemoteEvaluationError('modified_payload is not standard base64');
  return { action: 'modify', policyId, reason, body: [Buffer.from(payload, 'base64')] };
}

/** Answers declaring at most this many bytes are read whole (see evaluate). */
const SMALL_ANSWER_BYTES = 16 * 1024;
const PAYLOAD_KEY = Buffer.from('"modified_payload"');

/** A small answer's bytes: every chunk, joined once; `late` (and the body dropped) once a chunk comes after `deadline`. */
function readSmall(body: Readable, deadline: number, late: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (chunk: Buffer) => {
      if (performance.now() > deadline) {
        reject(late());
        body.destroy();
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    body.once('error', reject);
  });
}

const timedOut = (err: unknown): boolean => {
  const code = (err as { code?: unknown }).code;
  return code === 'gateway_timeout' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
};

/**
 * EvaluateHook over the gateway client (bearer + DPoP), bounded by
 * `timeoutMs`: undici's per-request headers and body timeouts (timers it
 * already keeps per connection) plus a deadline checked at every answer
 * chunk, instead of an AbortSignal.timeout and an AbortSignal.any per
 * request (a timer, composite-signal bookkeeping and listener churn in the
 * profile). The client's own signal goes to undici as it is. Connect time is
 * bounded by FIRSTOPS_CONNECT_TIMEOUT_MS, as for every hop.
 */
export function createRemoteEvaluator(options: { gateway: GatewayClient; timeoutMs: number; maxPayloadBytes: number }): RemoteEvaluator {
  const { timeoutMs, maxPayloadBytes } = options;
  const tooSlow = `timed out after ${timeoutMs} ms`;
  return {
    async evaluate(event: BodyParts, { signal, reserve } = {}): Promise<RemoteVerdict> {
      const deadline = performance.now() + timeoutMs;
      const length = partsLength(event);
      let response;
      try {
        response = await options.gateway.request({
          method: 'POST',
          path: EVALUATE_HOOK_PATH,
          headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': String(length) },
          // A small event goes in one write; a large one as its parts, never joined.
          body: length <= JOIN_BELOW ? joinParts(event) : event,
          signal,
          headersTimeoutMs: timeoutMs,
          bodyTimeoutMs: timeoutMs,
        });
      } catch (err) {
        throw new RemoteEvaluationError(timedOut(err) ? tooSlow : `gateway unreachable (${(err as { code?: string }).code ?? 'error'})`, { cause: err });
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new RemoteEvaluationError(`gateway answered ${response.statusCode}`);
      }
      let small: Buffer | undefined;
      if (Number(response.headers['content-length']) <= SMALL_ANSWER_BYTES) {
        // The common answer (an allow or deny of a few hundred bytes): read with
        // two listeners and one Promise and parsed whole, instead of through an
        // async iterator, the streaming reader and a reclaimer (~7 µs and eight
        // microtasks a request). One naming a payload still goes through the
        // reader below, which decodes it against the request's memory share.
        try {
          small = await readSmall(response.body, deadline, () => new RemoteEvaluationError(tooSlow));
        } catch (err) {
          if (err instanceof RemoteEvaluationError) throw err;
          throw new RemoteEvaluationError(timedOut(err) ? tooSlow : 'answer body failed', { cause: err });
        }
        if (small.indexOf(PAYLOAD_KEY) === -1) {
          let answer: unknown;
          try {
            answer = JSON.parse(small.toString('utf8'));
          } catch {
            throw new RemoteEvaluationError('answer is not JSON');
          }
          return parseHookAnswer(answer);
        }
      }
      let decoded = 0;
      const reader = createAnswerReader({
        maxRestBytes: MAX_ANSWER_REST_BYTES,
        reserve: (bytes) => (decoded += bytes) <= maxPayloadBytes && (reserve?.(bytes) ?? true),
      });
      // A large answer's chunks and base64 pieces are garbage once decoded: reclaim them as it streams.
      const reclaim = createReclaimer();
      try {
        if (small) reader.push(small);
        else {
          for await (const chunk of response.body) {
            if (performance.now() > deadline) throw new RemoteEvaluationError(tooSlow);
            reader.push(chunk as Buffer);
            reclaim((chunk as Buffer).length);
          }
        }
      } catch (err) {
        if (err instanceof RemoteEvaluationError) throw err;
        if (err instanceof AnswerTooLargeError) throw new RemoteEvaluationError('answer too large');
        throw new RemoteEvaluationError(timedOut(err) ? tooSlow : 'answer body failed', { cause: err });
      }
      const { rest, payload } = reader.finish();
      let answer: unknown;
      try {
        answer = JSON.parse(rest);
      } catch {
        throw new RemoteEvaluationError('answer is not JSON');
      }
      return parseHookAnswer(answer, payload);
    },
  };
}
