import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { DebugDeps } from './app.ts';
import { createHistory, type RequestLine } from './history.ts';
import { createLevelSwitch } from './log-level.ts';
import { createTap } from './tap.ts';

/** Unsent bytes a tap reader may have before it is dropped: a few hundred request lines. */
const TAP_MAX_BUFFERED_BYTES = 256 * 1024;
const TAP_MAX_READERS = 8;
const TAP_KEEPALIVE_MS = 15_000;

export interface DebugListener {
  readonly server: Server;
  /** The request path's one call: a ring push, plus one serialisation when a tap reader is connected. */
  record(line: RequestLine): void;
  /** Ends tap streams, closes the listener, puts the configured log level back. */
  close(): Promise<void>;
}

type NodeListener = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * The debug app (hono, through its node adapter), loaded on the listener's
 * first request. The adapter's web-standard Request, Response and Headers
 * load Node's bundled undici, about 3 MB of the image's idle memory
 * (docs/performance.md, "Fifth round"), for a page most sidecars never
 * serve; the request history and the tap record from the start either way.
 */
async function loadDebugApp(deps: DebugDeps): Promise<NodeListener> {
  const [{ createDebugApp }, { getRequestListener }] = await Promise.all([import('./app.ts'), import('@hono/node-server')]);
  return getRequestListener(createDebugApp(deps).fetch, { overrideGlobalObjects: false });
}

/** Everything behind FIRSTOPS_DEBUG_PORT; not listening yet (the caller binds it with the others). */
export function createDebugListener(deps: Omit<DebugDeps, 'history' | 'tap' | 'levels' | 'startedAt'>): DebugListener {
  const { config, logger } = deps;
  const history = createHistory(config.debugHistory);
  const tap = createTap({
    maxBufferedBytes: TAP_MAX_BUFFERED_BYTES,
    maxReaders: TAP_MAX_READERS,
    keepaliveMs: TAP_KEEPALIVE_MS,
    onDrop: (buffered) => logger.warn({ component: 'debug', buffered_bytes: buffered }, 'dropped a slow /debug/requests/stream reader'),
  });
  const levels = createLevelSwitch(logger, config.logLevel);
  const startedAt = new Date().toISOString();
  let app: Promise<NodeListener> | undefined;
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    app ??= loadDebugApp({ ...deps, history, tap, levels, startedAt });
    app.then((listener) => listener(req, res), (err: Error) => {
      logger.error({ component: 'debug', err: { message: err.message } }, 'the debug app failed to load');
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"internal","message":"internal error"}}');
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  return {
    server,
    record(line) {
      const at = Date.now();
      history.push(line, at);
      if (tap.size > 0) tap.publish(line, at);
    },
    close() {
      tap.close();
      levels.reset();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
