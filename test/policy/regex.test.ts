import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyFileError, compilePolicy } from '../../src/policy/local.ts';
import { judge } from '../helpers/policy.ts';
import { compileGlobs, globSource } from '../../src/policy/regex.ts';

const MIB = 1024 * 1024;


/** A modify rule redacting with each pattern in turn. */
function redacting(...patterns: string[]): string {
  return JSON.stringify({ rules: [{ id: 'scrub', match: { channel: 'llm' }, decision: 'modify', redact: patterns.map((pattern) => ({ pattern, replacement: '[x]' })) }] });
}

test('textbook catastrophic patterns answer on 1 MiB single-token input (RE2: no backtracking)', () => {
  // Each of these backtracks exponentially or polynomially in a backtracking
  // engine on its input; on RE2 each is one linear pass. The test finishing
  // at all is the assertion: before, each ran for minutes.
  const cases: Array<[string, string]> = [
    ['(a+)+$', `${'a'.repeat(MIB)}!`],
    ['(\\w+\\s?)*!', 'a'.repeat(MIB)],
    ['[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', 'a1'.repeat(MIB / 2)],
  ];
  for (const [pattern, text] of cases) {
    const policy = compilePolicy(redacting(pattern), 'inline');
    assert.equal(judge(policy, 'openai.v1.chat.completions', { prompt: text }).action, 'allow', `${pattern}: nothing to redact`);
  }
  // And they still match what they should.
  const hit = judge(compilePolicy(redacting('(\\w+\\s?)*!'), 'inline'), 'a.b', { prompt: 'hello world! ok' });
  assert.equal(hit.action, 'modify');
  if (hit.action === 'modify') assert.equal(hit.rewritten?.prompt, '[x] ok');
});

test('globs are anchored, `*` and `?` only, everything else literal, linear on long values', () => {
  assert.equal(globSource('a.b*c?(d)[e]{f}|g^$+\\'), 'a\\.b.*c.\\(d\\)\\[e\\]\\{f\\}\\|g\\^\\$\\+\\\\');
  const glob = compileGlobs(['gpt-4o*', '*-preview']);
  assert.ok(glob.test('gpt-4o-mini'));
  assert.ok(glob.test('o1-preview'));
  assert.ok(!glob.test('xgpt-4o'));
  assert.ok(compileGlobs('a?c').test('a\nc'), '`?` spans a newline');
  assert.ok(compileGlobs('*').test('line1\nline2'));
  // A polynomial-backtracking glob against a long attacker-chosen value.
  const hostile = compileGlobs('*a*a*a*a*a*a*b');
  assert.equal(hostile.test('a'.repeat(MIB)), false);
  assert.equal(hostile.test(`${'a'.repeat(MIB)}b`), true);
  const policy = compilePolicy(JSON.stringify({ rules: [{ id: 'm', match: { input: { model: '*a*a*a*a*a*a*b' } }, decision: 'deny' }] }), 'inline');
  assert.equal(judge(policy, 'a.b', { model: 'a'.repeat(MIB) }).action, 'allow');
});

test('patterns RE2 cannot run are refused at load, naming the rule and the pattern', () => {
  const refused: Array<[string, RegExp]> = [
    ['(a)\\1', /invalid escape sequence: \\1/],
    ['(?=secret)\\w+', /invalid perl operator: \(\?=/],
    ['(?<=key:)\\w+', /invalid perl operator: \(\?<=/],
    ['(?!x)y', /invalid perl operator: \(\?!/],
    ['(?<n>a)\\k<n>', /invalid escape sequence: \\k/],
    ['a++', /bad repetition operator: \+\+/],
    ['x{1001}', /invalid repetition size/],
  ];
  for (const [pattern, why] of refused) {
    const text = JSON.stringify({ rules: [{ id: 'ok', decision: 'allow' }, { id: 'scrub-keys', match: { channel: 'llm' }, decision: 'modify', redact: [{ pattern: 'fine' }, { pattern }] }] });
    assert.throws(
      () => compilePolicy(text, 'inline'),
      (e: Error) => e instanceof PolicyFileError &&
        e.message.includes('rules[1] (id "scrub-keys").redact[1]') &&
        e.message.includes(JSON.stringify(pattern)) &&
        why.test(e.message) &&
        /RE2 syntax/.test(e.message),
      pattern,
    );
  }
});

test('flags and replacement groups keep working on RE2', () => {
  const policy = compilePolicy(JSON.stringify({ rules: [{ id: 'r', decision: 'modify', redact: [
    { pattern: 'token=(\\w+)', replacement: 'token=<$1:hidden>' },
    { pattern: '^secret$', flags: 'im', replacement: '[line]' },
    { pattern: 'a.b', flags: 's', replacement: '[ab]' },
  ] }] }), 'inline');
  const verdict = judge(policy, 'a.b', { x: 'token=abc and\nSECRET\nthen a\nb' });
  assert.equal(verdict.action, 'modify');
  if (verdict.action === 'modify') assert.equal(verdict.rewritten?.x, 'token=<abc:hidden> and\n[line]\nthen [ab]');
});
