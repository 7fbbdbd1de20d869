// Windowed redaction of long strings gives what one replace over the whole value gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { compilePolicy } from '../../src/policy/local.ts';
import { cannotMatchSpace, sourceOffsets, WINDOW_BYTES, windowEnds } from '../../src/policy/windows.ts';
import { judge } from '../helpers/policy.ts';

test('cannotMatchSpace reads only what provably cannot match a space as safe', () => {
  for (const safe of ['[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', '\\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})\\b', '\\d{3}-\\d{4}', '(?i)secret', '\\S+@\\S+', '[!-~]+', 'a\\tb']) {
    assert.ok(cannotMatchSpace(safe), safe);
  }
  for (const unsafe of ['a b', 'a.b', '\\s+', '[^a]', '[ -~]', '\\x20', '\\u0020', '^secret', 'end$', '\\W', '\\D', '\\p{Zs}', '[[:space:]]', '[a\\s]', '(\\w+\\s?)*!', '\\Q a\\E', '[\\x00-z]', '\\Cx', '\\1']) {
    assert.ok(!cannotMatchSpace(unsafe), unsafe);
  }
});

test('windows end just after a space, at least WINDOW_BYTES apart; source offsets follow escapes', () => {
  const value = Buffer.from(`${'x'.repeat(WINDOW_BYTES + 5)} ${'y'.repeat(WINDOW_BYTES)} tail`);
  assert.deepEqual(windowEnds(value), [WINDOW_BYTES + 6, 2 * WINDOW_BYTES + 7, value.length]);
  assert.deepEqual(windowEnds(Buffer.from('no spaces at all'.replace(/ /g, '_'))), [16]);
  // "a\u0020b\n😀 c": unescaped a(1) space(1) b(1) \n(1) 😀(4) space(1) c(1)
  const source = Buffer.from('"a\\u0020b\\n\\ud83d\\ude00 c"');
  assert.deepEqual(sourceOffsets(source, 1, source.length - 1, [2, 4, 8, 9, 10]), [8, 11, 23, 24, 25]);
});

test('a long prompt redacted in windows equals the whole-string redaction, escapes and all', async () => {
  const policy = compilePolicy(await readFile(new URL('../../examples/policy.yaml', import.meta.url), 'utf8'), 'examples/policy.yaml');
  const unit = 'mail a.person@example.com or é😀 key sk-abcdefghijklmnopqrstuvwxyz0123 \n\t"quoted" ';
  const content = unit.repeat(Math.ceil((3 * WINDOW_BYTES) / unit.length));
  const input = { model: 'm', messages: [{ role: 'user', content }, { role: 'user', content: 'plain '.repeat(WINDOW_BYTES / 2) }] };
  const verdict = judge(policy, 'openai.v1.chat.completions', input);
  assert.equal(verdict.action, 'modify');
  const expected = content.replace(/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, '[redacted-email]').replace(/\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})\b/g, '[redacted-key]');
  const messages = verdict.rewritten?.messages as Array<{ content: string }>;
  assert.equal(messages[0]!.content, expected);
  assert.equal(messages[1]!.content, input.messages[1]!.content, 'an untouched long value stays as it was');
  if (verdict.action === 'modify') assert.ok(verdict.edits.length > 2, `one edit per changed window (${verdict.edits.length})`);
});
