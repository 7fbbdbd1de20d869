import type { FailMode } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { InspectInput } from './inspect.ts';
import type { LocalPolicy } from './local.ts';
import type { InspectOutcome, Inspector } from './pool.ts';
import { applyEdits, detach, type BodyParts } from '../json/edits.ts';
import { RECLAIM_EVERY_BYTES, reclaimSoon } from '../memory/reclaim.ts';
import { PayloadOverBudgetError } from './remote.ts';
import { encodeLlmEvent, refusalReason, type ChainResult, type PolicySource, type RemoteEvaluator, type RemoteVerdict, type UnavailableCode } from './types.ts';

const MAX_LOGGED_NAME = 256;

/**
 * The body cannot be governed, so it is not forwarded: a 400 with this code,
 * or (body_budget_exhausted) a 503 to retry when a gateway rewrite does not
 * fit the memory budget.
 */
export interface Refusal {
  readonly kind: 'refused';
  readonly code: 'bad_request' | 'invalid_json' | 'body_budget_exhausted';
  readonly detail: string | undefined;
}

export interface PolicyChain {
  /** False when no policy source exists: the LLM route then refuses to forward. */
  configured(): boolean;
  /**
   * Checks the body and decides. `remote: false` keeps the decision
   * in-process (a dry run). The gateway is asked about JSON-object bodies
   * only, as the SDK does; every body meets the local rules. `model` is the
   * body's `model` field when it has one. Answered synchronously when the
   * body is inspected inline and the gateway is not asked: the common case
   * on the governed hop, where each async frame costs microseconds.
   */
  evaluate(request: InspectInput, options?: EvaluateOptions): MaybePromise<(ChainResult & { readonly model?: string }) | Refusal>;
}

export interface EvaluateOptions {
  readonly signal?: AbortSignal;
  /** False keeps the decision in-process (a dry run). */
  readonly remote?: boolean;
  /** What a local redaction may add to the body, in bytes (the request's memory share); unbounded when unset. */
  readonly maxAddedBytes?: number;
  /** Asked before each piece of a remote modify payload is kept (see RemoteCallOptions.reserve). */
  readonly reserve?: (bytes: number) => boolean;
}

type Decided = (ChainResult & { readonly model?: string }) | Refusal;
type MaybePromise<T> = T | Promise<T>;

/** What the local rules leave for the gateway: the body to forward (their rewrite, or the original) and their verdict. */
interface AfterLocal {
  readonly kind: 'local';
  readonly body: BodyParts;
  readonly outcome: 'allow' | 'modify';
  /** Set when a local rule modified the body or named itself (a policy id). */
  readonly source: PolicySource | undefined;
  readonly policyId: string;
  readonly reason: string;
  readonly model: string | undefined;
  readonly isObject: boolean;
  /** A local policy looked at the request. */
  readonly consulted: boolean;
}

/**
 * Local rules first (a deny stops the chain, a redaction is what the remote
 * sees and what is forwarded), then the gateway's EvaluateHook when an
 * identity is loaded. A failure never passes as an allow: the local rules
 * not finishing within their budget, or the gateway not answering, refuse in
 * `closed` mode and forward, counted `fail_open`, in `open` mode. `ask` has
 * nobody to ask inside a sidecar, so it refuses like a deny.
 */
export function createPolicyChain(options: {
  local: () => LocalPolicy | undefined;
  remote: () => RemoteEvaluator | undefined;
  inspector: Inspector;
  failMode: FailMode;
  metrics: Metrics;
  logger: Logger;
}): PolicyChain {
  const { metrics, failMode, inspector } = options;
  const log = options.logger.child({ component: 'policy' });

  /** The fail mode's answer when `source` gave none; `body` is what open mode forwards. */
  const failed = (source: PolicySource, code: UnavailableCode, toolName: string, why: string, body: BodyParts, policyId: string): ChainResult => {
    const outcome = failMode === 'open' ? 'fail_open' : 'fail_closed';
    metrics.lean.decisions.at(source, outcome, 'request').inc();
    log.warn(
      { tool_name: toolName.slice(0, MAX_LOGGED_NAME), source, code, reason: why },
      `${source} policy evaluation failed; ${failMode === 'open' ? 'forwarding' : 'refusing'} (FIRSTOPS_FAIL_MODE=${failMode})`,
    );
    return failMode === 'open'
      ? { kind: 'forward', body, outcome: 'fail_open', source, policyId, reason: why }
      : { kind: 'unavailable', outcome: 'fail_closed', source, code, reason: why };
  };

  const refusal = (verdict: { action: string; policyId: string; reason: string }, source: PolicySource): ChainResult | undefined => {
    const reason = refusalReason(verdict);
    if (reason === undefined) return undefined;
    return { kind: 'deny', outcome: verdict.action as 'deny' | 'ask', source, policyId: verdict.policyId, reason };
  };

  /**
   * The local rules' answer, once the body is inspected, and what it leaves
   * for the gateway. Only this step (and a worker's inspection before it)
   * sees the request; the gateway is awaited in a frame that has only what the
   * local rules left: a suspended async function keeps every local and
   * parameter it has (V8 saves its registers whether they are still used or
   * not), so awaiting the gateway in a frame that had the request kept the
   * original body alive until the gateway answered, next to the local rewrite
   * and the gateway's decoded payload: three bodies at the peak.
   */
  const afterInspection = (request: InspectInput, local: LocalPolicy | undefined, started: number, inspection: InspectOutcome): AfterLocal | Decided => {
    if (local) metrics.lean.policyDuration.at('local').observe((performance.now() - started) / 1000);
    if (inspection.kind === 'aborted') return { kind: 'aborted' };
    if (inspection.kind === 'refused') return { kind: 'refused', code: inspection.code, detail: inspection.detail };
    if (inspection.kind === 'unfinished') {
      return failed('local', 'policy_budget_exceeded', request.toolName, inspection.reason, [request.body], '');
    }
    const { model, isObject } = inspection;
    const verdict = inspection.local;
    if (!verdict) return { kind: 'local', body: [request.body], outcome: 'allow', source: undefined, policyId: '', reason: '', model, isObject, consulted: false };
    metrics.lean.decisions.at('local', verdict.action, 'request').inc();
    const stopped = refusal(verdict, 'local');
    if (stopped) return { ...stopped, model };
    if (verdict.action !== 'modify') {
      return { kind: 'local', body: [request.body], outcome: 'allow', source: verdict.policyId ? 'local' : undefined, policyId: verdict.policyId, reason: verdict.policyId ? verdict.reason : '', model, isObject, consulted: true };
    }
    const rewritten = detach(applyEdits(request.body, verdict.edits), request.body);
    if (request.body.length >= RECLAIM_EVERY_BYTES) reclaimSoon();
    return { kind: 'local', body: rewritten, outcome: 'modify', source: 'local', policyId: verdict.policyId, reason: verdict.reason, model, isObject, consulted: true };
  };

  /** Synchronous when the body is inspected inline (small bodies: every request but a large prompt's). */
  const governLocally = (request: InspectInput, { signal, maxAddedBytes }: EvaluateOptions): MaybePromise<AfterLocal | Decided> => {
    const local = options.local();
    const started = local ? performance.now() : 0;
    const inspection = inspector.inspect(request, local, { signal, maxAddedBytes });
    return inspection instanceof Promise
      ? inspection.then((outcome) => afterInspection(request, local, started, outcome))
      : afterInspection(request, local, started, inspection);
  };

  /** After the local rules: done, or (a JSON object, with an evaluator) the gateway's turn. */
  const decide = (state: AfterLocal | Decided, toolName: string, evaluateOptions: EvaluateOptions): MaybePromise<Decided> => {
    if (state.kind !== 'local') return state;
    const remote = (evaluateOptions.remote ?? true) && state.isObject ? options.remote() : undefined;
    if (remote) return askGateway(remote, state, toolName, evaluateOptions);
    const { body, outcome, source, policyId, reason, model } = state;
    if (state.consulted) return { kind: 'forward', body, outcome, source, policyId, reason, model };
    metrics.lean.decisions.at('none', 'skipped', 'request').inc();
    return { kind: 'forward', body, outcome: 'skipped', source: undefined, policyId: '', reason: '', model };
  };

  const askGateway = async (remote: RemoteEvaluator, state: AfterLocal, toolName: string, { signal, reserve }: EvaluateOptions): Promise<Decided> => {
    const { model } = state;
    let verdict: RemoteVerdict;
    const started = performance.now();
    try {
      verdict = await remote.evaluate(encodeLlmEvent(toolName, state.body), { signal, reserve });
    } catch (err) {
      if (signal?.aborted) return { kind: 'aborted' };
      if (err instanceof PayloadOverBudgetError) {
        // The gateway decided; its rewrite cannot be held now. Neither fail mode applies: the client retries.
        log.warn({ tool_name: toolName.slice(0, MAX_LOGGED_NAME), source: 'remote', code: err.code }, err.message);
        return { kind: 'refused', code: 'body_budget_exhausted', detail: undefined };
      }
      return { ...failed('remote', 'policy_unavailable', toolName, (err as Error).message, state.body, state.policyId), model };
    } finally {
      metrics.lean.policyDuration.at('remote').observe((performance.now() - started) / 1000);
    }
    metrics.lean.decisions.at('remote', verdict.action, 'request').inc();
    const stopped = refusal(verdict, 'remote');
    if (stopped) return { ...stopped, model };
    if (verdict.action === 'modify') {
      return { kind: 'forward', body: verdict.body, outcome: 'modify', source: 'remote', policyId: verdict.policyId, reason: verdict.reason, model };
    }
    // An allow naming a policy is that policy's; an anonymous one keeps what the local rules said.
    const named = verdict.policyId !== '';
    return {
      kind: 'forward', body: state.body, outcome: state.outcome, model,
      source: named ? 'remote' : state.source,
      policyId: named ? verdict.policyId : state.policyId,
      reason: named ? verdict.reason : state.reason,
    };
  };

  return {
    configured: () => options.local() !== undefined || options.remote() !== undefined,

    // Not async: this frame ends at once, so it holds the request for no longer than governLocally does.
    evaluate: (request, evaluateOptions = {}) => {
      const afterLocal = governLocally(request, evaluateOptions);
      return afterLocal instanceof Promise
        ? afterLocal.then((state) => decide(state, request.toolName, evaluateOptions))
        : decide(afterLocal, request.toolName, evaluateOptions);
    },
  };
}
