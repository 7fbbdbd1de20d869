import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { compilePolicy, PolicyFileError } from '../../src/policy/local.ts';
import { toolCallOf } from '../../src/response/arguments.ts';
import { compileResponseRules } from '../../src/policy/response-rules.ts';
import { issueRules } from '../response/harness.ts';
import { KEY } from '../response/streams.ts';

const call = (name: string, args: unknown) => toolCallOf('k', 'id', name, typeof args === 'string' ? args : JSON.stringify(args));

test('the issue rules: a shell-looking tool with rm -rf anywhere in its arguments is denied', () => {
  for (const name of ['run_shell', 'bash', 'exec_command', 'open_terminal', 'shell']) {
    assert.deepEqual(issueRules.evaluateCall(call(name, { command: 'rm -rf /' })), { action: 'deny', policyId: 'no-destructive-shell', reason: 'destructive shell command in a tool call' }, name);
  }
  assert.equal(issueRules.evaluateCall(call('run_shell', { steps: [{ run: 'echo hi && rm -rf ~' }] })).action, 'deny', 'nested');
  assert.equal(issueRules.evaluateCall(call('run_shell', { command: 'rm\u0020-rf x' })).action, 'deny', 'escaped in JSON, matched parsed');
  assert.equal(issueRules.evaluateCall(call('run_shell', 'rm -rf / (not JSON)')).action, 'deny', 'raw text when not JSON');
  assert.equal(issueRules.evaluateCall(call('run_shell', '{"command":"rm -rf /", "command":"ls"}')).action, 'deny', 'duplicate keys: read as text');
  assert.equal(issueRules.evaluateCall(call('run_shell', { command: 'ls -la' })).action, 'allow');
  assert.equal(issueRules.evaluateCall(call('write_file', { content: 'rm -rf /' })).action, 'allow', 'not a shell');
});

test('the issue rules: API-key-looking strings are redacted in argument values, keys and structure kept', () => {
  const v = issueRules.evaluateCall(call('http_request', { headers: { authorization: `Bearer ${KEY}` }, list: [KEY, 1, true, null], [KEY]: 'key stays' }));
  assert.equal(v.action, 'modify');
  assert.ok(v.action === 'modify');
  assert.equal(v.policyId, 'redact-keys-in-tool-calls');
  assert.deepEqual(v.value, { headers: { authorization: 'Bearer [redacted-key]' }, list: ['[redacted-key]', 1, true, null], [KEY]: 'key stays' });
  assert.equal(v.text, JSON.stringify(v.value));
  const raw = issueRules.evaluateCall(call('custom', `token=${KEY};`));
  assert.ok(raw.action === 'modify');
  assert.equal(raw.text, 'token=[redacted-key];');
  assert.deepEqual(issueRules.evaluateCall(call('http_request', { url: 'https://x' })), { action: 'allow', policyId: 'redact-keys-in-tool-calls', reason: '' }, 'a modify rule that changes nothing allows');
});

test('field paths: dotted keys, array indices, * one level, ** any depth, numbers and booleans as text', () => {
  const rules = compileResponseRules([
    { id: 'cwd', match: { arguments: { 'options.cwd': '/' } }, decision: 'deny' },
    { id: 'first-file', match: { arguments: { 'files.0': '*.env' } }, decision: 'deny' },
    { id: 'any-host', match: { arguments: { 'targets.*.host': 'prod-*' } }, decision: 'deny' },
    { id: 'deep-force', match: { arguments: { 'plan.**.force': 'true' } }, decision: 'deny' },
    { id: 'both', match: { tool_name: 'pay', arguments: { amount: '1????*', currency: 'USD' } }, decision: 'deny' },
  ]);
  const id = (args: unknown, name = 't') => rules.evaluateCall(call(name, args)).policyId;
  assert.equal(id({ options: { cwd: '/' } }), 'cwd');
  assert.equal(id({ options: { cwd: '/tmp' } }), '');
  assert.equal(id({ files: ['.env.bak', 'a'] }), '', 'glob is anchored');
  assert.equal(id({ files: ['prod.env', 'a'] }), 'first-file');
  assert.equal(id({ files: ['a', 'prod.env'] }), '');
  assert.equal(id({ targets: [{ host: 'dev-1' }, { host: 'prod-2' }] }), 'any-host');
  assert.equal(id({ targets: { a: { host: 'prod-2' } } }), 'any-host');
  assert.equal(id({ plan: { force: true } }), 'deep-force', '** matches zero levels');
  assert.equal(id({ plan: { steps: [{ x: { force: true } }] } }), 'deep-force');
  assert.equal(id({ amount: 12345, currency: 'USD' }, 'pay'), 'both');
  assert.equal(id({ amount: 12345, currency: 'EUR' }, 'pay'), '');
  assert.equal(id({ ['__proto__']: { cwd: '/' } }), '');
});

test('text rules match and redact text parts only; tool_call rules never see text', () => {
  const rules = compileResponseRules([
    { id: 'no-pem', target: 'text', match: { text: '*BEGIN PRIVATE KEY*' }, decision: 'deny', reason: 'key material' },
    { id: 'mask', target: 'text', decision: 'modify', redact: [{ pattern: '\\d{4}-\\d{4}', replacement: '####' }] },
  ]);
  assert.equal(rules.governsText, true);
  assert.equal(rules.evaluateText({ key: 'c0', text: 'x\n-----BEGIN PRIVATE KEY-----\n' }).policyId, 'no-pem');
  const v = rules.evaluateText({ key: 'c0', text: 'card 1234-5678 ok' });
  assert.ok(v.action === 'modify');
  assert.equal(v.text, 'card #### ok');
  assert.equal(rules.evaluateCall(call('x', { a: '1234-5678' })).action, 'allow');
  assert.equal(issueRules.governsText, false);
});

test('errors name the rule: a pattern RE2 refuses, a bad glob, a bad field path, a schema violation', () => {
  const throwsWith = (section: unknown, re: RegExp) => assert.throws(() => compileResponseRules(section), (err: unknown) => err instanceof PolicyFileError && re.test(err.message));
  throwsWith([{ id: 'a', decision: 'modify', redact: [{ pattern: '(a)\\1' }] }], /^responses\[0\] \(id "a"\)\.redact\[0\]: pattern "\(a\)\\\\1" cannot be used: .*RE2 syntax/);
  throwsWith([{ id: 'ok', decision: 'allow' }, { id: 'b', match: { arguments: { 'a..b': '*' } }, decision: 'deny' }], /^responses\[1\] \(id "b"\)\.match\.arguments: field path "a\.\.b" cannot be used/);
  throwsWith([{ id: 'c', match: { arguments: { '**.x.**': '*' } }, decision: 'deny' }], /at most one `\*\*`/);
  throwsWith([{ id: 'd', decision: 'deny', redact: [{ pattern: 'x' }] }], /policy does not match .*responses\/0/);
  throwsWith([{ id: 'e', target: 'text', match: { tool_name: 'x' }, decision: 'deny' }], /responses\/0\/match\/tool_name/);
  throwsWith([{ id: 'f', match: { text: 'x' }, decision: 'deny' }], /responses\/0\/match\/text/);
  throwsWith([{ id: 'g', decision: 'maybe' }], /responses\/0\/decision/);
  throwsWith([{ id: 'h', decision: 'deny', extra: 1 }], /additional properties/);
  throwsWith({ id: 'x' }, /must be array/);
  assert.equal(compileResponseRules(undefined).ruleCount, 0);
});

test('the policy file: a responses section passes the loader\'s schema, and the shipped example compiles', () => {
  const text = readFileSync(new URL('../response/policy.yaml', import.meta.url), 'utf8');
  const policy = compilePolicy(text, 'test/response/policy.yaml');
  assert.deepEqual(policy.ruleIds, ['block-unapproved-models', 'redact-secrets-in-prompts']);
  const rules = compileResponseRules((parseYaml(text) as { responses: unknown }).responses);
  assert.deepEqual(rules.ruleIds, ['no-destructive-shell', 'redact-keys-in-tool-calls']);
  assert.equal(rules.evaluateCall(call('bash', { cmd: 'sudo rm -rf /' })).action, 'deny');
  assert.equal(rules.evaluateCall(call('f', { k: KEY })).action, 'modify');
  assert.throws(() => compilePolicy(`${text}\n  - id: broken\n    decision: modify\n`, 'x'), /responses\/2/);
});
