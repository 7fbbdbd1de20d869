import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { get } from 'node:http';
import { createTap } from '../../src/debug/tap.ts';
import type { RequestLine } from '../../src/debug/history.ts';
import { listenLocal } from '../helpers/server.ts';

const LINE: RequestLine = {
  route: 'llm', provider: 'openai', method: 'POST', path: `/llm/openai/${'p'.repeat(200)}`, status: 200, duration_ms: 1.5,
  decision: 'allow', policy_id: 'rule', source: 'local', reason: 'r'.repeat(200), code: undefined,
  response_decision: undefined, response_policy_id: undefined, response_source: undefined, bytes_in: 10, bytes_out: 20,
};
const MAX = 64 * 1024;

test('a reader that stops reading is dropped once its unsent bytes pass the bound; a reading one keeps up', async () => {
  const drops: number[] = [];
  const tap = createTap({ maxBufferedBytes: MAX, maxReaders: 4, keepaliveMs: 60_000, onDrop: (n) => drops.push(n) });
  let maxBuffered = 0;
  const attached: Array<import('node:http').ServerResponse> = [];
  const server = await listenLocal((_req, res) => {
    tap.attach(res);
    attached.push(res);
  });
  try {
    // The slow reader: a raw socket that sends the request and never reads.
    const slow = connect(server.port, '127.0.0.1');
    slow.pause();
    slow.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // The fast reader counts the events it gets.
    let received = 0;
    let fastRes: import('node:http').IncomingMessage | undefined;
    const fastOpen = new Promise<void>((resolve) => {
      get(`${server.url}/`, (res) => {
        fastRes = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          received += chunk.split('\n\n').filter((e) => e.startsWith('data: ')).length;
        });
        resolve();
      });
    });
    await fastOpen;
    while (tap.size < 2) await new Promise((resolve) => setImmediate(resolve));

    let published = 0;
    while (drops.length === 0) {
      assert.ok(published < 2_000_000, 'the slow reader was never dropped');
      for (let i = 0; i < 50; i++) {
        tap.publish(LINE, Date.now());
        published++;
        for (const res of attached) maxBuffered = Math.max(maxBuffered, res.writableLength);
      }
      // A reader that keeps up: it has everything before the next batch.
      while (received < published) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(drops.length, 1);
    assert.equal(tap.size, 1, 'only the slow reader went');
    const chunk = `data: ${JSON.stringify({ time: new Date().toISOString(), ...LINE })}\n\n`.length;
    assert.ok(maxBuffered <= MAX + 2 * chunk, `unsent bytes stayed bounded (${maxBuffered} <= ${MAX} + one line)`);

    // The fast reader gets every event published (they were all written to it).
    while (received < published) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(received, published);
    tap.close();
    await once(fastRes!, 'end');
    slow.destroy();
  } finally {
    await server.close();
  }
});

test('the number of readers is bounded', async () => {
  const tap = createTap({ maxBufferedBytes: MAX, maxReaders: 1, keepaliveMs: 60_000, onDrop: () => undefined });
  assert.equal(tap.full, false);
  const server = await listenLocal((_req, res) => tap.attach(res));
  try {
    const req = get(`${server.url}/`);
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(tap.full, true);
    req.destroy();
    while (tap.size > 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(tap.full, false);
  } finally {
    tap.close();
    await server.close();
  }
});
