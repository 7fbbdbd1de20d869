import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { listenLocal, readAll, Waiter, type RecordedRequest, type TestServer } from './server.ts';
import { makeIdentityDir, type TestIdentity } from './identity.ts';
import { sendJson } from './upstream.ts';

export interface ProofCheck {
  readonly method: string;
  readonly path: string;
  readonly htu: string;
  readonly jti: string;
  readonly jkt: string;
  readonly nonce: string | undefined;
}

export type HookReply = { status?: number; body?: unknown; raw?: string; delayMs?: number; destroy?: boolean };
export type GatewayRoute = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface FakeGateway extends TestServer {
  /** The base URL the sidecar is configured with (may carry a prefix). */
  readonly baseUrl: string;
  readonly proofs: ProofCheck[];
  /** Proofs the gateway refused, with why: tests assert this stays empty. */
  readonly rejected: string[];
  readonly events: Waiter<Record<string, unknown>>;
  readonly hookRequests: RecordedRequest[];
  /** Scripted EvaluateHook answers (default: allow). */
  onHook(reply: (event: Record<string, unknown>) => HookReply | Promise<HookReply>): void;
  /** Handler for /mcp/... after the proof passed. */
  onMcp(route: GatewayRoute): void;
  /** Require this DPoP nonce (RFC 9449 §8); undefined turns the requirement off. */
  requireNonce(nonce: string | undefined): void;
  /** Keys (thumbprints) the gateway accepts, with the agent each maps to. */
  trust(jkt: string, agentId: string): void;
}

/**
 * A FirstOps gateway stand-in that verifies every request the way the real
 * one must: bearer `fo_agent_<id>` for the key's agent, a DPoP proof signed by
 * the embedded key (jose), `typ`, `alg`, `htm`, byte-exact `htu` against the
 * URL it was actually sent, fresh `iat`, unique `jti`, and the nonce when one
 * is required.
 */
export async function startGateway(options: { prefix?: string } = {}): Promise<FakeGateway> {
  const prefix = options.prefix ?? '';
  const proofs: ProofCheck[] = [];
  const rejected: string[] = [];
  const seenJti = new Set<string>();
  const trusted = new Map<string, string>();
  const events = new Waiter<Record<string, unknown>>();
  const hookRequests: RecordedRequest[] = [];
  let hook: (event: Record<string, unknown>) => HookReply | Promise<HookReply> = () => ({ body: { decision: 'allow' } });
  let mcp: GatewayRoute = (_req, res) => sendJson(res, 404, { error: 'no mcp handler' });
  let nonce: string | undefined;
  let baseUrl = '';
  let listeningPort = 0;

  const reject = (res: ServerResponse, why: string): void => {
    rejected.push(why);
    sendJson(res, 401, { error: 'invalid_dpop_proof', why });
  };

  async function verify(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const proof = req.headers.dpop;
    const auth = req.headers.authorization;
    if (typeof proof !== 'string') return reject(res, 'no DPoP header'), false;
    let header;
    try {
      header = decodeProtectedHeader(proof);
    } catch {
      return reject(res, 'DPoP header undecodable'), false;
    }
    if (header.typ !== 'dpop+jwt') return reject(res, `typ ${String(header.typ)}`), false;
    if (header.alg !== 'ES256') return reject(res, `alg ${String(header.alg)}`), false;
    if (!header.jwk) return reject(res, 'no jwk'), false;
    let payload;
    try {
      const key = await importJWK(header.jwk as JWK, 'ES256');
      ({ payload } = await jwtVerify(proof, key, { typ: 'dpop+jwt', algorithms: ['ES256'] }));
    } catch (err) {
      return reject(res, `signature: ${(err as Error).message}`), false;
    }
    const jkt = await calculateJwkThumbprint(header.jwk as JWK, 'sha256');
    const agent = trusted.get(jkt);
    if (!agent) return reject(res, 'unknown key'), false;
    if (auth !== `Bearer fo_agent_${agent}`) return reject(res, 'bearer does not match the key'), false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // The port the gateway listens on, not the socket's: a client that already hung up has none.
    const expectedHtu = `http://127.0.0.1:${listeningPort}${path}`;
    if (payload.htu !== expectedHtu) return reject(res, `htu ${String(payload.htu)} != ${expectedHtu}`), false;
    if (payload.htm !== req.method) return reject(res, `htm ${String(payload.htm)} != ${req.method}`), false;
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > 60) return reject(res, 'stale iat'), false;
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) return reject(res, 'bad jti'), false;
    if (seenJti.has(payload.jti)) return reject(res, 'replayed jti'), false;
    if (payload.exp !== undefined || payload.ath !== undefined) return reject(res, 'unexpected claim'), false;
    if (nonce !== undefined && payload.nonce !== nonce) {
      // Not a failure of the client: the RFC 9449 §8 challenge.
      res.writeHead(401, { 'dpop-nonce': nonce, 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="nonce required"', 'content-type': 'application/json' });
      res.end('{"error":"use_dpop_nonce"}');
      return false;
    }
    seenJti.add(payload.jti);
    proofs.push({ method: req.method ?? '', path, htu: payload.htu as string, jti: payload.jti, jkt, nonce: payload.nonce as string | undefined });
    return true;
  }

  const server = await listenLocal((req, res) => {
    void (async () => {
      const url = req.url ?? '';
      if (!url.startsWith(prefix + '/')) return sendJson(res, 404, { error: 'outside prefix' });
      if (!(await verify(req, res))) {
        req.resume();
        return;
      }
      const local = url.slice(prefix.length);
      if (req.method === 'POST' && local === '/api/v1/daemon/evaluate-hook') {
        const body = await readAll(req);
        const recorded: RecordedRequest = { method: 'POST', url, headers: req.headers, rawHeaders: req.rawHeaders, body };
        hookRequests.push(recorded);
        const event = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        events.push(event);
        const reply = await hook(event);
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if (reply.destroy) return req.socket.destroy();
        if (reply.raw !== undefined) {
          res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
          return res.end(reply.raw);
        }
        return sendJson(res, reply.status ?? 200, reply.body ?? { decision: 'allow' });
      }
      // MCP: hand the request over with its body still unread when streaming is wanted.
      const recorded: RecordedRequest = { method: req.method ?? '', url: local, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) };
      await mcp(recorded, res, req);
    })().catch((err: Error) => {
      rejected.push(`gateway crashed: ${err.message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'gateway test double crashed' });
    });
  });
  baseUrl = server.url + prefix;
  listeningPort = server.port;
  return {
    ...server,
    baseUrl,
    proofs,
    rejected,
    events,
    hookRequests,
    onHook: (h) => { hook = h; },
    onMcp: (r) => { mcp = r; },
    requireNonce: (n) => { nonce = n; },
    trust: (jkt, agentId) => { trusted.set(jkt, agentId); },
  };
}

/** A fake gateway and an agent identity it trusts: what a suite evaluating remotely starts with. */
export interface TrustedGateway {
  readonly gateway: FakeGateway;
  readonly identity: TestIdentity;
  /** Asserts that every proof the gateway saw verified, then closes it and removes the identity. */
  close(): Promise<void>;
}

export async function startTrustedGateway(options: { prefix?: string; format?: 'pkcs8' | 'sec1' } = {}): Promise<TrustedGateway> {
  const gateway = await startGateway({ prefix: options.prefix });
  const identity = await makeIdentityDir({ format: options.format });
  gateway.trust(identity.jkt, identity.agentId);
  return {
    gateway,
    identity,
    async close() {
      try {
        assert.deepEqual(gateway.rejected, [], 'every proof the sidecar sent verified');
      } finally {
        await gateway.close();
        await identity.cleanup();
      }
    },
  };
}
