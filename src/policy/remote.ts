import type { GatewayClient } from '../gateway.ts';
import type { Evaluator, HookEvent, Verdict } from './types.ts';

export const EVALUATE_HOOK_PATH = '/api/v1/daemon/evaluate-hook';
const KNOWN = new Set(['allow', 'deny', 'ask', 'modify']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** Remote evaluation did not produce a decision the sidecar can act on. */
export class RemoteEvaluationError extends Error {
  readonly code = 'remote_evaluation_failed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RemoteEvaluationError';
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Reads an EvaluateHook answer strictly: anything malformed is an error, never an allow. */
export function parseHookAnswer(answer: unknown): Verdict {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
    throw new RemoteEvaluationError('answer is not a JSON object');
  }
  const data = answer as Record<string, unknown>;
  const decision = data.decision === undefined || data.decision === '' ? 'allow' : data.decision;
  const reason = text(data.reason);
  const policyId = text(data.policy_id);
  if (typeof decision !== 'string' || !KNOWN.has(decision)) {
    throw new RemoteEvaluationError(`unknown decision ${JSON.stringify(decision).slice(0, 40)}`);
  }
  if (decision !== 'modify') return { action: decision as 'allow' | 'deny' | 'ask', policyId, reason };

  const payload = data.modified_payload;
  if (typeof payload !== 'string' || payload === '') throw new RemoteEvaluationError('modify without modified_payload');
  if (!BASE64.test(payload)) throw new RemoteEvaluationError('modified_payload is not standard base64');
  const body = Buffer.from(payload, 'base64');
  let toolInput: unknown;
  try {
    toolInput = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new RemoteEvaluationError('modified_payload is not a JSON document');
  }
  if (toolInput === null || typeof toolInput !== 'object' || Array.isArray(toolInput)) {
    throw new RemoteEvaluationError('modified_payload is not a JSON object');
  }
  return { action: 'modify', policyId, reason, toolInput: toolInput as Record<string, unknown>, body };
}

/** EvaluateHook over the gateway client (bearer + DPoP), bounded by `timeoutMs`. */
export function createRemoteEvaluator(options: { gateway: GatewayClient; timeoutMs: number }): Evaluator {
  return {
    async evaluate(event: HookEvent, signal?: AbortSignal): Promise<Verdict> {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let response;
      try {
        response = await options.gateway.request({
          method: 'POST',
          path: EVALUATE_HOOK_PATH,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: Buffer.from(JSON.stringify(event)),
          signal: combined,
          headersTimeoutMs: options.timeoutMs,
        });
      } catch (err) {
        throw new RemoteEvaluationError(timeout.aborted ? `timed out after ${options.timeoutMs} ms` : `gateway unreachable (${(err as { code?: string }).code ?? 'error'})`, { cause: err });
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new RemoteEvaluationError(`gateway answered ${response.statusCode}`);
      }
      let raw: Buffer;
      try {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body) {
          size += (chunk as Buffer).length;
          if (size > MAX_ANSWER_BYTES) throw new RemoteEvaluationError('answer too large');
          chunks.push(chunk as Buffer);
        }
        raw = Buffer.concat(chunks);
      } catch (err) {
        if (err instanceof RemoteEvaluationError) throw err;
        throw new RemoteEvaluationError(timeout.aborted ? `timed out after ${options.timeoutMs} ms` : 'answer body failed', { cause: err });
      }
      let answer: unknown;
      try {
        answer = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new RemoteEvaluationError('answer is not JSON');
      }
      return parseHookAnswer(answer);
    },
  };
}
