import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createResponseGateTransform } from '../../src/response/transform.ts';
import type { GateSummary } from '../../src/response/gate.ts';
import { issueRules } from './harness.ts';
import { chatToolStream, SAFE, SHELL_RM } from './streams.ts';

function collect(t: NodeJS.ReadableStream): Promise<string> {
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  return new Promise((resolve, reject) => {
    t.on('end', () => resolve(Buffer.concat(out).toString()));
    t.on('error', reject);
  });
}

test('Transform: allowed bytes flow through; a deny ends the readable side after the error event while the upstream is still read (and dropped)', async () => {
  const allowed = chatToolStream('hi', [SAFE]).join('');
  const t1 = createResponseGateTransform({ provider: 'openai', rules: issueRules });
  const out1 = collect(t1);
  t1.end(Buffer.from(allowed));
  assert.equal(await out1, allowed);

  let summary: GateSummary | undefined;
  const upstream = new PassThrough();
  const t2 = createResponseGateTransform({ provider: 'openai', rules: issueRules, onEnd: (s) => { summary = s; } });
  const out2 = collect(t2);
  upstream.pipe(t2);
  for (const e of chatToolStream('hi', [SHELL_RM])) upstream.write(e);
  const text = await out2;
  assert.match(text, /"code":"policy_denied"/);
  assert.equal(summary?.outcome, 'deny');
  // The upstream goes on; the transform keeps accepting (and dropping) until it ends.
  assert.equal(upstream.write('data: {"more":1}\n\n'), true);
  upstream.end();
  await new Promise((resolve) => t2.on('finish', resolve));
});

test('Transform: destroying it abandons the response (the client went away)', async () => {
  let summary: GateSummary | undefined;
  const t = createResponseGateTransform({ provider: 'openai', rules: issueRules, remote: () => new Promise(() => undefined), onEnd: (s) => { summary = s; } });
  t.on('data', () => undefined);
  for (const e of chatToolStream('', [SAFE])) t.write(e);
  t.destroy();
  await new Promise((resolve) => t.on('close', resolve));
  assert.equal(summary?.outcome, 'aborted');
});
