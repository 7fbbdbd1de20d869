// Shared by the fault, fuzz and soak tests: raw sockets, policy files, handle counts.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

/** A port nothing listens on (bound then released; loopback only). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A raw TCP server standing in for a broken upstream or gateway: `onConnection`
 * gets the socket and the bytes of the request head as they arrive.
 */
export async function startRawServer(onConnection: (socket: Socket, head: Promise<string>) => void): Promise<{ port: number; url: string; connections: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const head = new Promise<string>((resolve) => {
      let text = '';
      const onData = (chunk: Buffer): void => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          socket.off('data', onData);
          resolve(text);
        }
      };
      socket.on('data', onData);
      socket.on('close', () => resolve(text));
    });
    onConnection(socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface RawResponse {
  /** Status code of the first response, 0 when none arrived. */
  readonly status: number;
  /** Every byte received until the connection closed or the wait ended. */
  readonly raw: string;
  /** True when the server closed the connection. */
  readonly closed: boolean;
  /** The body of the first response (content-length framed), when one was complete. */
  readonly body: string;
  readonly headers: Record<string, string>;
}

function parseFirst(full: string): Pick<RawResponse, 'status' | 'body' | 'headers'> {
  // Interim 1xx answers (100 Continue) are skipped: the final response counts.
  let raw = full;
  while (/^HTTP\/1\.[01] 1\d\d /.test(raw) && raw.includes('\r\n\r\n')) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  if (!m) return { status: 0, body: '', headers: {} };
  const end = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of raw.slice(0, end === -1 ? raw.length : end).split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = '';
  if (end !== -1) {
    const len = Number(headers['content-length'] ?? 'NaN');
    const rest = Buffer.from(raw.slice(end + 4), 'latin1');
    body = (Number.isFinite(len) ? rest.subarray(0, len) : rest).toString('utf8');
  }
  return { status: Number(m[1]), body, headers };
}

/**
 * Sends bytes exactly as given on a fresh TCP connection and collects the
 * answer. Resolves when the server closes, or `idleMs` after the first
 * complete response when the connection stays open (keep-alive).
 */
export async function rawExchange(port: number, bytes: Buffer | string | ReadonlyArray<Buffer | string>, options: { idleMs?: number; timeoutMs?: number; endAfterWrite?: boolean } = {}): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  let closed = false;
  const result = new Promise<void>((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    const total = setTimeout(() => resolve(), options.timeoutMs ?? 10_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      const first = parseFirst(text);
      if (first.status && text.includes('\r\n\r\n')) {
        clearTimeout(idle);
        idle = setTimeout(() => resolve(), options.idleMs ?? 300);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(idle);
      clearTimeout(total);
      resolve();
    });
  });
  for (const part of Array.isArray(bytes) ? bytes : [bytes]) {
    if (socket.destroyed) break;
    socket.write(part as Buffer | string);
  }
  if (options.endAfterWrite) socket.end();
  await result;
  socket.destroy();
  const raw = Buffer.concat(chunks).toString('latin1');
  return { ...parseFirst(raw), raw, closed };
}

/** Counts of active libuv resources by type (TCPSocketWrap, Timeout, ...). */
export function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Polls `check` until it returns true (an event we cannot subscribe to, e.g. socket teardown inside a pool). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function tempDir(prefix = 'fo-faults-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A local policy: deny a marker, redact another, allow the rest. JSON is YAML. */
export const FAULT_POLICY = {
  version: 1,
  default: 'allow',
  rules: [
    { id: 'deny-marker', match: { input: { model: 'deny-me' } }, decision: 'deny', reason: 'marker model' },
    { id: 'redact-secret', match: { channel: 'llm' }, decision: 'modify', redact: [{ pattern: 'SECRET-[0-9]+', replacement: '[x]' }] },
  ],
};

export async function writePolicy(file: string, doc: unknown = FAULT_POLICY): Promise<void> {
  await writeFile(file, JSON.stringify(doc, null, 2));
}

export interface SimpleResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly json: any;
}

/** One HTTP request on a fresh connection (agent: false); rejects on a socket error. */
export function send(url: string, options: { method?: string; path: string; body?: string | Buffer; headers?: Record<string, string>; signal?: AbortSignal }): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest({
      host: u.hostname,
      port: u.port,
      method: options.method ?? (body ? 'POST' : 'GET'),
      path: options.path,
      agent: false,
      headers: { ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}), ...options.headers },
      signal: options.signal,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The sidecar's error code from any of the envelopes (OpenAI style carries `code`). */
export function errorCode(r: SimpleResponse): string | undefined {
  return r.json?.error?.code;
}

export const chatBody = (content = 'hello', extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
