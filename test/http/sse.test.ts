import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEndpointRewriter, gatewayToLocal } from '../../src/http/sse.ts';

async function run(chunks: Buffer[], rewrite = gatewayToLocal('https://gw.example.com/base', 'http://127.0.0.1:9322')): Promise<string> {
  const t = createEndpointRewriter(rewrite);
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => t.on('end', resolve));
  for (const c of chunks) t.write(c);
  t.end();
  await done;
  return Buffer.concat(out).toString('utf8');
}

const INPUT = 'event: message\ndata: {"note":"héllo 🌍 wörld"}\n\nevent: endpoint\ndata: https://gw.example.com/base/mcp/sse/message?sessionId=abc-123\n\nevent: message\ndata: ok ✓\n\n';
const EXPECTED = INPUT.replace('https://gw.example.com/base/mcp/sse/message', 'http://127.0.0.1:9322/mcp/sse/message');

test('endpoint URL and multi-byte characters survive a split at every byte offset', async () => {
  const bytes = Buffer.from(INPUT, 'utf8');
  for (let i = 1; i < bytes.length; i++) {
    assert.equal(await run([bytes.subarray(0, i), bytes.subarray(i)]), EXPECTED, `split at byte ${i}`);
  }
});

test('one byte at a time', async () => {
  const bytes = Buffer.from(INPUT, 'utf8');
  const chunks = [...bytes].map((b) => Buffer.from([b]));
  assert.equal(await run(chunks), EXPECTED);
});

test('CRLF events, relative endpoints and foreign origins', async () => {
  const crlf = 'event: endpoint\r\ndata: https://gw.example.com/base/mcp/m?sessionId=1\r\n\r\n';
  assert.equal(await run([Buffer.from(crlf)]), 'event: endpoint\r\ndata: http://127.0.0.1:9322/mcp/m?sessionId=1\r\n\r\n');
  const relative = 'event: endpoint\ndata: /mcp/sse/message?sessionId=1\n\n';
  assert.equal(await run([Buffer.from(relative)]), relative);
  const foreign = 'event: endpoint\ndata: https://elsewhere.example/base/mcp/m\n\n';
  assert.equal(await run([Buffer.from(foreign)]), foreign);
  const lookalike = 'event: endpoint\ndata: https://gw.example.com/basement/mcp\n\n';
  assert.equal(await run([Buffer.from(lookalike)]), lookalike, 'a prefix must end at a path boundary');
  const notEndpoint = 'event: message\ndata: https://gw.example.com/base/mcp/m\n\n';
  assert.equal(await run([Buffer.from(notEndpoint)]), notEndpoint, 'only endpoint events are rewritten');
});

test('the normalised origin form of the gateway URL is recognised too', () => {
  const rewrite = gatewayToLocal('HTTPS://GW.example.com:443/base', 'http://firstops:9322');
  assert.equal(rewrite('https://gw.example.com/base/mcp/m?x=1'), 'http://firstops:9322/mcp/m?x=1');
});

test('an unterminated last event is still flushed at the end', async () => {
  assert.equal(await run([Buffer.from('event: endpoint\ndata: https://gw.example.com/base/mcp/x')]), 'event: endpoint\ndata: http://127.0.0.1:9322/mcp/x');
});
