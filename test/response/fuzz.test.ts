import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStreamViewer } from '../../src/response/view.ts';
import { STREAM_CASES } from './cases.ts';
import { issueRules, randomChunks, runGate, splits } from './harness.ts';
import { compileResponseRules } from '../../src/policy/response-rules.ts';
import { chatInterleaved, ISSUE_RULES, SAFE, SHELL_LS, SHELL_RM, WITH_KEY, type ToolSpec } from './streams.ts';

const TEXT = 'ok: é🌍';
const DECISIONS: ReadonlyArray<{ name: string; calls: readonly ToolSpec[]; outcome: string }> = [
  { name: 'allow', calls: [SHELL_LS], outcome: 'allow' },
  { name: 'deny', calls: [SAFE, SHELL_RM], outcome: 'deny' },
  { name: 'modify', calls: [WITH_KEY], outcome: 'modify' },
];

function outputOf(provider: string, chunks: readonly Buffer[]): string {
  const run = runGate(provider, chunks);
  assert.equal(run.ended, true);
  return run.output().toString('latin1');
}

function crlf(events: readonly string[]): string[] {
  return events.map((e) => e.replace(/\r?\n/g, '\r\n'));
}

for (const c of STREAM_CASES) {
  for (const d of DECISIONS) {
    test(`${c.name}, ${d.name}: every split at every byte boundary gives the same output`, () => {
      for (const events of [c.build(TEXT, d.calls), crlf(c.build(TEXT, d.calls))]) {
        const bytes = Buffer.from(events.join(''), 'utf8');
        const run = runGate(c.provider, [bytes]);
        assert.equal(run.summary?.outcome, d.outcome);
        const want = run.output().toString('latin1');
        if (d.name === 'allow') assert.equal(want, bytes.toString('latin1'), 'allowed output is the input');
        for (const chunks of splits(bytes)) assert.equal(outputOf(c.provider, chunks), want, `split ${chunks[0]!.length}`);
        for (let seed = 1; seed <= 30; seed++) assert.equal(outputOf(c.provider, randomChunks(bytes, seed)), want, `seed ${seed}`);
      }
    });
  }
}

test('Chat, interleaved parallel calls: every split gives the same output, allow and deny', () => {
  for (const events of [chatInterleaved(SAFE, SHELL_LS), chatInterleaved(SAFE, SHELL_RM), chatInterleaved(WITH_KEY, SAFE)]) {
    const bytes = Buffer.from(events.join(''));
    const want = runGate('openai', [bytes]).output().toString('latin1');
    for (const chunks of splits(bytes)) assert.equal(outputOf('openai', chunks), want);
  }
});

/** Seeded mutations: bytes flipped, dropped, duplicated; events dropped, repeated, swapped, cut short. */
function mutate(events: readonly string[], seed: number): Buffer {
  let s = seed >>> 0;
  const rand = (n: number): number => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s % n;
  };
  let list = [...events];
  const ops = 1 + rand(3);
  for (let k = 0; k < ops && list.length > 0; k++) {
    const i = rand(list.length);
    switch (rand(6)) {
      case 0: list.splice(i, 1); break;
      case 1: list.splice(i, 0, list[i]!); break;
      case 2: if (i + 1 < list.length) [list[i], list[i + 1]] = [list[i + 1]!, list[i]!]; break;
      case 3: list = list.slice(0, i); break;
      default: {
        const e = Buffer.from(list[i]!, 'utf8');
        const at = rand(e.length);
        const chars = '{}[]",:\\ \n\rax0';
        e[at] = chars.charCodeAt(rand(chars.length));
        list[i] = e.toString('latin1');
        // latin1 on purpose: a mutated multi-byte character stays mutated bytes.
        return Buffer.concat([Buffer.from(list.slice(0, i).join(''), 'utf8'), Buffer.from(list[i], 'latin1'), Buffer.from(list.slice(i + 1).join(''), 'utf8')]);
      }
    }
  }
  return Buffer.from(list.join(''), 'utf8');
}

test('mutated streams (malformed fragments, lost, repeated or reordered events, cut short): every call the client can assemble is one the rules allow as it is (no deny, nothing left to redact)', () => {
  let denied = 0;
  let runs = 0;
  for (const c of STREAM_CASES) {
    for (const calls of [[SAFE, SHELL_RM], [WITH_KEY, SHELL_RM], [SHELL_RM]]) {
      const events = c.build(TEXT, calls);
      for (let seed = 1; seed <= 150; seed++) {
        const input = mutate(events, seed * 7919 + calls.length);
        const run = runGate(c.provider, randomChunks(input, seed));
        runs++;
        assert.equal(run.ended, true);
        const out = run.output();
        if (run.summary?.outcome === 'deny' || run.summary?.outcome === 'error') denied++;
        const viewer = createStreamViewer(c.provider);
        viewer.push(out);
        for (const call of viewer.end().toolCalls) {
          const verdict = issueRules.evaluateCall(call);
          assert.equal(verdict.action, 'allow', `${c.name} seed ${seed}: ${call.name} ${call.argumentsText} reached the client (${verdict.policyId})`);
        }
      }
    }
  }
  assert.ok(denied > runs / 2, `most mutated streams still carry the denied call: ${denied}/${runs}`);
});

const TEXT_RULES = compileResponseRules([
  ...ISSUE_RULES,
  { id: 'no-pem', target: 'text', match: { text: '*PRIVATE KEY*' }, decision: 'deny' },
  { id: 'mask', target: 'text', decision: 'modify', redact: [{ pattern: '\\d{4}-\\d{4}', replacement: '####' }] },
]);

test('mutated streams with text rules: every text part and call the client can assemble is one the rules allow as it is', () => {
  let runs = 0;
  for (const c of STREAM_CASES) {
    for (const [text, calls] of [['card 1234-5678 and more text here', [SAFE]], ['-----BEGIN PRIVATE KEY-----', []], ['card 1234-5678', [WITH_KEY]]] as const) {
      const events = c.build(text, calls);
      for (let seed = 1; seed <= 100; seed++) {
        const input = mutate(events, seed * 104729 + text.length);
        const run = runGate(c.provider, randomChunks(input, seed), { rules: TEXT_RULES });
        runs++;
        assert.equal(run.ended, true);
        const viewer = createStreamViewer(c.provider);
        viewer.push(run.output());
        const view = viewer.end();
        for (const part of view.text) assert.equal(TEXT_RULES.evaluateText(part).action, 'allow', `${c.name} seed ${seed}: text ${JSON.stringify(part.text)} reached the client`);
        for (const call of view.toolCalls) assert.equal(TEXT_RULES.evaluateCall(call).action, 'allow', `${c.name} seed ${seed}: ${call.argumentsText}`);
      }
    }
  }
  assert.ok(runs > 0);
});
