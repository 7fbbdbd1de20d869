// The Node ceiling: the least a Node reverse proxy on node:http + undici does
// for one LLM request (read the body, forward it with the client's headers,
// stream the answer back). No policy, no logging, no metrics. The sidecar is
// measured against this, so any gap is the sidecar's own work.
// Usage: CEILING_PORT=<port> CEILING_UPSTREAM=http://127.0.0.1:<port> node ceiling-proxy.ts
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);
const upstream = process.env.CEILING_UPSTREAM ?? 'http://127.0.0.1:8080';
const agent = new Agent({ keepAliveTimeout: 4_000, bodyTimeout: 0 });

const server = createServer({ keepAliveTimeout: 5_000, noDelay: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!HOP.has(req.rawHeaders[i]!.toLowerCase())) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    headers.push('content-length', String(body.length));
    const prefix = req.url!.startsWith('/llm/openai/') ? req.url!.slice('/llm/openai'.length) : req.url!;
    agent.request({ origin: upstream, path: prefix, method: req.method as Dispatcher.HttpMethod, headers, body })
      .then((up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
        res.writeHead(up.statusCode, out);
        pipeline(up.body, res, () => undefined);
      })
      .catch((err: Error) => (res.headersSent ? res.destroy() : res.writeHead(502).end(err.message)));
  });
});

server.listen(Number(process.env.CEILING_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
