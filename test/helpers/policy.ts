import { applyEdits, joinParts } from '../../src/json/edits.ts';
import { inspect } from '../../src/policy/inspect.ts';
import type { LocalPolicy } from '../../src/policy/local.ts';
import type { LocalVerdict } from '../../src/policy/types.ts';

/** A local verdict, and for a modify the rewritten body parsed back, as the route would forward it. */
export type Judged = LocalVerdict & { readonly rewritten?: Record<string, unknown> };

/**
 * The local rules' verdict on a call whose body is `toolInput` as JSON (or no
 * body), through the real path: the byte scan, then the rules.
 */
export function judge(policy: LocalPolicy, toolName: string, toolInput?: Record<string, unknown>, channel = 'llm'): Judged {
  const body = toolInput === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(toolInput));
  const inspection = inspect({ toolName, channel, body, contentType: toolInput === undefined ? undefined : 'application/json', contentTypeCount: toolInput === undefined ? 0 : 1 }, policy);
  if (inspection.kind !== 'inspected' || !inspection.local) throw new Error(`not inspected: ${JSON.stringify(inspection)}`);
  const local = inspection.local;
  if (local.action !== 'modify') return local;
  return { ...local, rewritten: JSON.parse(joinParts(applyEdits(body, local.edits)).toString('utf8')) as Record<string, unknown> };
}

/** The bytes a modify forwards. */
export function rewrittenBytes(body: Buffer, verdict: LocalVerdict): Buffer {
  return verdict.action === 'modify' ? joinParts(applyEdits(body, verdict.edits)) : body;
}
