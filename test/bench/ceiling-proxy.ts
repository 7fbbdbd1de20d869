// The Node ceiling: the least a Node reverse proxy on node:http + undici does
// for one LLM request (read the body, forward it with the client's headers,
// stream the answer back). No policy, no logging, no metrics. The sidecar is
// measured against this, so any gap is the sidecar's own work.
// Usage: CEILING_PORT=<port> CEILING_UPSTREAM=http://127.0.0.1:<port> node ceiling-proxy.ts
//
// With CEILING_GATEWAY=<url> and CEILING_KEY=<PEM file> it is the
// two-exchange floor of a remote-evaluated request: before forwarding, one
// ES256 signature (a DPoP-shaped JWT: fixed header, fresh jti/htm/htu/iat) and
// one POST of the body to the gateway's evaluate-hook, whose JSON answer must
// say allow. CEILING_SIGNER picks the signature: `node` (default; node:crypto
// sign with the KeyObject, as src/identity/agent.ts does) or `jose` (jose's SignJWT,
// WebCrypto).
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { JWK } from 'jose';
import { Agent, type Dispatcher } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);
const upstream = process.env.CEILING_UPSTREAM ?? 'http://127.0.0.1:8080';
const agent = new Agent({ keepAliveTimeout: 4_000, bodyTimeout: 0 });

const gateway = process.env.CEILING_GATEWAY;
const EVALUATE = '/api/v1/daemon/evaluate-hook';
const signProof = await (async (): Promise<((method: string, url: string) => Promise<string> | string) | undefined> => {
  if (!gateway) return undefined;
  const key = createPrivateKey(readFileSync(process.env.CEILING_KEY!, 'utf8'));
  const { kty, crv, x, y } = createPublicKey(key).export({ format: 'jwk' });
  const jwk = { kty, crv, x, y } as JWK;
  if (process.env.CEILING_SIGNER === 'jose') {
    // Loaded only here, so the plain ceiling's memory figure does not carry jose.
    const { SignJWT } = await import('jose');
    return (htm, htu) => new SignJWT({ htm, htu }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
      .setJti(randomBytes(16).toString('base64url')).setIssuedAt().sign(key);
  }
  const head = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk })).toString('base64url');
  return (htm, htu) => {
    const claims = { jti: randomBytes(16).toString('base64url'), htm, htu, iat: Math.floor(Date.now() / 1000) };
    const input = `${head}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const der = sign('sha256', Buffer.from(input), key);
    // DER SEQUENCE { INTEGER r, INTEGER s } to r||s.
    const out = Buffer.alloc(64);
    let i = 2;
    for (const at of [0, 32]) {
      let len = der[i + 1]!;
      i += 2;
      while (len > 32) { i++; len--; }
      der.copy(out, at + 32 - len, i, i + len);
      i += len;
    }
    return `${input}.${out.toString('base64url')}`;
  };
})();

/** The floor's evaluation: one signed POST of the body, its answer read and parsed. */
async function evaluate(body: Buffer): Promise<void> {
  const proof = await signProof!('POST', gateway + EVALUATE);
  const answer = await agent.request({
    origin: gateway!, path: EVALUATE, method: 'POST', body,
    headers: { 'content-type': 'application/json', authorization: 'Bearer fo_agent_bench', dpop: proof },
  });
  const verdict = JSON.parse(await answer.body.text()) as { decision?: string };
  if (answer.statusCode !== 200 || verdict.decision !== 'allow') throw new Error('not allowed');
}

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
    (signProof ? evaluate(body) : Promise.resolve())
      .then(() => agent.request({ origin: upstream, path: prefix, method: req.method as Dispatcher.HttpMethod, headers, body }))
      .then((up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
        res.writeHead(up.statusCode, out);
        // Relayed by hand, as the sidecar does: stream.pipeline aborts an
        // AbortController of its own when it finishes, which builds a
        // DOMException (with a stack) per response, work the floor must not carry.
        const body = up.body;
        body.on('data', (chunk: Buffer) => { if (!res.write(chunk)) body.pause(); });
        res.on('drain', () => body.resume());
        body.once('end', () => res.end());
        body.once('error', () => res.destroy());
        res.once('close', () => { if (!res.writableFinished) body.destroy(); });
      })
      .catch((err: Error) => (res.headersSent ? res.destroy() : res.writeHead(502).end(err.message)));
  });
});

server.listen(Number(process.env.CEILING_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
