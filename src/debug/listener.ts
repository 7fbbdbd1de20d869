import { createServer, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { createDebugApp, type DebugDeps } from './app.ts';
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

/** Everything behind FIRSTOPS_DEBUG_PORT; not listening yet (the caller binds it with the others). */
export function createDebugListener(deps: Omit<DebugDeps, 'history' | 'tap' | 'levels'>): DebugListener {
  const { config, logger } = deps;
  const history = createHistory(config.debugHistory);
  const tap = createTap({
    maxBufferedBytes: TAP_MAX_BUFFERED_BYTES,
    maxReaders: TAP_MAX_READERS,
    keepaliveMs: TAP_KEEPALIVE_MS,
    onDrop: (buffered) => logger.warn({ component: 'debug', buffered_bytes: buffered }, 'dropped a slow /debug/requests/stream reader'),
  });
  const levels = createLevelSwitch(logger, config.logLevel);
  const app = createDebugApp({ ...deps, history, tap, levels });
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, getRequestListener(app.fetch, { overrideGlobalObjects: false }));
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
