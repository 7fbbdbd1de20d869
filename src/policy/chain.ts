import type { FailMode } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { ChainResult, Evaluator, HookEvent, PolicySource, Verdict } from './types.ts';

const MAX_LOGGED_NAME = 256;

export interface PolicyChain {
  /** False when no policy source exists: the LLM route then refuses to forward. */
  configured(): boolean;
  /**
   * `remote: false` keeps the evaluation in-process: for requests whose body
   * is not a JSON object, which the gateway has never been asked about.
   */
  evaluate(event: HookEvent, body: Buffer, options?: { signal?: AbortSignal; remote?: boolean }): Promise<ChainResult>;
}

/**
 * Local rules first (in-process; a deny stops the chain, a redaction is what
 * the remote sees and what is forwarded), then the gateway's EvaluateHook
 * when an identity is loaded. A remote failure never passes as an allow: in
 * `closed` mode it refuses, in `open` mode it forwards and counts `fail_open`.
 * `ask` has nobody to ask inside a sidecar, so it refuses like a deny.
 */
export function createPolicyChain(options: {
  local: () => Evaluator | undefined;
  remote: () => Evaluator | undefined;
  failMode: FailMode;
  metrics: Metrics;
  logger: Logger;
}): PolicyChain {
  const { metrics, failMode } = options;
  const log = options.logger.child({ component: 'policy' });

  async function timed(source: PolicySource, evaluator: Evaluator, event: HookEvent, signal?: AbortSignal): Promise<Verdict> {
    const end = metrics.policyDuration.startTimer({ source });
    try {
      return await evaluator.evaluate(event, signal);
    } finally {
      end();
    }
  }

  function stop(source: PolicySource, verdict: Verdict): ChainResult | undefined {
    if (verdict.action !== 'deny' && verdict.action !== 'ask') return undefined;
    const reason = verdict.action === 'ask' ? `approval required, and a sidecar has nobody to ask${verdict.reason ? `: ${verdict.reason}` : ''}` : verdict.reason;
    return { kind: 'deny', outcome: verdict.action, source, policyId: verdict.policyId, reason };
  }

  return {
    configured: () => options.local() !== undefined || options.remote() !== undefined,

    async evaluate(event, body, { signal, remote: askRemote = true } = {}) {
      let current = event;
      let forwardBody = body;
      let outcome: 'allow' | 'modify' = 'allow';
      let source: PolicySource | undefined;
      let policyId = '';
      let reason = '';

      const apply = (from: PolicySource, verdict: Verdict): ChainResult | undefined => {
        metrics.decisions.inc({ source: from, outcome: verdict.action });
        const stopped = stop(from, verdict);
        if (stopped) return stopped;
        if (verdict.action === 'modify') {
          current = { ...current, tool_input: verdict.toolInput };
          forwardBody = verdict.body;
          outcome = 'modify';
        }
        if (verdict.action === 'modify' || verdict.policyId) {
          source = from;
          policyId = verdict.policyId;
          reason = verdict.reason;
        }
        return undefined;
      };

      const local = options.local();
      if (local) {
        const stopped = apply('local', await timed('local', local, current, signal));
        if (stopped) return stopped;
      }

      const remote = askRemote ? options.remote() : undefined;
      if (!local && !remote) {
        metrics.decisions.inc({ source: 'none', outcome: 'skipped' });
        return { kind: 'forward', body, outcome: 'skipped', source: undefined, policyId: '', reason: '' };
      }
      if (remote) {
        let verdict: Verdict;
        try {
          verdict = await timed('remote', remote, current, signal);
        } catch (err) {
          if (signal?.aborted) return { kind: 'aborted' };
          const why = (err as Error).message;
          const failed = failMode === 'open' ? 'fail_open' : 'fail_closed';
          metrics.decisions.inc({ source: 'remote', outcome: failed });
          log.warn(
            { tool_name: event.tool_name.slice(0, MAX_LOGGED_NAME), reason: why },
            `remote policy evaluation failed; ${failMode === 'open' ? 'forwarding' : 'refusing'} (FIRSTOPS_FAIL_MODE=${failMode})`,
          );
          return failMode === 'open'
            ? { kind: 'forward', body: forwardBody, outcome: 'fail_open', source: 'remote', policyId, reason: why }
            : { kind: 'unavailable', outcome: 'fail_closed', reason: why };
        }
        const stopped = apply('remote', verdict);
        if (stopped) return stopped;
      }

      return { kind: 'forward', body: forwardBody, outcome, source, policyId, reason };
    },
  };
}
