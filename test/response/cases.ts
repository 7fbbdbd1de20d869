// One entry per provider stream shape, for the gate and fuzz tests.
import { anthropicToolStream, chatToolStream, geminiToolStream, responsesToolStream, type ToolSpec } from './streams.ts';

export interface StreamCase {
  readonly name: string;
  readonly provider: string;
  readonly build: (text: string, calls: readonly ToolSpec[]) => string[];
  /** The error event the family ends a stream with, for a deny by the shell rule. */
  readonly denyEvent: string;
}

const REASON = 'blocked by FirstOps policy: destructive shell command in a tool call';
const OPENAI_DENY = `data: ${JSON.stringify({ error: { message: REASON, type: 'firstops_policy_violation', code: 'policy_denied', param: null, policy_id: 'no-destructive-shell' } })}\n\n`;

export const STREAM_CASES: readonly StreamCase[] = [
  { name: 'OpenAI Chat Completions', provider: 'openai', build: chatToolStream, denyEvent: OPENAI_DENY },
  { name: 'OpenAI Responses', provider: 'openai', build: responsesToolStream, denyEvent: OPENAI_DENY },
  {
    name: 'Anthropic Messages', provider: 'anthropic', build: anthropicToolStream,
    denyEvent: `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'firstops_policy_violation', message: REASON } })}\n\n`,
  },
  {
    name: 'Gemini', provider: 'google', build: geminiToolStream,
    denyEvent: `data: ${JSON.stringify({ error: { code: 403, message: REASON, status: 'PERMISSION_DENIED' } })}\n\n`,
  },
];

/** The events before the first one that names `name`: what a deny of that call lets through. */
export function before(events: readonly string[], name: string): string {
  const at = events.findIndex((e) => e.includes(`"${name}"`));
  if (at === -1) throw new Error(`no event names ${name}`);
  return events.slice(0, at).join('');
}
