import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { inspect, type InspectInput } from '../../src/policy/inspect.ts';
import { compilePolicy } from '../../src/policy/local.ts';
import { rewrittenBytes } from '../helpers/policy.ts';
import { createInspector } from '../../src/policy/pool.ts';

const example = compilePolicy(await readFile(new URL('../../examples/policy.yaml', import.meta.url), 'utf8'), 'examples/policy.yaml');

function input(body: string | Buffer, contentType: string | undefined = 'application/json'): InspectInput {
  return { toolName: 'openai.v1.chat.completions', channel: 'llm', body: Buffer.isBuffer(body) ? body : Buffer.from(body), contentType, contentTypeCount: 1 };
}
const chat = (content: string, model = 'gpt-4o'): string => JSON.stringify({ model, messages: [{ role: 'user', content }] });

test('a worker gives the inline answer for every kind of body', async (t) => {
  const pool = createInspector({ workers: 1, offloadBytes: 0, budgetMs: 60_000, maxQueue: 8 });
  t.after(() => pool.close());
  const bodies: Array<[string, string | undefined]> = [
    [chat('mail bob@example.com please'), 'application/json'],
    [chat('nothing to see'), 'application/json'],
    [chat('x', 'gpt-5-preview'), 'application/json'],
    ['{"a":1,"a":2}', 'application/json'],
    ['{"a":', 'application/json'],
    ['plain text', 'text/plain'],
    ['[1,2]', 'application/json'],
  ];
  for (const [body, type] of bodies) {
    const inline = inspect(input(body, type), example);
    const offloaded = await pool.inspect(input(body, type), example);
    assert.deepEqual(offloaded, inline, body);
    if (offloaded.kind === 'inspected' && offloaded.local?.action === 'modify') assert.ok(offloaded.local.edits.every((e) => Buffer.isBuffer(e.bytes)));
  }
  const body = input(chat('mail bob@example.com please'));
  const modified = await pool.inspect(body, example);
  assert.ok(modified.kind === 'inspected' && modified.local?.action === 'modify');
  assert.equal(JSON.parse(rewrittenBytes(body.body, modified.local).toString()).messages[0].content, 'mail [redacted-email] please');
});

test('small bodies stay inline; large ones leave the event loop free', async (t) => {
  const pool = createInspector({ workers: 1, offloadBytes: 64 * 1024, budgetMs: 60_000, maxQueue: 8 });
  t.after(() => pool.close());
  const small = pool.inspect(input(chat('hi')), example);
  let ticked = false;
  setImmediate(() => { ticked = true; });
  await small;
  assert.equal(ticked, false, 'an inline inspection answers before the loop turns');

  // 8 MiB of one token: the loop turns (timers fire) while a worker inspects it.
  let turns = 0;
  const interval = setInterval(() => turns++, 1);
  const big = await pool.inspect(input(chat('a1'.repeat(4 * 1024 * 1024))), example);
  clearInterval(interval);
  assert.equal(big.kind, 'inspected');
  assert.ok(turns > 0, 'timers ran while the body was inspected');
});

test('the budget bounds a large evaluation; the fail mode then decides', async (t) => {
  const pool = createInspector({ workers: 1, offloadBytes: 0, budgetMs: 1, maxQueue: 8 });
  t.after(() => pool.close());
  const outcome = await pool.inspect(input(chat('a1'.repeat(8 * 1024 * 1024))), example);
  assert.equal(outcome.kind, 'unfinished');
  if (outcome.kind === 'unfinished') assert.match(outcome.reason, /exceeded its budget of 1 ms \(FIRSTOPS_POLICY_BUDGET_MS\)/);
});

test('a full queue answers at once; a client that leaves frees its place', async (t) => {
  const pool = createInspector({ workers: 1, offloadBytes: 0, budgetMs: 60_000, maxQueue: 1 });
  t.after(() => pool.close());
  const big = input(chat('a1'.repeat(2 * 1024 * 1024)));
  const running = pool.inspect(big, example);
  const gone = new AbortController();
  const waiting = pool.inspect(big, example, { signal: gone.signal });
  const refused = await pool.inspect(big, example);
  assert.equal(refused.kind, 'unfinished');
  if (refused.kind === 'unfinished') assert.match(refused.reason, /already waiting for a policy worker/);
  gone.abort();
  assert.deepEqual(await waiting, { kind: 'aborted' });
  assert.equal((await running).kind, 'inspected');
  assert.equal((await pool.inspect(big, example)).kind, 'inspected', 'the worker takes new work');
});

test('a new policy version reaches the worker; closing fails what waits', async () => {
  const pool = createInspector({ workers: 1, offloadBytes: 0, budgetMs: 60_000, maxQueue: 8 });
  const deny = compilePolicy('rules: [{ id: no, decision: deny, reason: closed }]', 'v2');
  const body = input(chat('hello'));
  assert.equal((await pool.inspect(body, example)).kind, 'inspected');
  const second = await pool.inspect(body, deny);
  assert.ok(second.kind === 'inspected' && second.local?.action === 'deny' && second.local.policyId === 'no');
  const none = await pool.inspect(body, undefined);
  assert.ok(none.kind === 'inspected' && none.local === undefined);
  const pending = pool.inspect(input(chat('a1'.repeat(4 * 1024 * 1024))), example);
  await pool.close();
  assert.deepEqual(await pending, { kind: 'unfinished', reason: 'the sidecar is shutting down' });
  assert.deepEqual(await pool.inspect(body, example), { kind: 'unfinished', reason: 'the sidecar is shutting down' });
});

test('options are validated when the inspector is built', () => {
  assert.throws(() => createInspector({ workers: 0, offloadBytes: 0, budgetMs: 1, maxQueue: 1 }), /workers must be an integer >= 1/);
  assert.throws(() => createInspector({ workers: 1, offloadBytes: -1, budgetMs: 1, maxQueue: 1 }), /offloadBytes/);
});
