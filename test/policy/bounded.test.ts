// Policy evaluation in bounded time, through a real sidecar: hostile
// single-token prompts against the shipped example policy and against
// textbook catastrophic patterns, a 100 MiB body that must not hold up
// probes or small requests, and the fail mode when the budget runs out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { chatCompletion, sendJson, startUpstream } from '../helpers/upstream.ts';
import { startTestSidecar, TEST_API_KEY } from '../helpers/sidecar.ts';

const MIB = 1024 * 1024;
const EXAMPLE = new URL('../../examples/policy.yaml', import.meta.url).pathname;

async function policyFile(text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'fo-bounded-')), 'policy.yaml');
  await writeFile(file, text);
  return file;
}

/** Polls /healthz back to back until stopped; every answer must be a 200. */
function pollHealth(adminUrl: string): { stop(): Promise<number> } {
  let running = true;
  let answered = 0;
  const loop = (async () => {
    while (running) {
      const r = await fetch(`${adminUrl}/healthz`);
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      answered++;
    }
  })();
  return { async stop() { running = false; await loop; return answered; } };
}

test('the shipped example policy answers 1 MiB single-token prompts while /healthz keeps answering', async (t) => {
  const upstream = await startUpstream();
  const sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: EXAMPLE, FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  t.after(async () => { await sidecar.close(); await upstream.close(); });
  const client = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
  const health = pollHealth(sidecar.adminUrl);
  const prompts = [
    'a1'.repeat(MIB / 2), // letters and digits, the e-mail pattern's worst case
    'deadbeef'.repeat(MIB / 8), // a hex dump
    `${'x'.repeat(MIB)}@${'y'.repeat(MIB / 4)}`, // a run on both sides of an @
    `sk-${'A'.repeat(MIB)}`, // one huge key-looking token
  ];
  for (const content of prompts) {
    const completion = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
    assert.equal(completion.choices[0]?.message.content, 'Hello from the fake upstream');
  }
  assert.ok((await health.stop()) > 0);
  const forwarded = upstream.requests.map((r) => JSON.parse(r.body.toString()).messages[0].content as string);
  assert.equal(forwarded[0], prompts[0], 'nothing to redact in a single token');
  assert.equal(forwarded[1], prompts[1]);
  assert.equal(forwarded[2], prompts[2], 'no dot after the @: not an address');
  assert.equal(forwarded[3], '[redacted-key]', 'a key-looking token is still redacted');
  const lines = sidecar.logs.requests();
  assert.deepEqual(lines.map((l) => l.status), [200, 200, 200, 200]);
  assert.deepEqual(lines.map((l) => l.decision), ['allow', 'allow', 'allow', 'modify']);
});

test('textbook catastrophic patterns and globs against 1 MiB single-token prompts', async (t) => {
  const file = await policyFile(`
rules:
  - id: hostile-glob
    match: { input: { model: ["*a*a*a*a*a*a*b"] } }
    decision: deny
    reason: glob matched
  - id: hostile-redactions
    match: { channel: llm }
    decision: modify
    redact:
      - pattern: "(a+)+$"
        replacement: "[A]"
      - pattern: "(\\\\w+\\\\s?)*!"
        replacement: "[W]"
`);
  const upstream = await startUpstream();
  const sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: file, FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  t.after(async () => { await sidecar.close(); await upstream.close(); });
  const client = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
  const health = pollHealth(sidecar.adminUrl);
  const long = 'a'.repeat(MIB);

  await client.chat.completions.create({ model: long, messages: [{ role: 'user', content: `${long}?` }] });
  const first = JSON.parse(upstream.requests.at(-1)!.body.toString());
  assert.equal(first.model, '[A]', 'the glob did not match; the redaction of every string value did, in one pass');
  assert.equal(first.messages[0].content, `${long}?`, 'nothing ends in a run of a: untouched');
  await assert.rejects(
    client.chat.completions.create({ model: `${long}b`, messages: [{ role: 'user', content: 'x' }] }),
    (err: APIError) => err.status === 403 && /glob matched/.test(err.message),
  );
  await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: long }] });
  assert.equal(JSON.parse(upstream.requests.at(-1)!.body.toString()).messages[0].content, '[A]');
  assert.ok((await health.stop()) > 0);
});

test('a 100 MiB body under several redaction rules holds up neither /healthz nor small requests', async (t) => {
  // The example policy's redactions plus two more, all in the rule that matches.
  const file = await policyFile(`
rules:
  - id: scrub
    match: { channel: llm }
    decision: modify
    redact:
      - pattern: "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[A-Za-z]{2,}"
        replacement: "[redacted-email]"
      - pattern: "\\\\b(?:sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})\\\\b"
        replacement: "[redacted-key]"
      - pattern: "\\\\b\\\\d{3}-\\\\d{2}-\\\\d{4}\\\\b"
        replacement: "[ssn]"
      - pattern: "(?i)bearer [a-z0-9._-]+"
        replacement: "[token]"
`);
  // Headers arriving at the upstream, in order: the large request is
  // dispatched only once its evaluation is done.
  const order: string[] = [];
  const upstream = await startUpstream((req, res) => sendJson(res, 200, chatCompletion(String(JSON.parse(req.body.toString()).model))));
  upstream.server.prependListener('request', (req) => order.push(String(req.headers['x-test-name'])));
  const sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: file,
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_POLICY_BUDGET_MS: '300000',
  });
  t.after(async () => { await sidecar.close(); await upstream.close(); });

  const unit = 'mail bob@example.com, ssn 123-45-6789, then filler text with words and sk-not-a-key. ';
  const text = unit.repeat(Math.floor((100 * MIB - 200) / unit.length));
  const body = Buffer.from(JSON.stringify({ model: 'big', messages: [{ role: 'user', content: text }] }));
  assert.ok(body.length <= 104_857_600, 'under the default body cap');

  let sent!: () => void;
  const bodySent = new Promise<void>((resolve) => { sent = resolve; });
  const big = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${sidecar.url}/llm/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${TEST_API_KEY}`, 'x-test-name': 'big' },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body, () => sent());
  });
  // Every byte is on its way (the socket buffers hold little of 100 MiB):
  // from here the sidecar is finishing the read and evaluating.
  await bodySent;

  const health = await fetch(`${sidecar.adminUrl}/healthz`);
  assert.equal(health.status, 200);
  order.push('healthz answered');
  const small = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-name': 'small' },
    body: JSON.stringify({ model: 'small', messages: [{ role: 'user', content: 'mail bob@example.com' }] }),
  });
  assert.equal(small.status, 200);
  order.push('small answered');

  const answer = await big;
  assert.equal(answer.status, 200);
  assert.deepEqual(order, ['healthz answered', 'small', 'small answered', 'big'], 'the large body was evaluated while the loop served others');
  const forwarded = JSON.parse(upstream.requests.find((r) => r.headers['x-test-name'] === 'big')!.body.toString()).messages[0].content as string;
  assert.ok(forwarded.startsWith('mail [redacted-email], ssn [ssn], then filler'), forwarded.slice(0, 80));
  assert.ok(!forwarded.includes('bob@example.com'));
});

test('a budget overrun follows the fail mode: a provider-shaped 503 when closed, a counted fail_open when open', async (t) => {
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const prompt = `${'a1'.repeat(2 * MIB)} mail bob@example.com`;
  for (const mode of ['closed', 'open'] as const) {
    const sidecar = await startTestSidecar({
      FIRSTOPS_POLICY_FILE: EXAMPLE,
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_FAIL_MODE: mode,
      FIRSTOPS_POLICY_BUDGET_MS: '1',
      FIRSTOPS_POLICY_OFFLOAD_BYTES: '0',
    });
    const client = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${sidecar.url}/llm/openai/v1`, maxRetries: 0 });
    const before = upstream.requests.length;
    const create = client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] });
    if (mode === 'closed') {
      await assert.rejects(create, (err: APIError) =>
        err.status === 503 && err.code === 'policy_budget_exceeded' && /FIRSTOPS_POLICY_BUDGET_MS/.test(err.message));
      assert.equal(upstream.requests.length, before, 'nothing forwarded');
    } else {
      await create;
      assert.equal(upstream.requests.length, before + 1);
      assert.equal(upstream.requests.at(-1)!.body.length, Buffer.byteLength(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] })));
    }
    const outcome = mode === 'closed' ? 'fail_closed' : 'fail_open';
    assert.equal(await sidecar.metricValue('firstops_policy_decisions_total', { source: 'local', outcome }), 1);
    const warn = sidecar.logs.lines.find((l) => l.code === 'policy_budget_exceeded')!;
    assert.equal(warn.level, 'warn');
    assert.equal(warn.source, 'local');
    assert.equal(sidecar.logs.requests().at(-1)!.decision, outcome);
    await sidecar.close([prompt.slice(0, 64)]);
  }
});
