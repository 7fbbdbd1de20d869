// Faults of the LLM upstream: refused, reset, stalled, malformed. The client
// always gets a 502/504 or a closed connection within the configured
// timeouts, and the very next request is served normally.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { chatBody, closedPort, errorCode, send, startRawServer, tempDir, writePolicy } from './lib.ts';

const HEADERS_TIMEOUT_MS = 400;
const OK_BODY = '{"id":"ok","object":"chat.completion","choices":[]}';
const OK = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${OK_BODY.length}\r\n\r\n${OK_BODY}`;

type Mode = (socket: Socket) => void;

describe('upstream faults', () => {
  let sidecar: TestSidecar;
  let upstream: Awaited<ReturnType<typeof startRawServer>>;
  let mode: Mode = (s) => s.end(OK);
  const closes: Array<() => void> = [];
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir();
    await writePolicy(join(dir.dir, 'policy.json'));
    upstream = await startRawServer((socket, head) => {
      void head.then(() => {
        if (!socket.destroyed) mode(socket);
      });
      socket.on('close', () => closes.shift()?.());
    });
    sidecar = await startTestSidecar({
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_UPSTREAM_DOWN: `http://127.0.0.1:${await closedPort()}`,
      FIRSTOPS_POLICY_FILE: join(dir.dir, 'policy.json'),
      FIRSTOPS_RESPONSE_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      FIRSTOPS_CONNECT_TIMEOUT_MS: '1000',
    });
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
    await dir.cleanup();
  });

  /** The sidecar still serves a normal request after the fault. */
  async function assertRecovered(): Promise<void> {
    mode = (s) => s.end(OK);
    const r = await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, OK_BODY);
  }

  async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const t = performance.now();
    const value = await fn();
    return { value, ms: performance.now() - t };
  }

  test('connection refused: 502 upstream_unreachable at once', async () => {
    const { value: r, ms } = await timed(() => send(sidecar.url, { path: '/llm/down/v1/chat/completions', body: chatBody() }));
    assert.equal(r.status, 502);
    assert.equal(errorCode(r), 'upstream_unreachable');
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.ok(await sidecar.metricValue('firstops_upstream_errors_total', { code: 'upstream_unreachable' }) >= 1);
    await assertRecovered();
  });

  test('reset before any response byte: 502 upstream_reset', async () => {
    mode = (s) => s.resetAndDestroy();
    const r = await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
    assert.equal(r.status, 502);
    assert.equal(errorCode(r), 'upstream_reset');
    await assertRecovered();
  });

  test('reset mid-response: the client connection is closed, never a complete-looking body', async () => {
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"partial":');
      setImmediate(() => s.resetAndDestroy());
    };
    const outcome = await new Promise<string>((resolve) => {
      const body = chatBody();
      const req = httpRequest({ host: '127.0.0.1', port: sidecar.sidecar.proxyAddress.port, method: 'POST', path: '/llm/openai/v1/x', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        assert.equal(res.statusCode, 200);
        res.on('data', () => undefined);
        res.on('end', () => resolve('complete'));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      });
      req.on('error', () => resolve('aborted'));
      req.end(body);
    });
    assert.equal(outcome, 'aborted');
    await assertRecovered();
  });

  test('stall before headers: 504 upstream_timeout within the headers timeout', async () => {
    mode = () => undefined; // reads the request, never answers
    const { value: r, ms } = await timed(() => send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() }));
    assert.equal(r.status, 504);
    assert.equal(errorCode(r), 'upstream_timeout');
    assert.ok(ms >= HEADERS_TIMEOUT_MS - 50 && ms < HEADERS_TIMEOUT_MS + 1500, `took ${ms} ms`);
    await assertRecovered();
  });

  test('stall mid-stream: no idle timeout by design; the client aborts and the upstream request is aborted', async () => {
    let upstreamSocket: Socket | undefined;
    mode = (s) => {
      upstreamSocket = s;
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n');
      const event = 'data: {"delta":"first"}\n\n';
      s.write(`${event.length.toString(16)}\r\n${event}\r\n`);
      // ...and then silence, as a long generation thinking.
    };
    const controller = new AbortController();
    const firstEvent = new Promise<{ closedEarly: () => boolean }>((resolve, reject) => {
      const body = chatBody('stream please', { stream: true });
      const req = httpRequest({ host: '127.0.0.1', port: sidecar.sidecar.proxyAddress.port, method: 'POST', path: '/llm/openai/v1/chat/completions', agent: false, signal: controller.signal, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-accel-buffering'], 'no');
        let closed = false;
        res.on('close', () => { closed = true; });
        res.on('error', () => undefined);
        res.once('data', (chunk: Buffer) => {
          assert.match(chunk.toString(), /first/);
          resolve({ closedEarly: () => closed });
        });
      });
      req.on('error', (err) => { if (!controller.signal.aborted) reject(err); });
      req.end(body);
    });
    const { closedEarly } = await firstEvent;
    // Silent for several headers-timeouts: a long generation is not cut.
    await new Promise((r) => setTimeout(r, HEADERS_TIMEOUT_MS * 3));
    assert.equal(closedEarly(), false, 'the sidecar cut an idle stream');
    assert.ok(upstreamSocket && !upstreamSocket.destroyed);
    const upstreamClosed = once(upstreamSocket, 'close');
    controller.abort();
    await upstreamClosed; // the client's abort reached the upstream
    await assertRecovered();
  });

  const malformed: Array<[string, string]> = [
    ['garbage status line', 'SMTP ready\r\n\r\n'],
    ['non-numeric status', 'HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n'],
    ['invalid content-length', 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n'],
    ['conflicting content-lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc'],
    ['header without colon', 'HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n'],
    ['NUL in a header', 'HTTP/1.1 200 OK\r\nx-a: b\0c\r\ncontent-length: 0\r\n\r\n'],
  ];
  for (const [name, bytes] of malformed) {
    test(`malformed response (${name}): 502 upstream_bad_response`, async () => {
      mode = (s) => s.end(bytes);
      const r = await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
      assert.equal(r.status, 502, r.body);
      assert.equal(errorCode(r), 'upstream_bad_response');
      await assertRecovered();
    });
  }

  const truncated: Array<[string, string]> = [
    ['malformed chunked body after the headers', 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"a":\r\nzz\r\n'],
    ['response body shorter than its content-length', 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"short":true}'],
  ];
  for (const [name, bytes] of truncated) {
    test(`${name}: the client connection is closed`, async () => {
      mode = (s) => s.end(bytes);
      const outcome = await new Promise<string>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port: sidecar.sidecar.proxyAddress.port, method: 'GET', path: '/llm/openai/v1/models', agent: false }, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve('complete'));
          res.on('aborted', () => resolve('aborted'));
          res.on('error', () => resolve('aborted'));
        });
        req.on('error', () => resolve('aborted'));
        req.end();
      });
      assert.equal(outcome, 'aborted');
      await assertRecovered();
    });
  }
});
