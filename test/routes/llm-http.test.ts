import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { gzipSync, gunzipSync } from 'node:zlib';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, sendJson, type FakeUpstream } from '../helpers/upstream.ts';
import { startTestSidecar, TEST_API_KEY, type TestSidecar } from '../helpers/sidecar.ts';
import { rawRequest } from '../helpers/raw.ts';

let upstream: FakeUpstream;
let sidecar: TestSidecar;
let port: number;

before(async () => {
  upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-policy-'));
  await writeFile(join(dir, 'p.yaml'), 'rules: []\n');
  sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_UPSTREAM_SLOW: upstream.url,
    FIRSTOPS_UPSTREAM_DOWN: 'http://127.0.0.1:1',
    FIRSTOPS_MAX_BODY_BYTES: '1000',
    FIRSTOPS_RESPONSE_TIMEOUT_MS: '300',
  });
  port = sidecar.sidecar.proxyAddress.port;
});

after(async () => {
  await sidecar.close();
  await upstream.close();
});

const raw = (text: string) => rawRequest(port, text);

test('traversal in any encoding is refused with 400 before evaluation or forwarding', async () => {
  const before = upstream.requests.length;
  for (const path of ['/llm/openai/../mcp/x', '/llm/openai/v1/%2e%2e/admin', '/llm/openai/v1/.%2E/x', '/llm/openai/%252e%252e/x', '/llm/openai/..%5cx', '/mcp/../llm/openai/v1/x']) {
    const res = await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, path);
    assert.equal(JSON.parse(res.body).error.code, 'path_traversal', path);
  }
  assert.equal(upstream.requests.length, before);
});

test('absolute-form targets and a forged Host cannot redirect the forward', async () => {
  const abs = await raw(`GET http://evil.example/llm/openai/v1/models HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
  assert.equal(abs.status, 400);
  assert.equal(JSON.parse(abs.body).error.code, 'bad_request_target');
  upstream.handle((_req, res) => sendJson(res, 200, { ok: true }));
  const forged = await raw(`GET /llm/openai/v1/models?limit=2 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n`);
  assert.equal(forged.status, 200);
  const seen = upstream.requests.at(-1)!;
  assert.equal(seen.url, '/v1/models?limit=2');
  assert.equal(seen.headers.host, `127.0.0.1:${upstream.port}`);
});

test('unknown provider: 502 naming it; unknown route: 404', async () => {
  const res = await fetch(`${sidecar.url}/llm/mistral/v1/chat`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 502);
  assert.match((await res.json() as any).error.message, /unknown LLM provider: mistral/);
  const other = await fetch(`${sidecar.url}/api/v1/daemon/evaluate-hook`, { method: 'POST' });
  assert.equal(other.status, 404);
  assert.equal((await other.json() as any).error.code, 'not_found');
});

test('headers: hop-by-hop and Connection-named fields dropped, credentials verbatim', async () => {
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes', 'keep-alive': 'timeout=5', 'x-drop-me': '1', connection: 'x-drop-me' });
    res.end('{}');
  });
  const res = await raw([
    'POST /llm/openai/v1/chat/completions HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json',
    `x-api-key: ${TEST_API_KEY}`, `Authorization: Bearer ${TEST_API_KEY}`, 'Connection: close, X-Secret-Hop', 'X-Secret-Hop: 1',
    'Proxy-Authorization: Basic Zm9v', 'Keep-Alive: timeout=1', 'TE: trailers', 'X-Custom: kept', 'Content-Length: 2', '', '{}',
  ].join('\r\n'));
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-upstream'], 'yes');
  assert.equal(res.headers['x-drop-me'], undefined);
  assert.equal(res.headers['keep-alive'], undefined);
  const seen = upstream.requests.at(-1)!.headers;
  assert.equal(seen['x-api-key'], TEST_API_KEY);
  assert.equal(seen.authorization, `Bearer ${TEST_API_KEY}`);
  assert.equal(seen['x-custom'], 'kept');
  for (const gone of ['x-secret-hop', 'proxy-authorization', 'te']) assert.equal(seen[gone], undefined, gone);
  assert.equal(seen['content-length'], '2');
});

test('chunked request bodies are read, governed and forwarded with a Content-Length', async () => {
  upstream.handle((_req, res) => sendJson(res, 200, {}));
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/llm/openai/v1/chat/completions', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write('{"model":');
    req.write('"gpt-4o"}');
    req.end();
  });
  assert.equal(status, 200);
  const seen = upstream.requests.at(-1)!;
  assert.equal(seen.body.toString(), '{"model":"gpt-4o"}');
  assert.equal(seen.headers['content-length'], '18');
  assert.equal(seen.headers['transfer-encoding'], undefined);
});

test('bodies over the cap: 413 for Content-Length and for chunked alike', async () => {
  const before = upstream.requests.length;
  const big = JSON.stringify({ pad: 'x'.repeat(1200) });
  const byLength = await raw(`POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
  assert.equal(byLength.status, 413);
  assert.equal(JSON.parse(byLength.body).error.code, 'body_too_large');
  const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;
  const chunked = await raw(`POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(big.slice(0, 600))}${chunk(big.slice(600))}0\r\n\r\n`);
  assert.equal(chunked.status, 413);
  const malformed = await raw(`POST /llm/openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}`);
  assert.equal(malformed.status, 400);
  assert.equal(JSON.parse(malformed.body).error.code, 'bad_request');
  assert.equal(upstream.requests.length, before);
});

test('JSON that does not parse is refused; other bodies are forwarded as they are', async () => {
  const before = upstream.requests.length;
  for (const body of ['{"model":', '\ufeff{"a":1}']) {
    const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as any).error.code, 'invalid_json');
  }
  const latin1 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]);
  const bad = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: latin1 });
  assert.equal(bad.status, 400, 'invalid UTF-8 is not decoded leniently');
  assert.equal(upstream.requests.length, before);
  upstream.handle((_req, res) => sendJson(res, 200, {}));
  const form = await fetch(`${sidecar.url}/llm/openai/v1/audio/transcriptions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([1, 2, 3]) });
  assert.equal(form.status, 200);
  assert.deepEqual([...upstream.requests.at(-1)!.body], [1, 2, 3]);
  const arr = await fetch(`${sidecar.url}/llm/openai/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
  assert.equal(arr.status, 200);
  assert.equal(sidecar.logs.requests().at(-1)!.decision, 'allow', 'a JSON array meets the local rules, not the gateway');
  const gz = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync('{}') });
  assert.equal(gz.status, 415);
});

test('compressed responses stay compressed with a true Content-Length', async () => {
  const payload = gzipSync(JSON.stringify({ hello: 'world'.repeat(50) }));
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': payload.length });
    res.end(payload);
  });
  const res = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/llm/openai/v1/models', headers: { 'accept-encoding': 'gzip' } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject).end();
  });
  assert.equal(res.headers['content-encoding'], 'gzip');
  assert.equal(Number(res.headers['content-length']), payload.length);
  assert.deepEqual(res.body, payload);
  assert.match(gunzipSync(res.body).toString(), /worldworld/);
});

test('upstream refused: 502; no headers in time: 504; next request fine', async () => {
  const down = await fetch(`${sidecar.url}/llm/down/v1/models`);
  assert.equal(down.status, 502);
  assert.equal((await down.json() as any).error.code, 'upstream_unreachable');
  upstream.handle(() => undefined); // never answers
  const slow = await fetch(`${sidecar.url}/llm/slow/v1/models`);
  assert.equal(slow.status, 504);
  assert.equal((await slow.json() as any).error.code, 'upstream_timeout');
  upstream.handle((_req, res) => sendJson(res, 200, { ok: 1 }));
  assert.equal((await fetch(`${sidecar.url}/llm/openai/v1/models`)).status, 200);
  assert.ok((await sidecar.metricValue('firstops_upstream_errors_total', { route: 'llm', code: 'upstream_timeout' })) >= 1);
});

test('an event stream\'s headers reach the client at once even while the upstream stays silent', async () => {
  let finish: () => void = () => undefined;
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    // No event for a while: the relay must not wait for one to send the headers.
    const timer = setTimeout(() => res.end('data: late\n\n'), 2_000);
    finish = () => {
      clearTimeout(timer);
      res.end('data: late\n\n');
    };
  });
  const started = performance.now();
  const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' });
  const waited = performance.now() - started;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.ok(waited < 1_500, `headers took ${waited.toFixed(0)} ms`);
  finish();
  assert.equal(await res.text(), 'data: late\n\n');
});

test('a client that disconnects mid-stream aborts the upstream request', async () => {
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
  });
  const controller = new AbortController();
  const res = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true}', signal: controller.signal });
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.match(Buffer.from(first.value!).toString(), /data: first/);
  controller.abort();
  // Earlier tests' aborted requests (the 504) are queued first: wait for this one.
  let which = await upstream.aborts.next();
  while (which.url !== '/v1/chat/completions') which = await upstream.aborts.next();
  assert.equal(which.body.toString(), '{"stream":true}');
});
