import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { onClientError } from '../../src/http/listener.ts';

test('bytes after a complete request are answered once, after its response, however many chunks follow', async () => {
  const responses: ServerResponse[] = [];
  const server = createServer();
  const arrived = new Promise<void>((resolve) => {
    server.on('request', (_req, res: ServerResponse) => {
      responses.push(res);
      resolve();
    });
  });
  server.on('clientError', onClientError);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const warnings: string[] = [];
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`); };
  process.on('warning', onWarning);
  try {
    const client = connect(port, '127.0.0.1');
    client.setTimeout(10_000, () => client.destroy(new Error('no answer in 10 s')));
    await once(client, 'connect');
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(client, 'end');
    // A Content-Length that lies short: the request is complete after 2 bytes; what follows is a malformed next request.
    client.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
    await arrived;
    // Node reports the parse error again for every chunk that follows; each write is its own chunk.
    for (let i = 0; i < 25; i++) {
      client.write(`garbage ${i} \u0000\r\n`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    responses[0]!.end('ok');
    await ended;
    client.destroy();
    const text = Buffer.concat(chunks).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200 OK/, 'the complete request gets its own answer first');
    assert.equal(text.match(/HTTP\/1\.1 400 bad_request/g)?.length, 1, text);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings, [], 'no MaxListenersExceededWarning');
  } finally {
    process.off('warning', onWarning);
    server.closeAllConnections();
    server.close();
  }
});
