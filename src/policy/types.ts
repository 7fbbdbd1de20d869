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

/** An `llm` channel event; without `toolInput` (a body that is not a JSON object) the field is left out. */
export function llmEvent(toolName: string, toolInput?: Record<string, unknown>): HookEvent {
  return {
    event_type: 'pre_tool_use',
    agent: AGENT_LABEL,
    tool_name: toolName,
    channel: 'llm',
    ...(toolInput === undefined ? {} : { tool_input: toolInput }),
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
      /** `skipped`: no policy source looked at the request. */
      readonly outcome: 'allow' | 'modify' | 'fail_open' | 'skipped';
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
  | { readonly kind: 'unavailable'; readonly outcome: 'fail_closed'; readonly reason: string }
  /** The client went away while the gateway was asked: nobody to answer, nothing to count. */
  | { readonly kind: 'aborted' };

export interface Evaluator {
  evaluate(event: HookEvent, signal?: AbortSignal): Promise<Verdict>;
}
