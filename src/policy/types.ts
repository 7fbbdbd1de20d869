/** The EvaluateHook event, in the SDK's wire form (optional fields only when set). */
export interface HookEvent {
  readonly event_type: 'pre_tool_use';
  readonly agent: string;
  readonly tool_name: string;
  readonly channel?: string;
  readonly tool_input?: Record<string, unknown>;
  readonly producer_can_apply_modify?: true;
}

/** Producer label the backend maps to its SDK audit source. */
export const AGENT_LABEL = 'firstops-sdk';

export function llmEvent(toolName: string, toolInput: Record<string, unknown>): HookEvent {
  return {
    event_type: 'pre_tool_use',
    agent: AGENT_LABEL,
    tool_name: toolName,
    channel: 'llm',
    tool_input: toolInput,
    producer_can_apply_modify: true,
  };
}

export type PolicySource = 'local' | 'remote';

/** What one policy source answered. */
export type Verdict =
  | { readonly action: 'allow'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'deny' | 'ask'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'modify'; readonly policyId: string; readonly reason: string; readonly toolInput: Record<string, unknown>; readonly body: Buffer };

/** What the chain decided for a request. */
export type ChainResult =
  | {
      readonly kind: 'forward';
      /** The bytes to forward: the original body unless a policy rewrote it. */
      readonly body: Buffer;
      readonly outcome: 'allow' | 'modify' | 'fail_open';
      readonly source: PolicySource | undefined;
      readonly policyId: string;
      readonly reason: string;
    }
  | {
      readonly kind: 'deny';
      readonly outcome: 'deny' | 'ask';
      readonly source: PolicySource;
      readonly policyId: string;
      readonly reason: string;
    }
  | { readonly kind: 'unavailable'; readonly outcome: 'fail_closed'; readonly reason: string };

export interface Evaluator {
  evaluate(event: HookEvent, signal?: AbortSignal): Promise<Verdict>;
}
