// The benchmark's stand-ins, run as their own process (pinned beside the load
// generator): an OpenAI-shaped upstream and a FirstOps gateway whose
// evaluate-hook always allows. Prints {"upstream":port,"gateway":port} on one
// line when both listen; exits when its parent closes stdin or on SIGTERM.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chatCompletion, openAiChunk } from '../helpers/upstream.ts';
import { COUNTS_PATH } from './counts.ts';

/** ~1 KB chat completion, serialised once. */
const COMPLETION = Buffer.from(JSON.stringify(chatCompletion(
  'The quick brown fox jumps over the lazy dog. '.repeat(19).trim(),
)));
// As OpenAI streams with stream_options.include_usage (which the benchmark's
// requests set): `"usage":null` on every chunk, then a usage-only chunk.
const withNullUsage = (event: string): Buffer => Buffer.from(event.replace(/\}\n\n$/, ',"usage":null}\n\n'));
const USAGE_CHUNK = Buffer.from(`data: ${JSON.stringify({
  id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [],
  usage: { prompt_tokens: 61, completion_tokens: 19, total_tokens: 80 },
})}\n\n`);
const CHUNKS = Array.from({ length: 18 }, (_, i) => withNullUsage(openAiChunk(`token${i} `)))
  .concat(withNullUsage(openAiChunk('', 'stop')), USAGE_CHUNK);
const DONE = Buffer.from('data: [DONE]\n\n');
const ALLOW = Buffer.from('{"decision":"allow"}');

function readBody(req: IncomingMessage, then: (body: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => then(chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()));
}

function json(res: ServerResponse, body: Buffer): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/**
 * 20 SSE chunks. With `?interval_ms=N` they are N ms apart (long-lived
 * streams for the memory figure); otherwise written back to back.
 */
function stream(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const q = req.url?.indexOf('?') ?? -1;
  const interval = q === -1 ? 0 : Number(new URLSearchParams(req.url!.slice(q)).get('interval_ms') ?? 0);
  if (!interval) {
    for (const chunk of CHUNKS) res.write(chunk);
    res.end(DONE);
    return;
  }
  let i = 0;
  const timer = setInterval(() => {
    if (i < CHUNKS.length) res.write(CHUNKS[i++]);
    else {
      clearInterval(timer);
      res.end(DONE);
    }
  }, interval);
  res.once('close', () => clearInterval(timer));
}

const BAD_REQUEST = Buffer.from('{"error":"the bench sends a POST with a body"}');

const upstream = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  readBody(req, (body) => {
    // Anything but a POST with a body is a broken load generator (a wrk
    // script that failed to load sends bare GETs): a 400 the bench counts.
    if (req.method !== 'POST' || body.length === 0) {
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': BAD_REQUEST.length });
      res.end(BAD_REQUEST);
      return;
    }
    // A substring test, not a parse: the stand-in should cost as little as it can.
    if (body.includes('"stream":true')) stream(req, res);
    else json(res, COMPLETION);
  });
});

/** What the gateway was asked, for the bench to check against what the load generator counted. */
const counts = { evaluations: 0, mcp: 0 }; // GatewayCounts, served at GET COUNTS_PATH

const gateway = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === 'GET' && req.url === COUNTS_PATH) {
    json(res, Buffer.from(JSON.stringify(counts)));
    return;
  }
  readBody(req, (body) => {
    if (req.url?.endsWith('/evaluate-hook')) {
      counts.evaluations++;
      return json(res, ALLOW);
    }
    counts.mcp++;
    // MCP: answer a JSON-RPC request with an empty result, same id.
    const id = /"id"\s*:\s*("[^"]*"|\d+)/.exec(body)?.[1] ?? 'null';
    json(res, Buffer.from(`{"jsonrpc":"2.0","id":${id},"result":{"tools":[]}}`));
  });
});

const listen = (server: typeof upstream): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

const ports = { upstream: await listen(upstream), gateway: await listen(gateway) };
process.stdout.write(`${JSON.stringify(ports)}\n`);
const stop = (): never => process.exit(0);
process.stdin.on('end', stop).on('close', stop).resume();
process.on('SIGTERM', stop);
