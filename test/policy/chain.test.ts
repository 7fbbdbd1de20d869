// The policy chain (src/policy/chain.ts) on its own: how the local verdict
// and the gateway's combine, and what the chain keeps in memory while the
// gateway answers. Issue 20 bounds a governed body at about twice its size:
// after a local redaction, the original must be free (no frame of the chain
// still refers to it) before the gateway's modify payload arrives, else the
// peak is three bodies (original, rewrite, payload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createPolicyChain } from '../../src/policy/chain.ts';
import { compilePolicy, type LocalPolicy } from '../../src/policy/local.ts';
import { createInspector } from '../../src/policy/pool.ts';
import type { RemoteEvaluator, RemoteVerdict } from '../../src/policy/types.ts';
import type { BodyParts } from '../../src/json/edits.ts';
import { LogCapture } from '../helpers/logs.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type?: 'major'; execution?: 'sync' }) => void;

const POLICY = compilePolicy(`
version: 1
default: allow
rules:
  - id: redact-mail
    match: { channel: llm }
    decision: modify
    redact:
      - pattern: "[a-z]+@example\\\\.com"
        replacement: "[mail]"
`, 'test');

const TOOL = 'openai.v1.chat.completions';
const joined = (parts: BodyParts): string => Buffer.concat(parts).toString('utf8');

function chainWith(remote: RemoteEvaluator | undefined, { local = POLICY as LocalPolicy | null, failMode = 'closed' as 'open' | 'closed' } = {}) {
  const metrics = createMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent', destination: new LogCapture() });
  // Inline inspection (no worker): everything the chain holds is on this thread's heap.
  const inspector = createInspector({ workers: 1, offloadBytes: 1 << 30, budgetMs: 10_000, maxQueue: 1 });
  return createPolicyChain({ local: () => local ?? undefined, remote: () => remote, inspector, failMode, metrics, logger });
}

/** Two turns of the event loop with a full collection after each: what nothing refers to is gone. */
async function collect(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc({ type: 'major', execution: 'sync' });
  }
}

test('after a local redaction, the original body is collectable while the gateway answers', async () => {
  let original: WeakRef<ArrayBuffer> | undefined;
  let collectedBeforeAnswer: boolean | undefined;
  let event = '';
  const remote: RemoteEvaluator = {
    async evaluate(parts): Promise<RemoteVerdict> {
      event = joined(parts);
      // The gateway is being asked: nothing but the caller should hold the original now.
      await collect();
      collectedBeforeAnswer = original!.deref() === undefined;
      return { action: 'modify', policyId: 'gw', reason: 'gateway rewrite', body: [Buffer.from('{"model":"m","messages":[]}')] };
    },
  };
  const chain = chainWith(remote);
  // The body exists only inside this function (as a caller that lets go of it would hold it): a MiB of addresses, with its own memory.
  const start = () => {
    const body = Buffer.from(`{"model":"m","messages":[{"role":"user","content":"${'mail bob@example.com ok '.repeat(44_000)}"}]}`);
    assert.equal(body.byteOffset, 0);
    assert.equal(body.buffer.byteLength, body.length, 'a body with an ArrayBuffer of its own');
    original = new WeakRef(body.buffer as ArrayBuffer);
    return chain.evaluate({ toolName: TOOL, channel: 'llm', body, contentType: 'application/json', contentTypeCount: 1 });
  };
  const result = await start();

  assert.ok(event.includes('[mail]') && !event.includes('@'), 'the gateway was asked about the redacted body');
  assert.equal(collectedBeforeAnswer, true, 'the original body was still referenced while the gateway was asked');
  assert.equal(result.kind, 'forward');
  assert.equal(result.kind === 'forward' && joined(result.body), '{"model":"m","messages":[]}');
  assert.equal(result.kind === 'forward' && result.source, 'remote');
});

test('verdicts combine: a redaction then an allow forwards the rewrite; names and fail modes', async () => {
  const body = Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi bob@example.com"}]}');
  const input = { toolName: TOOL, channel: 'llm', body, contentType: 'application/json', contentTypeCount: 1 };
  const answering = (verdict: RemoteVerdict | Error): RemoteEvaluator => ({
    evaluate: async () => {
      if (verdict instanceof Error) throw verdict;
      return verdict;
    },
  });

  // Local modify, then an anonymous allow: the rewrite, under the local rule's name.
  let r = await chainWith(answering({ action: 'allow', policyId: '', reason: '' })).evaluate(input);
  assert.equal(r.kind, 'forward');
  if (r.kind !== 'forward') return;
  assert.equal(joined(r.body), '{"model":"m","messages":[{"role":"user","content":"hi [mail]"}]}');
  assert.deepEqual([r.outcome, r.source, r.policyId, r.model], ['modify', 'local', 'redact-mail', 'm']);

  // A named allow takes the name; the rewrite is still what goes.
  r = await chainWith(answering({ action: 'allow', policyId: 'gw-allow', reason: 'fine' })).evaluate(input);
  assert.ok(r.kind === 'forward');
  assert.deepEqual([joined(r.body).includes('[mail]'), r.outcome, r.source, r.policyId, r.reason], [true, 'modify', 'remote', 'gw-allow', 'fine']);

  // The gateway failing: closed refuses, open forwards the rewrite (never the original).
  r = await chainWith(answering(new Error('down'))).evaluate(input);
  assert.deepEqual(r.kind === 'unavailable' && [r.code, r.source], ['policy_unavailable', 'remote']);
  r = await chainWith(answering(new Error('down')), { failMode: 'open' }).evaluate(input);
  assert.ok(r.kind === 'forward');
  assert.deepEqual([joined(r.body).includes('[mail]'), r.outcome, r.policyId], [true, 'fail_open', 'redact-mail']);

  // A deny from the gateway stops it.
  r = await chainWith(answering({ action: 'deny', policyId: 'gw-deny', reason: 'no' })).evaluate(input);
  assert.deepEqual(r.kind === 'deny' && [r.source, r.policyId, r.reason], ['remote', 'gw-deny', 'no']);

  // No local policy, no gateway: skipped, the original as it came.
  r = await chainWith(undefined, { local: null }).evaluate(input);
  assert.ok(r.kind === 'forward');
  assert.deepEqual([r.body[0] === body, r.outcome, r.source], [true, 'skipped', undefined]);

  // No match: the original, and the gateway asked about it.
  let asked = '';
  const plain = { ...input, body: Buffer.from('{"model":"m","messages":[]}') };
  r = await chainWith({ evaluate: async (parts) => { asked = joined(parts); return { action: 'allow', policyId: '', reason: '' }; } }).evaluate(plain);
  assert.ok(r.kind === 'forward');
  // The rule matched and changed nothing: an allow under its name.
  assert.deepEqual([r.body[0] === plain.body, r.outcome, r.source, r.policyId], [true, 'allow', 'local', 'redact-mail']);
  assert.match(asked, /"tool_input":\{"model":"m","messages":\[\]\}/);
});

test('a small body decided locally is answered synchronously; the gateway, or a worker, makes it a promise', async () => {
  const body = Buffer.from('{"model":"m","messages":[{"role":"user","content":"hi bob@example.com"}]}');
  const input = { toolName: TOOL, channel: 'llm', body, contentType: 'application/json', contentTypeCount: 1 };
  const local = chainWith(undefined).evaluate(input);
  assert.ok(!(local instanceof Promise), 'no promise (and no microtask) for a decision made inline');
  assert.equal(local.kind === 'forward' && joined(local.body), '{"model":"m","messages":[{"role":"user","content":"hi [mail]"}]}');
  const refused = chainWith(undefined).evaluate({ ...input, body: Buffer.from('{"a":1,"a":2}') });
  assert.deepEqual(!(refused instanceof Promise) && [refused.kind, refused.kind === 'refused' && refused.code], ['refused', 'invalid_json']);

  const remote = chainWith({ evaluate: async () => ({ action: 'deny', policyId: 'gw', reason: 'no' }) }).evaluate(input);
  assert.ok(remote instanceof Promise);
  assert.equal((await remote).kind, 'deny');

  // Over offloadBytes: a worker inspects it, the answer comes later.
  const metrics = createMetrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent', destination: new LogCapture() });
  const inspector = createInspector({ workers: 1, offloadBytes: 16, budgetMs: 10_000, maxQueue: 1 });
  try {
    const offloaded = createPolicyChain({ local: () => POLICY, remote: () => undefined, inspector, failMode: 'closed', metrics, logger }).evaluate(input);
    assert.ok(offloaded instanceof Promise);
    const r = await offloaded;
    assert.equal(r.kind === 'forward' && joined(r.body), '{"model":"m","messages":[{"role":"user","content":"hi [mail]"}]}');
  } finally {
    await inspector.close();
  }
});
