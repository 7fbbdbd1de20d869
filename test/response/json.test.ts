import { test } from 'node:test';
import assert from 'node:assert/strict';
import { governJsonResponse } from '../../src/response/json.ts';
import { compileResponseRules } from '../../src/policy/response-rules.ts';
import { viewOfJsonBody } from '../../src/response/view.ts';
import { issueRules } from './harness.ts';
import { anthropicBody, chatCompletionBody, geminiBody, ISSUE_RULES, KEY, responsesBody, SAFE, SHELL_RM, WITH_KEY, type ToolSpec } from './streams.ts';

const BODIES: ReadonlyArray<{ name: string; provider: string; body: (text: string, calls: readonly ToolSpec[]) => unknown }> = [
  { name: 'OpenAI Chat Completions', provider: 'openai', body: chatCompletionBody },
  { name: 'OpenAI Responses', provider: 'openai', body: responsesBody },
  { name: 'Anthropic Messages', provider: 'anthropic', body: anthropicBody },
  { name: 'Gemini', provider: 'gemini', body: geminiBody },
];

const bytes = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc, null, 1));

for (const b of BODIES) {
  test(`${b.name}: allow returns the same bytes, deny names the rule and the part, modify rewrites only the call`, () => {
    const allowed = bytes(b.body('ok', [SAFE]));
    const a = governJsonResponse(b.provider, allowed, issueRules);
    assert.equal(a.action, 'allow');
    assert.ok(a.action === 'allow' && a.body === allowed, 'the same Buffer');

    const d = governJsonResponse(b.provider, bytes(b.body('ok', [SAFE, SHELL_RM])), issueRules);
    assert.equal(d.action, 'deny');
    assert.ok(d.action === 'deny');
    assert.equal(d.policyId, 'no-destructive-shell');
    assert.equal(d.reason, 'destructive shell command in a tool call');

    const m = governJsonResponse(b.provider, bytes(b.body('ok é', [SAFE, WITH_KEY])), issueRules);
    assert.ok(m.action === 'modify');
    assert.equal(m.policyId, 'redact-keys-in-tool-calls');
    assert.equal(m.changes.length, 1);
    assert.ok(!m.body.toString().includes(KEY));
    const view = viewOfJsonBody(b.provider, m.body)!;
    assert.deepEqual(view.toolCalls.map((c) => c.arguments), [SAFE.args, { ...WITH_KEY.args, headers: { authorization: 'Bearer [redacted-key]' } }]);
    assert.equal(view.text.map((t) => t.text).join(''), 'ok é');
  });

  test(`${b.name}: text rules deny and redact text parts`, () => {
    const rules = compileResponseRules([
      ...ISSUE_RULES,
      { id: 'no-pem', target: 'text', match: { text: '*PRIVATE KEY*' }, decision: 'deny', reason: 'key material' },
      { id: 'mask', target: 'text', decision: 'modify', redact: [{ pattern: '\\d{4}-\\d{4}', replacement: '####' }] },
    ]);
    const d = governJsonResponse(b.provider, bytes(b.body('a -----BEGIN PRIVATE KEY-----', [])), rules);
    assert.deepEqual(d.action === 'deny' && [d.policyId, d.reason], ['no-pem', 'key material']);
    const m = governJsonResponse(b.provider, bytes(b.body('card 1234-5678', [SAFE])), rules);
    assert.ok(m.action === 'modify');
    assert.equal(viewOfJsonBody(b.provider, m.body)!.text.map((t) => t.text).join(''), 'card ####');
  });
}

test('a body that is not JSON cannot be governed once rules exist; with no rules it is not read', () => {
  assert.deepEqual(governJsonResponse('openai', Buffer.from('<html>'), issueRules), { action: 'error', code: 'response_unreadable' });
  const body = Buffer.from('<html>');
  const none = governJsonResponse('openai', body, compileResponseRules([]));
  assert.ok(none.action === 'allow' && none.body === body);
});

test('a rewrite the provider cannot carry is response_unmodifiable (object arguments read as text: nested too deeply)', () => {
  let action: unknown = KEY;
  for (let i = 0; i < 600; i++) action = { a: action };
  const body = Buffer.from(JSON.stringify({ object: 'response', output: [{ type: 'local_shell_call', call_id: 'c', action }] }));
  assert.deepEqual(governJsonResponse('openai', body, issueRules), { action: 'error', code: 'response_unmodifiable' });
});

test('bodies of other shapes (embeddings, errors) pass as they are', () => {
  for (const doc of [{ object: 'list', data: [{ embedding: [0.1] }] }, { error: { message: 'x' } }, [1, 2]]) {
    const body = bytes(doc);
    const v = governJsonResponse('openai', body, issueRules);
    assert.ok(v.action === 'allow' && v.body === body);
  }
});
