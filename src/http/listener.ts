import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ERROR_TABLE, type ErrorCode } from '../errors.ts';
import { scalarChild, type Logger } from '../log.ts';
import { methodLabel, type Metrics } from '../metrics.ts';
import { newRecord, routeOf, type RequestLine, type RequestRecord } from './context.ts';
import { InFlight, type InFlightEntry } from './in-flight.ts';

const MAX_LOGGED_PATH = 256;
const MAX_LOGGED_REASON = 256;
/** Status labels as strings, made once. */
const STATUS_LABELS: string[] = [];
const statusLabel = (status: number): string => (STATUS_LABELS[status] ??= String(status));

/** Which variables place a listener: a bind failure names them, so a second sidecar on a host says what to move. */
export interface ListenerVariables {
  readonly host: string;
  readonly port: string;
}

const BIND_PROBLEMS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use (another sidecar or process on this host?)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not available on this host',
};

/** Listens, or fails with a message naming the address, what went wrong and the variables that move it. */
export function listen(server: Server, port: number, host: string, names: ListenerVariables): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      const problem = (err.code && BIND_PROBLEMS[err.code]) ?? err.message;
      reject(Object.assign(
        new Error(`cannot listen on ${host}:${port}: ${problem}; set ${names.port} (or ${names.host}) to move it`, { cause: err }),
        { code: err.code },
      ));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Sockets whose parse error is being answered. */
const answered = new WeakSet<Socket>();

/** How long a refused connection keeps reading (and dropping) what the client still sends. */
const LINGER_MS = 2_000;

/** Answers what node's HTTP parser refuses (bad framing, huge headers, slow clients) with a JSON error. */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // node raises clientError again for every chunk that follows a parse error: the socket is answered once.
  if (answered.has(socket)) return;
  answered.add(socket);
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'header_too_large'
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout'
    : 'bad_request';
  const { status, message } = ERROR_TABLE[code];
  const body = JSON.stringify({ error: { code, message } });
  // Lingering close: what the client is still sending is read and dropped for a
  // moment, so its kernel does not see a reset (which can discard this answer
  // before the client reads it) while it writes the rest of a large body.
  socket.resume();
  const answer = (): void => {
    if (socket.destroyed) return;
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
    socket.end(
      `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };
  // A request read whole from this connection (the bytes after it are what
  // failed) gets its own answer first: ending the socket under it would turn
  // that answer into a reset. One still reading its body (the client left
  // mid-body) is ended with the socket. node keeps the response in flight on
  // the socket.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight && inFlight.req.complete && !inFlight.writableFinished) inFlight.once('close', answer);
  else answer();
}


export interface ProxyServer {
  readonly server: Server;
  /** Responses not yet closed: what a drain waits for. */
  readonly active: { readonly size: number } & Iterable<ServerResponse>;
  /** From now on every response says `connection: close`; those not yet started too. */
  startDraining(): void;
}

/**
 * The proxy listener: runs each request through `handle` (the routes) and,
 * once the response has closed and the handler has recorded everything it
 * learned (bytes, error codes after a relay, the usage meter's figures),
 * writes the request's metrics and its one log line and hands the line to
 * `onLine` (the debug history). The duration is the client's, up to the close.
 */
export function createProxyServer(options: {
  /** Answers one request (src/routes/proxy.ts); settles once the handler has recorded what it learned. */
  handle: (req: IncomingMessage, res: ServerResponse, record: RequestRecord) => Promise<void>;
  metrics: Metrics;
  logger: Logger;
  onLine?: ((line: RequestLine) => void) | undefined;
}): ProxyServer {
  const { handle, metrics, logger, onLine } = options;
  const requestLog = scalarChild(logger, { component: 'request' });
  let draining = false;
  const active = new InFlight<ServerResponse>();

  const finish = (req: IncomingMessage, res: ServerResponse, entry: InFlightEntry<ServerResponse>, record: RequestRecord, started: number, closedAt: number): void => {
    active.remove(entry);
    const seconds = (closedAt - started) / 1000;
    // 499 (nginx's convention) whenever the client left first, even mid-stream.
    const status = record.code === 'client_aborted' || !res.headersSent ? 499 : res.statusCode;
    const provider = record.provider;
    metrics.lean.inflight.at(record.route).dec();
    metrics.lean.requests.at(record.route, provider, methodLabel(req.method), statusLabel(status)).inc();
    metrics.lean.requestDuration.at(record.route, provider).observe(seconds);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const line: RequestLine = {
      route: record.route,
      provider,
      method: req.method,
      path: (q === -1 ? url : url.slice(0, q)).slice(0, MAX_LOGGED_PATH),
      status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      decision: record.decision,
      policy_id: record.policyId,
      source: record.source,
      reason: record.reason?.slice(0, MAX_LOGGED_REASON),
      code: record.code,
      response_decision: record.responseDecision,
      response_policy_id: record.responsePolicyId,
      response_source: record.responseSource,
      bytes_in: record.bytesIn,
      bytes_out: record.bytesOut,
    };
    // The debug history keeps the request's governance fields; the log line adds what the response said.
    requestLog.info({ ...line, model: record.model, input_tokens: record.inputTokens, output_tokens: record.outputTokens }, 'request');
    onLine?.(line);
  };

  const server = createServer(
    { headersTimeout: 30_000, requestTimeout: 300_000, keepAliveTimeout: 5_000, noDelay: true },
    (req, res) => {
      const started = performance.now();
      const record = newRecord(routeOf(req.url));
      const entry = active.add(res);
      metrics.lean.inflight.at(record.route).inc();
      if (draining) res.setHeader('connection', 'close');
      // Finished once both the response has closed and the handler has
      // settled: a countdown rather than two promises and Promise.all. After
      // the close, one microtask, so every other 'close' listener (the relay's)
      // has recorded what it learned first.
      let pending = 2;
      let closedAt = 0;
      const step = (): void => {
        if (--pending === 0) finish(req, res, entry, record, started, closedAt);
      };
      res.once('close', () => {
        closedAt = performance.now();
        queueMicrotask(step);
      });
      handle(req, res, record).then(step, (err: unknown) => {
        // The routes answer their own failures: this is a bug, logged without the request's data.
        logger.error({ err: { message: (err as Error)?.message } }, 'request failed outside its route');
        res.destroy();
        step();
      });
    },
  );
  server.on('clientError', onClientError);

  return {
    server,
    active,
    startDraining() {
      draining = true;
      for (const res of active) if (!res.headersSent) res.setHeader('connection', 'close');
    },
  };
}
