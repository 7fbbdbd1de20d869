import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileResponseRules } from '../../src/policy/response-rules.ts';
import { createStreamViewer } from '../../src/response/view.ts';
import { before, STREAM_CASES } from './cases.ts';
import { openGate, randomChunks, runGate, splits } from './harness.ts';
import { ISSUE_RULES, SAFE, SHELL_RM } from './streams.ts';

const rules = compileResponseRules([
  ...ISSUE_RULES,
  { id: 'no-key-material', target: 'text', match: { text: '*BEGIN PRIVATE KEY*' }, decision: 'deny', reason: 'key material in the answer' },
  { id: 'mask-cards', target: 'text', decision: 'modify', redact: [{ name: 'card', pattern: '\\b\\d{4}-\\d{4}-\\d{4}-\\d{4}\\b', replacement: '[card]' }] },
]);

const CARD = 'Your card 4111-1111-1111-1111 is on file, é 🌍.';
const PEM = 'Here: -----BEGIN PRIVATE KEY----- MIIE...';

function textOf(provider: string, bytes: Buffer): string {
  const viewer = createStreamViewer(provider);
  viewer.push(bytes);
  return viewer.end().text.map((t) => t.text).join('');
}

for (const c of STREAM_CASES) {
  test(`${c.name}, text rules: text no rule changes is held until its part is complete, then released byte for byte`, () => {
    const input = c.build('Plain answer, é 🌍.', [SAFE]).join('');
    const run = runGate(c.provider, [input], { rules });
    assert.equal(run.output().toString(), input);
    assert.deepEqual(run.held.map((h) => h.kind).sort(), ['text', 'tool_call']);
  });

  test(`${c.name}, text rules: a denied text part ends the stream; none of it passes`, () => {
    const events = c.build(PEM, []);
    const run = runGate(c.provider, [events.join('')], { rules });
    const out = run.output().toString();
    assert.ok(!out.includes('PRIVATE') && !out.includes('Here:'), out);
    assert.deepEqual(run.summary && [run.summary.outcome, run.summary.policyId], ['deny', 'no-key-material']);
    assert.match(out, /key material in the answer/);
  });

  test(`${c.name}, text rules: a pattern spanning deltas is redacted in every event that carries the text, the same at every split`, () => {
    const events = c.build(CARD, [SAFE]);
    const bytes = Buffer.from(events.join(''));
    const run = runGate(c.provider, [bytes], { rules });
    const out = run.output();
    assert.equal(run.summary?.outcome, 'modify');
    assert.ok(!out.toString().includes('1111'), 'no digit run of the card anywhere');
    assert.equal(textOf(c.provider, out), CARD.replace('4111-1111-1111-1111', '[card]'));
    assert.ok(out.toString().includes(SAFE.name), 'the call passes');
    const want = out.toString('latin1');
    for (const chunks of splits(bytes)) assert.equal(runGate(c.provider, chunks, { rules }).output().toString('latin1'), want);
    for (let seed = 1; seed <= 10; seed++) assert.equal(runGate(c.provider, randomChunks(bytes, seed), { rules }).output().toString('latin1'), want);
  });

  test(`${c.name}, text rules: a tool call after denied-free text is still governed`, () => {
    const events = c.build(CARD, [SHELL_RM]);
    const run = runGate(c.provider, [events.join('')], { rules });
    assert.deepEqual(run.summary && [run.summary.outcome, run.summary.policyId], ['deny', 'no-destructive-shell']);
    assert.ok(!run.output().toString().includes('1111'));
  });
}

test('without text rules, text streams live: it is out before the part ends', () => {
  const events = STREAM_CASES[2]!.build('live text', [SAFE]);
  const { gate, run } = openGate({ provider: 'anthropic' });
  const stop = events.findIndex((e) => e.includes('content_block_stop'));
  events.slice(0, stop).forEach((e) => gate.write(Buffer.from(e)));
  assert.equal(run.output().toString(), events.slice(0, stop).join(''));
});

test('with text rules, text waits for its part to end (Anthropic: the block stop), then goes out', () => {
  const events = STREAM_CASES[2]!.build('held text', [SAFE]);
  const { gate, run } = openGate({ provider: 'anthropic', rules });
  const stop = events.findIndex((e) => e.includes('content_block_stop'));
  events.slice(0, stop).forEach((e) => gate.write(Buffer.from(e)));
  // message_start only: the text block from its start, and the ping behind it, wait.
  assert.equal(run.output().toString(), before(events, 'content_block_start'));
  gate.write(Buffer.from(events[stop]!));
  assert.equal(run.output().toString(), events.slice(0, stop + 1).join(''));
});
