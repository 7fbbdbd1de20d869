// Clients that go away: mid-request-body, while the upstream thinks (before
// headers), and mid-stream. Each abandoned request aborts its upstream
// request, and after hundreds of them no socket, handle, in-flight gauge or
// memory is left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { startUpstream, openAiChunk, type FakeUpstream } from '../helpers/upstream.ts';
import { chatBody, eventually, resourceCounts, send, tempDir, writePolicy } from './lib.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ROUNDS = 3;
const PER_ROUND = 60;
const PARALLEL = 20;

function connections(upstream: FakeUpstream): Promise<number> {
  return new Promise((resolve, reject) => upstream.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Opens a raw connection, sends `head` (+ optional partial body), waits for `until`, then destroys it. */
async function abandon(port: number, bytes: string, until: (received: string) => boolean, started?: Promise<unknown>): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  let received = '';
  const reached = new Promise<void>((resolve) => {
    if (until('')) resolve();
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      if (until(received)) resolve();
    });
    socket.on('close', () => resolve());
  });
  socket.write(bytes);
  await (started ?? reached);
  socket.destroy();
}

describe('client disconnects', () => {
  let upstream: FakeUpstream;
  let sidecar: TestSidecar;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir();
    await writePolicy(join(dir.dir, 'policy.json'));
    upstream = await startUpstream();
    sidecar = await startTestSidecar({
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_POLICY_FILE: join(dir.dir, 'policy.json'),
      FIRSTOPS_LOG_LEVEL: 'info',
    });
  });

  after(async () => {
    await sidecar.close();
    await upstream.close();
    await dir.cleanup();
  });

  const body = chatBody('abandon me', { stream: true });
  const head = `POST /llm/openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;

  const kinds = {
    /** The body never completes: nothing may be forwarded. */
    'mid-request body': {
      forwards: false,
      go: (port: number, _arrived: Promise<void>) => abandon(port, head + body.slice(0, 10), () => true),
    },
    /** The upstream has the request but has not answered yet. */
    'before response headers': {
      forwards: true,
      handler: () => undefined,
      go: (port: number, arrived: Promise<void>) => abandon(port, head + body, () => false, arrived),
    },
    /** The stream is flowing. */
    'mid-stream': {
      forwards: true,
      handler: (_r: unknown, res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(openAiChunk('first'));
      },
      go: (port: number, _arrived: Promise<void>) => abandon(port, head + body, (text) => text.includes('first')),
    },
  } as const;

  for (const [name, kind] of Object.entries(kinds)) {
    test(`${ROUNDS * PER_ROUND} disconnects ${name}: upstream aborted, nothing left behind`, async () => {
      const port = sidecar.sidecar.proxyAddress.port;
      upstream.handle('handler' in kind ? kind.handler : () => undefined);
      // Warm-up so lazily created pools and timers are in the baseline.
      upstream.handle((_r, res) => { res.end('{}'); });
      assert.equal((await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() })).status, 200);
      upstream.handle('handler' in kind ? kind.handler : () => undefined);
      // The sidecar may keep idle keep-alive sockets to the upstream; aborted ones must go.
      const idleUpstreamSockets = await connections(upstream);
      gc();
      const baseline = resourceCounts();
      const forwardedBefore = upstream.requests.length;
      const heap: number[] = [];

      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < PER_ROUND; i += PARALLEL) {
          const aborted = kind.forwards ? Array.from({ length: PARALLEL }, () => upstream.aborts.next()) : [];
          // The whole batch is abandoned once all of it reached the upstream.
          const target = upstream.requests.length + PARALLEL;
          const arrived = kind.forwards ? eventually(() => upstream.requests.length >= target, 'batch arrived upstream') : Promise.resolve();
          await Promise.all(Array.from({ length: PARALLEL }, () => kind.go(port, arrived)));
          await Promise.all(aborted); // every abandoned request reached the upstream as an abort
        }
        await eventually(async () => (await sidecar.metricValue('firstops_inflight_requests')) === 0, 'in-flight gauge back to 0');
        gc();
        heap.push(process.memoryUsage().heapUsed);
      }

      if (!kind.forwards) assert.equal(upstream.requests.length, forwardedBefore, 'an incomplete body was forwarded');
      else assert.equal(upstream.requests.length, forwardedBefore + ROUNDS * PER_ROUND);
      assert.equal(await sidecar.metricValue('firstops_streams_active'), 0);
      // Aborted hops are destroyed at once; the pool may still hold a few idle
      // keep-alive sockets, which close within its keepAliveTimeout (4 s).
      await eventually(async () => (await connections(upstream)) <= idleUpstreamSockets, 'upstream sockets closed', 8_000);
      await eventually(() => {
        const now = resourceCounts();
        return (now.TCPSocketWrap ?? 0) <= (baseline.TCPSocketWrap ?? 0) + 2;
      }, `TCP handles back to baseline ${JSON.stringify(baseline)}`);
      const now = resourceCounts();
      for (const [type, count] of Object.entries(now)) {
        assert.ok(count <= (baseline[type] ?? 0) + 5, `${type}: ${baseline[type] ?? 0} before, ${count} after`);
      }
      // No growth trend across rounds (a leak of even 1 KB per request would show ~60 KB/round).
      const growth = heap.at(-1)! - heap[0]!;
      assert.ok(growth < 2 * 1024 * 1024, `heap grew ${growth} bytes across rounds: ${heap.join(', ')}`);
      // Each one was logged as a client abort, never as a sidecar error.
      const lines = sidecar.logs.requests().slice(-ROUNDS * PER_ROUND);
      for (const line of lines) {
        // 499 whenever the client left first, mid-stream too (the README's contract).
        assert.equal(line.status, 499, JSON.stringify(line));
        assert.equal(line.code, 'client_aborted', JSON.stringify(line));
      }
      // The next request is served normally.
      upstream.handle((_r, res) => { res.end('{"ok":true}'); });
      const r = await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody() });
      assert.equal(r.status, 200);
    });
  }
});
