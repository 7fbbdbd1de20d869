import type { FailMode } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { InspectInput } from './inspect.ts';
import type { LocalPolicy } from './local.ts';
import type { Inspector } from './pool.ts';
import { applyEdits, detach, type BodyParts } from '../json/edits.ts';
import { RECLAIM_EVERY_BYTES, reclaimSoon } from '../memory/reclaim.ts';
import { encodeLlmEvent, type ChainResult, type PolicySource, type RemoteEvaluator, type RemoteVerdict, type UnavailableCode } from './types.ts';

const MAX_LOGGED_NAME = 256;

/** The body cannot be governed, so it is not forwarded: a 400 with this code. */
export interface Refusal {
  readonly kind: 'refused';
  readonly code: 'bad_request' | 'invalid_json';
  readonly detail: string | undefined;
}

export interface PolicyChain {
  /** False when no policy source exists: the LLM route then refuses to forward. */
  configured(): boolean;
  /**
   * Checks the body and decides. `remote: false` keeps the decision
   * in-process (a dry run). The gateway is asked about JSON-object bodies
   * only, as the SDK does; every body meets the local rules. `model` is the
   * body's `model` field when it has one.
   */
  evaluate(request: InspectInput, options?: EvaluateOptions): Promise<(ChainResult & { readonly model?: string }) | Refusal>;
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
    metrics.decisions.inc({ source, outcome, phase: 'request' });
    log.warn(
      { tool_name: toolName.slice(0, MAX_LOGGED_NAME), source, code, reason: why },
      `${source} policy evaluation failed; ${failMode === 'open' ? 'forwarding' : 'refusing'} (FIRSTOPS_FAIL_MODE=${failMode})`,
    );
    return failMode === 'open'
      ? { kind: 'forward', body, outcome: 'fail_open', source, policyId, reason: why }
      : { kind: 'unavailable', outcome: 'fail_closed', source, code, reason: why };
  };

  const refusal = (verdict: { action: string; policyId: string; reason: string }, source: PolicySource): ChainResult | undefined => {
    if (verdict.action !== 'deny' && verdict.action !== 'ask') return undefined;
    const reason = verdict.action === 'ask' ? `approval required, and a sidecar has nobody to ask${verdict.reason ? `: ${verdict.reason}` : ''}` : verdict.reason;
    return { kind: 'deny', outcome: verdict.action, source, policyId: verdict.policyId, reason };
  };

  return {
    configured: () => options.local() !== undefined || options.remote() !== undefined,

    async evaluate(request, { signal, remote: askRemote = true, maxAddedBytes, reserve } = {}) {
      const local = options.local();
      const endLocal = local ? metrics.policyDuration.startTimer({ source: 'local' }) : undefined;
      const inspection = await inspector.inspect(request, local, { signal, maxAddedBytes });
      endLocal?.();
      const { toolName } = request;
      const original: BodyParts = [request.body];
      if (inspection.kind === 'aborted') return { kind: 'aborted' };
      if (inspection.kind === 'refused') return { kind: 'refused', code: inspection.code, detail: inspection.detail };
      if (inspection.kind === 'unfinished') {
        return failed('local', 'policy_budget_exceeded', toolName, inspection.reason, original, '');
      }

      let forwardBody = original;
      let outcome: 'allow' | 'modify' = 'allow';
      let source: PolicySource | undefined;
      let policyId = '';
      let reason = '';
      const model = inspection.model;
      /** Records a verdict; a modify's `body` is what is forwarded from then on. */
      const note = (from: PolicySource, verdict: { action: string; policyId: string; reason: string; body?: BodyParts }): void => {
        if (verdict.action === 'modify') {
          forwardBody = verdict.body!;
          outcome = 'modify';
        }
        if (verdict.action === 'modify' || verdict.policyId) {
          source = from;
          policyId = verdict.policyId;
          reason = verdict.reason;
        }
      };

      if (inspection.local) {
        metrics.decisions.inc({ source: 'local', outcome: inspection.local.action, phase: 'request' });
        const stopped = refusal(inspection.local, 'local');
        if (stopped) return { ...stopped, model };
        if (inspection.local.action === 'modify') {
          // The rewrite holds none of the original where it can (edits.detach), and nothing here
          // refers to the original after this: a large one is freed before the gateway answers.
          const rewritten = detach(applyEdits(request.body, inspection.local.edits), request.body);
          if (rewritten !== forwardBody && request.body.length >= RECLAIM_EVERY_BYTES) reclaimSoon();
          note('local', { action: 'modify', policyId: inspection.local.policyId, reason: inspection.local.reason, body: rewritten });
        } else {
          note('local', inspection.local);
        }
      }

      const remote = askRemote && inspection.isObject ? options.remote() : undefined;
      if (!inspection.local && !remote) {
        metrics.decisions.inc({ source: 'none', outcome: 'skipped', phase: 'request' });
        return { kind: 'forward', body: forwardBody, outcome: 'skipped', source: undefined, policyId: '', reason: '', model };
      }
      if (remote) {
        let verdict: RemoteVerdict;
        const end = metrics.policyDuration.startTimer({ source: 'remote' });
        try {
          // The event carries what would be forwarded: after a local redaction, the redacted body.
          verdict = await remote.evaluate(encodeLlmEvent(toolName, forwardBody), { signal, reserve });
        } catch (err) {
          if (signal?.aborted) return { kind: 'aborted' };
          return { ...failed('remote', 'policy_unavailable', toolName, (err as Error).message, forwardBody, policyId), model };
        } finally {
          end();
        }
        metrics.decisions.inc({ source: 'remote', outcome: verdict.action, phase: 'request' });
        const stopped = refusal(verdict, 'remote');
        if (stopped) return { ...stopped, model };
        note('remote', verdict);
      }

      return { kind: 'forward', body: forwardBody, outcome, source, policyId, reason, model };
    },
  };
}
