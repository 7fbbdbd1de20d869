import type { FailMode } from '../config.ts';
import { joinParts, type BodyParts } from '../json/edits.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { PayloadOverBudgetError } from '../policy/remote.ts';
import { encodePostToolUseEvent, refusalReason, type RemoteEvaluator, type RemoteVerdict } from '../policy/types.ts';
import type { PartVerdict, RemoteCallHook, ResponseView, ToolCall } from './index.ts';

const MAX_LOGGED_NAME = 256;

/**
 * What the gateway decided about an answer, after the fail mode: `fail_open`
 * passes what the local rules left, `unavailable` refuses it.
 */
export type ResponseRemoteVerdict =
  | { readonly action: 'allow' | 'fail_open'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'deny'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'modify'; readonly policyId: string; readonly reason: string; readonly body: Buffer }
  /** Refused: the evaluation failed in closed mode (policy_unavailable), or a modify payload did not fit the memory budget in either mode. */
  | { readonly action: 'unavailable'; readonly code: 'policy_unavailable' | 'body_budget_exhausted'; readonly reason: string };

export interface ResponseRemote {
  /** A JSON answer's body (decoded; after the local rules' rewrite) as `tool_output`. */
  judgeJson(body: Buffer, signal: AbortSignal): Promise<ResponseRemoteVerdict>;
  /** The gate's hook: asked about each complete tool call of a stream. */
  readonly callHook: RemoteCallHook;
}

/** `tool_output` must be a JSON object: an answer that is an array (a Gemini JSON stream) is wrapped. */
function outputParts(body: Buffer): BodyParts {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  return body[i] === 0x7b ? [body] : [ITEMS_HEAD, body, ITEMS_TAIL];
}
const ITEMS_HEAD = Buffer.from('{"items":');
const ITEMS_TAIL = Buffer.from('}');

/**
 * A stream's answer so far, as one object: its text parts and its tool calls
 * as the provider-neutral view has them, and which call is being judged.
 * (A stream has no response object of its own; the gateway reads this one.)
 */
export function assembledOutput(view: ResponseView, call: ToolCall): Buffer {
  const json = (c: ToolCall) => ({ key: c.key, id: c.id, name: c.name, arguments: c.arguments, complete: c.complete });
  return Buffer.from(JSON.stringify({
    object: 'firstops.stream_message',
    family: view.family,
    text: view.text.map((t) => ({ key: t.key, text: t.text })),
    tool_calls: view.toolCalls.map((c) => (c.key === call.key ? json(call) : json(c))),
    evaluating: call.key,
  }), 'utf8');
}

/** A streamed call's modify payload: the call's new arguments, JSON when they parse as JSON, else text. */
function argumentsVerdict(verdict: RemoteVerdict & { action: 'modify' }): PartVerdict {
  const text = joinParts(verdict.body).toString('utf8');
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // Plain text arguments (the Responses API's custom tools carry raw input).
  }
  return { action: 'modify', policyId: verdict.policyId, reason: verdict.reason, value, text };
}

/**
 * EvaluateHook on the answer side (FIRSTOPS_RESPONSE_REMOTE=on): a
 * `post_tool_use` event on channel `llm` with the request's `tool_name` and
 * `tool_input` (the body as forwarded) and the answer as `tool_output`.
 * Answers: allow passes, deny and ask refuse (a sidecar has nobody to ask),
 * modify replaces (a JSON answer's body; a streamed call's arguments). A
 * failure goes to FIRSTOPS_FAIL_MODE as on the request side: `open` passes
 * what the local rules left, counted `fail_open`; `closed` refuses with
 * `policy_unavailable`.
 */
export function createResponseRemote(options: {
  evaluator: RemoteEvaluator;
  failMode: FailMode;
  metrics: Metrics;
  logger: Logger;
  toolName: string;
  toolInput: BodyParts;
  /** Asked before each piece of a modify payload is kept (the request's memory share). */
  reserve: (bytes: number) => boolean;
}): ResponseRemote {
  const { evaluator, failMode, metrics, toolName, toolInput, reserve } = options;

  async function ask(output: BodyParts, signal: AbortSignal): Promise<RemoteVerdict | { action: 'failed'; reason: string } | { action: 'over_budget'; reason: string }> {
    const started = performance.now();
    try {
      return await evaluator.evaluate(encodePostToolUseEvent(toolName, toolInput, output), { signal, reserve });
    } catch (err) {
      const reason = (err as Error).message;
      if (err instanceof PayloadOverBudgetError) {
        // The gateway decided and its rewrite cannot be held: no fail mode passes the answer unchanged.
        options.logger.warn({ tool_name: toolName.slice(0, MAX_LOGGED_NAME), source: 'remote', phase: 'response', code: err.code }, reason);
        return { action: 'over_budget', reason };
      }
      const outcome = failMode === 'open' ? 'fail_open' : 'fail_closed';
      metrics.lean.decisions.at('remote', outcome, 'response').inc();
      options.logger.warn(
        { tool_name: toolName.slice(0, MAX_LOGGED_NAME), source: 'remote', phase: 'response', code: 'policy_unavailable', reason },
        `remote response evaluation failed; ${failMode === 'open' ? 'passing the answer' : 'refusing it'} (FIRSTOPS_FAIL_MODE=${failMode})`,
      );
      return { action: 'failed', reason };
    } finally {
      metrics.lean.policyDuration.at('remote').observe((performance.now() - started) / 1000);
    }
  }

  const counted = (verdict: RemoteVerdict): void => metrics.lean.decisions.at('remote', verdict.action, 'response').inc();
  const refusal = (verdict: RemoteVerdict): { action: 'deny'; policyId: string; reason: string } | undefined => {
    const reason = refusalReason(verdict);
    return reason === undefined ? undefined : { action: 'deny', policyId: verdict.policyId, reason };
  };

  return {
    async judgeJson(body, signal) {
      const verdict = await ask(outputParts(body), signal);
      if (verdict.action === 'over_budget') return { action: 'unavailable', code: 'body_budget_exhausted', reason: verdict.reason };
      if (verdict.action === 'failed') {
        return failMode === 'open' ? { action: 'fail_open', policyId: '', reason: verdict.reason } : { action: 'unavailable', code: 'policy_unavailable', reason: verdict.reason };
      }
      counted(verdict);
      const stopped = refusal(verdict);
      if (stopped) return stopped;
      if (verdict.action === 'modify') {
        const replacement = joinParts(verdict.body);
        try {
          JSON.parse(replacement.toString('utf8'));
        } catch {
          // Like any answer the sidecar cannot act on: the fail mode decides.
          const reason = 'modified_payload is not JSON';
          metrics.lean.decisions.at('remote', failMode === 'open' ? 'fail_open' : 'fail_closed', 'response').inc();
          return failMode === 'open' ? { action: 'fail_open', policyId: '', reason } : { action: 'unavailable', code: 'policy_unavailable', reason };
        }
        return { action: 'modify', policyId: verdict.policyId, reason: verdict.reason, body: replacement };
      }
      return { action: 'allow', policyId: verdict.policyId, reason: verdict.reason };
    },

    async callHook(call, { local, view, signal }) {
      const verdict = await ask([assembledOutput(view(), call)], signal);
      // Rejecting with this code ends the stream with body_budget_exhausted (gate.ts).
      if (verdict.action === 'over_budget') throw Object.assign(new Error(verdict.reason), { code: 'body_budget_exhausted' });
      if (verdict.action === 'failed') {
        // The gate's contract: resolving is failing open (the local verdict stands), rejecting denies.
        if (failMode === 'open') return local;
        throw new Error(verdict.reason);
      }
      counted(verdict);
      const stopped = refusal(verdict);
      if (stopped) return stopped;
      if (verdict.action === 'modify') return argumentsVerdict(verdict);
      return { action: 'allow', policyId: verdict.policyId, reason: verdict.reason };
    },
  };
}
