import type { BodyParts, Edit } from '../json/edits.ts';

/** Producer label the backend maps to its SDK audit source. */
export const AGENT_LABEL = 'firstops-sdk';

/** The EvaluateHook event, in the SDK's wire form (optional fields only when set). */
export interface HookEvent {
  readonly event_type: 'pre_tool_use' | 'post_tool_use';
  readonly agent: string;
  readonly tool_name: string;
  readonly channel?: string;
  readonly tool_input?: Record<string, unknown>;
  /** post_tool_use: what the model answered (src/response/remote.ts). */
  readonly tool_output?: Record<string, unknown>;
  readonly producer_can_apply_modify?: true;
}

/**
 * The `llm` channel event for a JSON-object body, spliced around the body's
 * own bytes (or the parts of its rewrite): the body was already checked to be
 * strict JSON (one object, no duplicate keys), so the event is JSON without a
 * second serialisation, or even a copy, of a large prompt. Field order is the
 * SDK's.
 */
export function encodeLlmEvent(toolName: string, toolInput: BodyParts): Uint8Array[] {
  const head = Buffer.from(`{"event_type":"pre_tool_use","agent":"${AGENT_LABEL}","tool_name":${JSON.stringify(toolName)},"channel":"llm","tool_input":`);
  return [head, ...toolInput, EVENT_TAIL];
}
const EVENT_TAIL = Buffer.from(',"producer_can_apply_modify":true}');

/**
 * The `llm` channel's response event (issue 22): the request body as the
 * upstream received it (`tool_input`, the same bytes as the request's event)
 * and the model's answer (`tool_output`, a JSON object's bytes), spliced
 * without a second serialisation. Field order is the SDK's wire order
 * (firstops-python events.py ActionEvent.to_wire).
 */
export function encodePostToolUseEvent(toolName: string, toolInput: BodyParts, toolOutput: BodyParts): Uint8Array[] {
  const head = Buffer.from(`{"event_type":"post_tool_use","agent":"${AGENT_LABEL}","tool_name":${JSON.stringify(toolName)},"tool_input":`);
  return [head, ...toolInput, OUTPUT_KEY, ...toolOutput, POST_TAIL];
}
const OUTPUT_KEY = Buffer.from(',"tool_output":');
const POST_TAIL = Buffer.from(',"channel":"llm","producer_can_apply_modify":true}');

export type PolicySource = 'local' | 'remote';

/** What the local rules decided. */
export type LocalVerdict =
  | { readonly action: 'allow' | 'deny'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'modify'; readonly policyId: string; readonly reason: string; readonly edits: readonly Edit[] };

/** What the gateway decided; a modify carries the payload bytes exactly as the gateway wrote them. */
export type RemoteVerdict =
  | { readonly action: 'allow' | 'deny' | 'ask'; readonly policyId: string; readonly reason: string }
  | { readonly action: 'modify'; readonly policyId: string; readonly reason: string; readonly body: BodyParts };

/**
 * Why a deny or an ask refuses (an ask too: a sidecar has nobody to ask), or
 * undefined for a verdict that lets the body pass.
 */
export function refusalReason(verdict: { readonly action: string; readonly reason: string }): string | undefined {
  if (verdict.action === 'deny') return verdict.reason;
  if (verdict.action === 'ask') return `approval required, and a sidecar has nobody to ask${verdict.reason ? `: ${verdict.reason}` : ''}`;
  return undefined;
}

export interface RemoteCallOptions {
  readonly signal?: AbortSignal;
  /**
   * Asked before each piece of a decoded modify payload is kept, with its
   * size: false stops the evaluation (a failure, for the fail mode), so the
   * gateway's answer stays within the request's memory budget.
   */
  readonly reserve?: (bytes: number) => boolean;
}

export interface RemoteEvaluator {
  /** `event` is the encoded EvaluateHook event (encodeLlmEvent), in parts. */
  evaluate(event: BodyParts, options?: RemoteCallOptions): Promise<RemoteVerdict>;
}

/** Why a policy answer could not be had, when the fail mode decides instead. */
export type UnavailableCode = 'policy_unavailable' | 'policy_budget_exceeded';

/** What the chain decided for a request. */
export type ChainResult =
  | {
      readonly kind: 'forward';
      /** The bytes to forward, in parts: the original body unless a policy rewrote it. */
      readonly body: BodyParts;
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
  | { readonly kind: 'unavailable'; readonly outcome: 'fail_closed'; readonly source: PolicySource; readonly code: UnavailableCode; readonly reason: string }
  /** The client went away while the policy was asked: nobody to answer, nothing to count. */
  | { readonly kind: 'aborted' };
