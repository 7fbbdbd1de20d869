import type { ServerResponse } from 'node:http';
import { withTime, type RequestLine } from './history.ts';

export interface Tap {
  /** Connected readers; the request path publishes only when this is above 0. */
  readonly size: number;
  readonly full: boolean;
  /** Sends the line to every reader; a reader whose unsent bytes exceed the bound is dropped. */
  publish(line: RequestLine, at: number): void;
  /** Turns a response into a server-sent event stream of request lines. */
  attach(res: ServerResponse): void;
  /** Ends every stream (at shutdown). */
  close(): void;
}

export interface TapOptions {
  /** Unsent bytes a reader may have in the process before it is dropped. */
  maxBufferedBytes: number;
  maxReaders: number;
  /** Interval of the `: ping` comment that keeps idle port-forwards open. */
  keepaliveMs: number;
  onDrop: (buffered: number) => void;
}

/**
 * The live request tap (`curl -N …/debug/requests/stream`): each line is
 * serialised once and written to every reader. Nothing queues in this
 * process beyond node's socket buffer, and a reader that lets that grow past
 * `maxBufferedBytes` is disconnected rather than buffered for.
 */
export function createTap(options: TapOptions): Tap {
  for (const key of ['maxBufferedBytes', 'maxReaders', 'keepaliveMs'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) throw new RangeError(`tap ${key} must be a positive integer, got ${options[key]}`);
  }
  const readers = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;

  const send = (res: ServerResponse, chunk: string): void => {
    if (res.writableLength > options.maxBufferedBytes) {
      readers.delete(res);
      options.onDrop(res.writableLength);
      res.destroy();
      return;
    }
    res.write(chunk);
  };
  const ping = (): void => {
    for (const res of readers) send(res, ': ping\n\n');
  };

  return {
    get size() {
      return readers.size;
    },
    get full() {
      return readers.size >= options.maxReaders;
    },
    publish(line, at) {
      const chunk = `data: ${JSON.stringify(withTime(line, at))}\n\n`;
      for (const res of readers) send(res, chunk);
    },
    attach(res) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.flushHeaders();
      // A first comment, so a reader knows the stream is open before any request.
      res.write(': connected\n\n');
      readers.add(res);
      res.once('close', () => {
        readers.delete(res);
        if (readers.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      });
      if (!timer) {
        timer = setInterval(ping, options.keepaliveMs);
        timer.unref();
      }
    },
    close() {
      for (const res of readers) res.end();
      readers.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
