import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { PolicyFileError, compilePolicy } from '../../src/policy/local.ts';
import { judge } from '../helpers/policy.ts';

const POLICY = `
version: 1
default: allow
rules:
  - id: no-preview
    match: { tool_name: "openai.*", input: { model: ["*-preview", "o1-pro*"] } }
    decision: deny
    reason: preview models are not approved
  - id: nested
    match: { input: { "metadata.tier": free } }
    decision: deny
    reason: free tier
  - id: redact
    match: { channel: llm }
    decision: modify
    redact:
      - pattern: "[\\\\w.]+@[\\\\w.]+"
        replacement: "[email]"
`;

test('first matching rule decides; globs and dotted input paths match', async () => {
  const policy = compilePolicy(POLICY, 'inline');
  assert.equal(policy.ruleCount, 3);
  const deny = judge(policy, 'openai.v1.chat.completions', { model: 'gpt-5-preview' });
  assert.deepEqual(deny, { action: 'deny', policyId: 'no-preview', reason: 'preview models are not approved' });
  const other = judge(policy, 'anthropic.v1.messages', { model: 'gpt-5-preview' });
  assert.equal(other.action, 'allow', 'tool_name glob does not match anthropic');
  const nested = judge(policy, 'x.y', { metadata: { tier: 'free' } });
  assert.equal(nested.policyId, 'nested');
});

test('modify redacts every string value, keys untouched; nothing to redact is an allow', async () => {
  const policy = compilePolicy(POLICY, 'inline');
  const input = { model: 'm', messages: [{ role: 'user', content: 'mail a.b@c.org or d@e.io' }], 'x@y.z': 1, n: 3 };
  const verdict = judge(policy, 'x.y', input);
  assert.equal(verdict.action, 'modify');
  if (verdict.action !== 'modify') return;
  assert.deepEqual(verdict.rewritten, { model: 'm', messages: [{ role: 'user', content: 'mail [email] or [email]' }], 'x@y.z': 1, n: 3 });
  assert.equal(input.messages[0]!.content, 'mail a.b@c.org or d@e.io', 'the original is not mutated');
  const clean = judge(policy, 'x.y', { model: 'm', messages: [] });
  assert.deepEqual(clean, { action: 'allow', policyId: 'redact', reason: '' });
});

test('default deny with its reason', async () => {
  const policy = compilePolicy('{"default":"deny","default_reason":"closed by default","rules":[{"id":"ok","match":{"input":{"model":"gpt-4o*"}},"decision":"allow"}]}', 'json');
  assert.equal(judge(policy, 'a.b', { model: 'gpt-4o-mini' }).action, 'allow');
  assert.deepEqual(judge(policy, 'a.b', { model: 'other' }), { action: 'deny', policyId: 'default', reason: 'closed by default' });
});

test('invalid documents are refused with the schema path', () => {
  assert.throws(() => compilePolicy('rules: [{id: a, decision: maybe}]', 'f'), (e: Error) => e instanceof PolicyFileError && /\/rules\/0\/decision/.test(e.message));
  assert.throws(() => compilePolicy('rules: [{id: a, decision: modify}]', 'f'), /must have required property 'redact'/);
  assert.throws(() => compilePolicy('rules: []\nextra: 1', 'f'), /must NOT have additional properties/);
  assert.throws(() => compilePolicy('rules: [{id: a, decision: modify, redact: [{pattern: "("}]}]', 'f'), /redact\[0\]: pattern "\(" cannot be used: missing \)/);
  assert.throws(() => compilePolicy('rules: [\n', 'f'), /not valid YAML\/JSON/);
  assert.throws(() => compilePolicy('rules: []\nrules: []', 'f'), /not valid YAML\/JSON/);
});

test('the shipped example policy compiles', async () => {
  const text = await readFile(new URL('../../examples/policy.yaml', import.meta.url), 'utf8');
  const policy = compilePolicy(text, 'examples/policy.yaml');
  assert.ok(policy.ruleCount >= 2);
  const verdict = judge(policy, 'openai.v1.chat.completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'key sk-abcdefghijklmnopqrstuvwxyz0123' }] });
  assert.equal(verdict.action, 'modify');
});
