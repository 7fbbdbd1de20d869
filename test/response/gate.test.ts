import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileResponseRules } from '../../src/policy/response-rules.ts';
import { createResponseGate, type RemoteCallHook } from '../../src/response/gate.ts';
import type { PartVerdict, ToolCall } from '../../src/policy/response-types.ts';
import { createStreamViewer } from '../../src/response/view.ts';
import { before, STREAM_CASES } from './cases.ts';
import { issueRules, openGate, runGate } from './harness.ts';
import { anthropicToolStream, chatInterleaved, chatToolStream, KEY, SAFE, SHELL_LS, SHELL_RM, WITH_KEY } from './streams.ts';

const TEXT = 'Let me run that: é ✓ 🌍.';

function callsOf(provider: string, bytes: Buffer): ToolCall[] {
  const viewer = createStreamViewer(provider);
  viewer.push(bytes);
  return [...viewer.end().toolCalls];
}

for (const c of STREAM_CASES) {
  test(`${c.name}: allowed calls and text pass byte for byte`, () => {
    const input = c.build(TEXT, [SAFE, SHELL_LS]).join('');
    const run = runGate(c.provider, [input]);
    assert.equal(run.output().toString('utf8'), input);
    assert.equal(run.ended, true);
    assert.equal(run.summary?.outcome, 'allow');
    assert.equal(run.summary?.toolCalls, 2);
    assert.deepEqual(run.held.map((h) => [h.name, h.action]), [[SAFE.name, 'allow'], [SHELL_LS.name, 'allow']]);
  });

  test(`${c.name}: a denied call ends the stream with the provider's error; its name and arguments never pass`, () => {
    const events = c.build(TEXT, [SAFE, SHELL_RM, WITH_KEY]);
    const run = runGate(c.provider, [events.join('')]);
    const out = run.output().toString('utf8');
    assert.equal(out, before(events, SHELL_RM.name) + c.denyEvent);
    assert.ok(!out.includes('run_shell') && !out.includes('rm -rf') && !out.includes(SHELL_RM.id));
    assert.ok(!out.includes(WITH_KEY.name), 'events after the denied call are dropped');
    assert.ok(out.includes(SAFE.name), 'the allowed call before it was released');
    assert.deepEqual(run.summary && [run.summary.outcome, run.summary.policyId], ['deny', 'no-destructive-shell']);
    assert.deepEqual(run.held.find((h) => h.name === SHELL_RM.name)?.action, 'deny');
  });

  test(`${c.name}: a modified call is re-emitted with redacted arguments; everything else is unchanged`, () => {
    const events = c.build(TEXT, [SAFE, WITH_KEY]);
    const run = runGate(c.provider, [events.join('')]);
    const out = run.output();
    assert.ok(!out.toString().includes(KEY));
    const calls = callsOf(c.provider, out);
    assert.deepEqual(calls.map((x) => [x.id, x.name, x.arguments]), [
      [SAFE.id, SAFE.name, SAFE.args],
      [WITH_KEY.id, WITH_KEY.name, { ...WITH_KEY.args, headers: { authorization: 'Bearer [redacted-key]' } }],
    ]);
    assert.ok(out.toString().startsWith(before(events, WITH_KEY.name)), 'events before the modified call are byte for byte');
    assert.equal(run.summary?.outcome, 'modify');
    assert.equal(run.summary?.modified, 1);
  });

  test(`${c.name}: text before a call is written before the call is evaluated (event order, no timers)`, async () => {
    const events = c.build(TEXT, [SHELL_LS]);
    let answer: (v: PartVerdict) => void = () => undefined;
    const asked: string[] = [];
    const remote: RemoteCallHook = (call) => {
      asked.push(call.name);
      return new Promise((resolve) => { answer = resolve; });
    };
    const { gate, run, settled } = openGate({ provider: c.provider, remote });
    const prefix = before(events, SHELL_LS.name);
    for (const e of events) gate.write(Buffer.from(e));
    gate.end();
    assert.deepEqual(asked, [SHELL_LS.name], 'the remote was asked');
    assert.equal(run.output().toString(), prefix, 'the text went out while the call waits');
    assert.equal(run.ended, false);
    answer({ action: 'deny', policyId: 'remote-rule', reason: 'not now' });
    await settled;
    const tail = run.output().toString().slice(prefix.length);
    assert.match(tail, /not now/);
    assert.ok(!tail.includes(SHELL_LS.name));
  });
}

test('Chat: interleaved parallel calls are held together; a deny of one ends the stream where that call began', () => {
  const events = chatInterleaved(SAFE, SHELL_RM);
  const { gate, run } = openGate({ provider: 'openai' });
  const finish = events.findIndex((e) => e.includes('"finish_reason":"tool_calls"'));
  events.slice(0, finish).forEach((e) => gate.write(Buffer.from(e)));
  assert.equal(run.output().toString(), before(events, SAFE.name), 'both held until the choice finishes');
  events.slice(finish).forEach((e) => gate.write(Buffer.from(e)));
  gate.end();
  const out = run.output().toString();
  // In order: the allowed call's first event came before the denied one's, the rest of it after.
  assert.equal(out, before(events, SHELL_RM.name) + STREAM_CASES[0]!.denyEvent);
  assert.ok(!out.includes(SHELL_RM.name) && !out.includes('rm -rf'));
});

test('Chat: interleaved parallel calls, one modified: both arrive, in order, one redacted', () => {
  const events = chatInterleaved(SAFE, WITH_KEY);
  const out = runGate('openai', [events.join('')]).output();
  assert.deepEqual(callsOf('openai', out).map((x) => x.arguments), [SAFE.args, { ...WITH_KEY.args, headers: { authorization: 'Bearer [redacted-key]' } }]);
  const input = events.join('');
  assert.equal(out.toString().split('\n\n').length, input.split('\n\n').length, 'one event out per event in');
});

test('Anthropic: blocks are governed one by one; an allowed block is released when it stops, before the next one starts', () => {
  const events = anthropicToolStream(TEXT, [SAFE, SHELL_LS]);
  let answer: (v: PartVerdict) => void = () => undefined;
  const { gate, run } = openGate({ provider: 'anthropic', remote: (call) => (call.name === SAFE.name ? Promise.resolve({ action: 'allow', policyId: '', reason: '' }) : new Promise((r) => { answer = r; })) });
  for (const e of events) gate.write(Buffer.from(e));
  return Promise.resolve().then(() => {
    // The first block's verdict has come (a resolved promise); the second waits.
    assert.equal(run.output().toString(), before(events, SHELL_LS.name));
    answer({ action: 'allow', policyId: '', reason: '' });
    gate.end();
    return Promise.resolve();
  }).then(() => assert.equal(run.output().toString(), events.join('')));
});

test('malformed argument fragments are judged as text: rm -rf in an unterminated JSON string is still denied', () => {
  const chunk = (args: string, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c1', function: { name: 'bash', arguments: args } }] }, finish_reason: finish }] })}\n\n`;
  const run = runGate('openai', [chunk('{"command": "rm -'), chunk('rf /'), chunk('', 'tool_calls'), 'data: [DONE]\n\n']);
  assert.equal(run.summary?.outcome, 'deny');
  assert.ok(!run.output().toString().includes('bash'));
});

test('an event whose data is not JSON ends the stream: response_unreadable', () => {
  const events = chatToolStream('hi', []);
  const run = runGate('openai', [events[0]!, 'data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"bash"\n\n', events[1]!]);
  const out = run.output().toString();
  assert.ok(out.startsWith(events[0]!));
  assert.match(out, /"code":"response_unreadable"/);
  assert.ok(!out.includes('bash'));
  assert.equal(run.summary?.code, 'response_unreadable');
});

test('a call the stream ends inside of: denied by default; judged on what arrived with incomplete: evaluate', () => {
  const cut = (spec: typeof SAFE) => {
    const events = anthropicToolStream(TEXT, [spec]);
    return events.slice(0, events.findIndex((e) => e.includes('content_block_stop') && e.includes('"index":1')) - 1);
  };
  const denied = runGate('anthropic', [cut(SAFE).join('')]);
  assert.equal(denied.summary?.code, 'response_tool_call_incomplete');
  assert.ok(!denied.output().toString().includes(SAFE.name));
  assert.match(denied.output().toString(), /event: error\ndata: .*"type":"firstops_error","message":"the upstream response ended inside a tool call/);

  const judged: ToolCall[] = [];
  const allowed = runGate('anthropic', [cut(SAFE).join('')], { incomplete: 'evaluate', rules: { ...compileResponseRules([]), evaluateCall: (call) => { judged.push(call); return { action: 'allow', policyId: '', reason: '' }; } } });
  assert.equal(allowed.output().toString(), cut(SAFE).join(''));
  assert.equal(judged[0]?.complete, false);
  const partial = runGate('anthropic', [cut(SHELL_RM).join('')], { incomplete: 'evaluate' });
  assert.equal(partial.summary?.outcome, 'deny', 'what arrived already says rm -rf');
});

test('a stream that ends without [DONE] or finish_reason still releases a complete chat call only by the incomplete rule', () => {
  const events = chatToolStream('', [SAFE]).filter((e) => !e.includes('finish_reason":"tool_calls') && !e.includes('[DONE]'));
  assert.equal(runGate('openai', [events.join('')]).summary?.code, 'response_tool_call_incomplete');
  assert.equal(runGate('openai', [events.join('')], { incomplete: 'evaluate' }).output().toString(), events.join(''));
});

test('hold-back bounded by size: past maxHoldBytes the stream ends with response_hold_exceeded, text before it delivered', () => {
  const big = { ...SAFE, args: { blob: 'x'.repeat(5000) } };
  const events = chatToolStream(TEXT, [big]);
  const run = runGate('openai', [events.join('')], { maxHoldBytes: 2048 });
  const out = run.output().toString();
  assert.equal(run.summary?.code, 'response_hold_exceeded');
  assert.ok(out.startsWith(before(events, big.name)));
  assert.ok(!out.includes(big.name));
  // An incomplete event counts too: one event longer than the bound never completes.
  const one = runGate('openai', [`data: {"choices":[],"x":"${'y'.repeat(4096)}`], { maxHoldBytes: 2048 });
  assert.equal(one.summary?.code, 'response_hold_exceeded');
});

test('hold-back under the memory budget: the gate takes what it holds at its peak; refused, the stream ends with body_budget_exhausted', () => {
  const big = { ...SAFE, args: { blob: 'x'.repeat(5000) } };
  const events = chatToolStream(TEXT, [big]);
  const taken: number[] = [];
  const ok = runGate('openai', events, { reserve: (bytes) => (taken.push(bytes), true) });
  assert.equal(ok.output().toString(), events.join(''), 'allowed whole when the share has room');
  const peak = taken.reduce((a, b) => a + b, 0);
  assert.ok(peak >= 5000 && peak < 5000 + events.join('').length, `the peak held (${peak}) is taken once, not every event`);

  let left = 2048;
  const refused = runGate('openai', events, { reserve: (bytes) => (left -= bytes) >= 0 });
  assert.equal(refused.summary?.code, 'body_budget_exhausted');
  const out = refused.output().toString();
  assert.ok(out.startsWith(before(events, big.name)), 'text before the call was delivered');
  assert.ok(!out.includes(big.name), 'the held call never passes');
  assert.match(out, /"code":"body_budget_exhausted"/);
});

test('hold-back bounded by time: a call held past maxHoldMs ends the stream with response_hold_timeout', async () => {
  const events = chatToolStream(TEXT, [SAFE]);
  const { gate, run, settled } = openGate({ provider: 'openai', maxHoldMs: 20, remote: () => new Promise<PartVerdict>(() => undefined) });
  for (const e of events) gate.write(Buffer.from(e));
  await settled;
  assert.equal(run.summary?.code, 'response_hold_timeout');
  assert.ok(run.output().toString().startsWith(before(events, SAFE.name)));
  assert.ok(!run.output().toString().includes(SAFE.name));
  assert.equal(run.held[0]?.action, 'deny');
});

test('the held time of each call is reported (onHeld), from its first event to its release', async () => {
  let t = 1000;
  const events = chatToolStream('', [SAFE]);
  let answer: (v: PartVerdict) => void = () => undefined;
  const { gate, run, settled } = openGate({ provider: 'openai', now: () => t, remote: () => new Promise((r) => { answer = r; }) });
  const first = events.findIndex((e) => e.includes(SAFE.name));
  events.forEach((e, i) => { if (i === first) t = 1000; gate.write(Buffer.from(e)); t += 10; });
  gate.end();
  t = 1500;
  answer({ action: 'allow', policyId: 'r', reason: '' });
  await settled;
  assert.deepEqual(run.held, [{ key: 'c0.t0', kind: 'tool_call', name: SAFE.name, ms: 500, bytes: run.held[0]!.bytes, action: 'allow', policyId: 'r', source: 'remote' }]);
  assert.ok(run.held[0]!.bytes > 0);
});

test('remote: asked with the locally modified call; its deny denies, its modify modifies, its allow keeps the local change, a rejection is policy_unavailable', async () => {
  const events = chatToolStream('', [WITH_KEY]);
  const run = async (remote: RemoteCallHook) => {
    const { gate, run: r, settled } = openGate({ provider: 'openai', remote });
    for (const e of events) gate.write(Buffer.from(e));
    gate.end();
    await settled;
    return r;
  };
  let seen: ToolCall | undefined;
  const kept = await run(async (call, { local, view }) => {
    seen = call;
    assert.equal(local.action, 'modify');
    assert.equal(view().toolCalls.length, 1);
    return { action: 'allow', policyId: '', reason: '' };
  });
  assert.ok(seen && !seen.argumentsText.includes(KEY) && seen.argumentsText.includes('[redacted-key]'));
  assert.equal(kept.summary?.outcome, 'modify');
  assert.ok(!kept.output().toString().includes(KEY));

  const denied = await run(async () => ({ action: 'deny', policyId: 'gw', reason: 'gateway says no' }));
  assert.deepEqual([denied.summary?.outcome, denied.summary?.policyId], ['deny', 'gw']);

  const rewritten = await run(async () => ({ action: 'modify', policyId: 'gw', reason: '', value: { url: 'about:blank' }, text: '{"url":"about:blank"}' }));
  assert.deepEqual(callsOf('openai', rewritten.output())[0]?.arguments, { url: 'about:blank' });

  const failed = await run(() => Promise.reject(new Error('gateway down')));
  assert.equal(failed.summary?.code, 'policy_unavailable');
  assert.match(failed.output().toString(), /"code":"policy_unavailable"/);
});

test('a local deny is final: the remote is not asked', () => {
  let asked = false;
  const run = runGate('openai', [chatToolStream('', [SHELL_RM]).join('')], { remote: async () => { asked = true; return { action: 'allow', policyId: '', reason: '' }; } });
  assert.equal(run.summary?.outcome, 'deny');
  assert.equal(asked, false);
});

test('free events are written as views of the input: a chunk of whole free events is written as itself', () => {
  const chunk = Buffer.from(chatToolStream(TEXT, []).join(''));
  const writes: Buffer[] = [];
  const gate = createResponseGate({ provider: 'openai', rules: issueRules }, { write: (b) => writes.push(b), end: () => undefined });
  gate.write(chunk);
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.buffer, chunk.buffer);
  assert.equal(writes[0]!.length, chunk.length);
});

test('events without a tool call marker are not parsed while no call is open (an escaped key still is)', () => {
  // Not JSON, but free of markers: passes unread.
  assert.equal(runGate('openai', ['data: not json but harmless\n\n']).summary?.outcome, 'allow');
  const escaped = `data: {"choices":[{"index":0,"delta":{"tool\\u005fcalls":[{"index":0,"id":"x","function":{"name":"bash","arguments":"{\\"c\\":\\"rm -rf /\\"}"}}]},"finish_reason":"tool_calls"}]}\n\n`;
  const run = runGate('openai', [escaped]);
  assert.equal(run.summary?.outcome, 'deny');
  assert.ok(!run.output().toString().includes('bash'));
});

test('destroy abandons the response: nothing more is written, the remote is aborted', async () => {
  let signal: AbortSignal | undefined;
  const { gate, run } = openGate({ provider: 'openai', remote: (_c, ctx) => { signal = ctx.signal; return new Promise(() => undefined); } });
  for (const e of chatToolStream('', [SAFE])) gate.write(Buffer.from(e));
  gate.destroy();
  assert.equal(signal?.aborted, true);
  assert.equal(run.summary?.outcome, 'aborted');
  gate.write(Buffer.from('data: {}\n\n'));
  assert.equal(run.ended, false);
});

test('a stream that starts with a byte-order mark: its first event is still read, denied or rewritten', () => {
  const deny = chatToolStream('', [SHELL_RM]).slice(1);
  const run = runGate('openai', [`\ufeff${deny.join('')}`]);
  assert.equal(run.summary?.outcome, 'deny');
  const modify = chatToolStream('', [WITH_KEY]).slice(1);
  const out = runGate('openai', [`\ufeff${modify.join('')}`]).output();
  assert.ok(!out.toString().includes(KEY));
  assert.equal(callsOf('openai', out)[0]?.name, WITH_KEY.name);
});
