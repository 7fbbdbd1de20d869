/**
 * An egress proxy stand-in on 127.0.0.1: CONNECT tunnels (what https://
 * targets use) and absolute-form forwarding (http:// targets), recording
 * what it was asked for and the Proxy-Authorization it got. It only ever
 * connects to loopback: any other target is answered 502 without a
 * connection.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Waiter } from './server.ts';

export interface ProxyHit {
  readonly kind: 'connect' | 'forward';
  /** `host:port` for a tunnel, the absolute URL for a forwarded request. */
  readonly target: string;
  readonly authorization: string | undefined;
}

export interface TestProxy {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly hits: ProxyHit[];
  readonly arrivals: Waiter<ProxyHit>;
  /** Answer every CONNECT with this status instead of tunnelling (undefined: tunnel). */
  refuseWith(status: number | undefined): void;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function splitAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(authority);
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

/** `credentials` (user:password) makes the proxy demand them (407 otherwise). */
export async function startProxy(options: { credentials?: string } = {}): Promise<TestProxy> {
  const hits: ProxyHit[] = [];
  const arrivals = new Waiter<ProxyHit>();
  const sockets = new Set<Socket>();
  const expected = options.credentials ? `Basic ${Buffer.from(options.credentials).toString('base64')}` : undefined;
  let refusal: number | undefined;

  const record = (kind: ProxyHit['kind'], target: string, req: IncomingMessage): ProxyHit => {
    const auth = req.headers['proxy-authorization'];
    const hit = { kind, target, authorization: typeof auth === 'string' ? auth : undefined };
    hits.push(hit);
    arrivals.push(hit);
    return hit;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hit = record('forward', req.url ?? '', req);
    if (expected && hit.authorization !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"', 'content-length': '0' });
      return res.end();
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400);
      return res.end();
    }
    if (target.protocol !== 'http:' || !LOOPBACK.has(target.hostname)) {
      res.writeHead(502);
      return res.end();
    }
    // Raw, so repeated fields stay separate lines as they arrived.
    const headers: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!req.rawHeaders[i]!.toLowerCase().startsWith('proxy-')) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    const out = request({ host: '127.0.0.1', port: Number(target.port || 80), method: req.method, path: target.pathname + target.search, headers }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const hit = record('connect', req.url ?? '', req);
    if (expected && hit.authorization !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (refusal !== undefined) {
      client.end(`HTTP/1.1 ${refusal} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const authority = splitAuthority(hit.target);
    if (!authority || !LOOPBACK.has(authority.host)) {
      client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const upstream = connect(authority.port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    let established = false;
    upstream.once('connect', () => {
      established = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => {
      if (!established) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      else client.destroy();
    });
    client.on('close', () => upstream.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    arrivals,
    refuseWith: (status) => {
      refusal = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
