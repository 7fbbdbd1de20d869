// The in-flight budget on a real sidecar: declared, chunked and lying
// lengths, refusals that disturb nothing in flight, shares that come back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, sendJson, chatCompletion, type FakeUpstream } from '../helpers/upstream.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { rawRequest } from '../helpers/raw.ts';

const KIB = 1024;
const BUDGET = 1024 * KIB;
let upstream: FakeUpstream;
let sidecar: TestSidecar;
let port: number;
/** Requests the upstream holds until released, by prompt text. */
const held = new Map<string, () => void>();

before(async () => {
  upstream = await startUpstream((req, res) => {
    const text = (JSON.parse(req.body.toString()) as { messages: Array<{ content: string }> }).messages[0]!.content;
    if (text.startsWith('hold')) held.set(text.slice(0, 8), () => sendJson(res, 200, chatCompletion()));
    else sendJson(res, 200, chatCompletion());
  });
  const dir = await mkdtemp(join(tmpdir(), 'fo-budget-'));
  await writeFile(join(dir, 'p.yaml'), 'rules: []\n');
  sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_MEMORY_BUDGET_BYTES: String(BUDGET),
    FIRSTOPS_MAX_BODY_BYTES: String(2048 * KIB),
  });
  port = sidecar.sidecar.proxyAddress.port;
});
after(async () => {
  await sidecar.close();
  await upstream.close();
});

function chat(text: string, size: number): Buffer {
  const head = `{"model":"m","messages":[{"role":"user","content":"${text}`;
  const tail = '"}]}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail);
}

function post(body: Buffer, chunked = false): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: { error?: { code?: string; type?: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request(`http://127.0.0.1:${port}/llm/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length }) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(Buffer.concat(chunks).toString() || '{}') }));
    });
    req.on('error', reject);
    if (chunked) for (let at = 0; at < body.length; at += 16 * KIB) req.write(body.subarray(at, at + 16 * KIB));
    req.end(chunked ? undefined : body);
  });
}

const inUse = () => sidecar.metricValue('firstops_memory_budget_bytes', { state: 'in_use' });

test('a declared body that does not fit is refused before it is read, provider-shaped, with Retry-After', async () => {
  const before = upstream.requests.length;
  const refused = await post(chat('big', 600 * KIB));
  assert.equal(refused.status, 503);
  assert.equal(refused.json.error?.code, 'body_budget_exhausted');
  assert.equal(refused.json.error?.type, 'firstops_error', 'the OpenAI envelope');
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(upstream.requests.length, before, 'nothing forwarded');
  assert.ok((await sidecar.metricValue('firstops_memory_budget_refusals_total', { route: 'llm' })) >= 1);
  assert.equal(await inUse(), 0);
  const line = sidecar.logs.lines.find((l) => l.code === 'body_budget_exhausted');
  assert.ok(line, 'the request log line names the code');
  // What fits passes.
  assert.equal((await post(chat('fits', 400 * KIB))).status, 200);
  assert.equal(await inUse(), 0, 'the share came back');
});

test('while a large body holds its share, another large one is refused and small ones flow; then it fits again', async () => {
  const first = post(chat('hold-one', 400 * KIB));
  while (!held.has('hold-one')) await upstream.arrivals.next();
  assert.equal(await inUse(), 800 * KIB, 'the held request holds twice its body');
  const second = await post(chat('second', 300 * KIB));
  assert.equal(second.status, 503);
  assert.equal(second.json.error?.code, 'body_budget_exhausted');
  const small = await post(chat('small', 2 * KIB));
  assert.equal(small.status, 200, 'small bodies are never refused');
  held.get('hold-one')!();
  assert.equal((await first).status, 200, 'the request in flight was not disturbed');
  assert.equal(await inUse(), 0);
  assert.equal((await post(chat('again', 300 * KIB))).status, 200);
});

test('a chunked body is counted as it arrives: refused past the budget, 413 past the cap', async () => {
  const over = await post(chat('chunked', 700 * KIB), true);
  assert.equal(over.status, 503);
  assert.equal(over.json.error?.code, 'body_budget_exhausted');
  assert.equal(await inUse(), 0);
  const ok = await post(chat('chunked-ok', 300 * KIB), true);
  assert.equal(ok.status, 200);
  assert.equal(upstream.requests.at(-1)!.body.length, 300 * KIB, 'forwarded whole, with its length');
});

test('a client that leaves mid-body gives its share back', async () => {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${400 * KIB}\r\n\r\n{"model":"m"`);
  while ((await inUse()) === 0) await new Promise((r) => setImmediate(r));
  assert.equal(await inUse(), 800 * KIB);
  socket.destroy();
  while ((await inUse()) !== 0) await new Promise((r) => setImmediate(r));
  assert.equal(await inUse(), 0);
});

test('a Content-Length that lies short: the declared bytes are the body, the rest is a malformed request: 400', async () => {
  const body = chat('liar', 10 * KIB);
  const answer = await rawRequest(port, Buffer.concat([
    Buffer.from(`POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`),
    body,
  ]));
  assert.equal(answer.status, 400);
  assert.match(answer.body, /"code":"(bad_request|invalid_json)"/);
  while ((await inUse()) !== 0) await new Promise((r) => setImmediate(r));
  assert.equal((await post(chat('after', 10 * KIB))).status, 200, 'nothing stuck');
});
