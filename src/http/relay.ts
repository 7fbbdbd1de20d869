import type { ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { isEventStream, markEventStream, relayResponseHeaders } from './headers.ts';
import type { Metrics, Route } from '../metrics.ts';

/** Sees a copy of what is relayed, after the client got it; it must not throw. */
export interface BodyObserver {
  head(status: number, headers: Dispatcher.ResponseData['headers']): void;
  chunk(chunk: Buffer): void;
  /** Once, when the relay is over; `error` when it broke. */
  end(error?: Error): void;
}

export interface RelayResult {
  readonly bytesOut: number;
  /** Set when the relay broke after the response had started (the connection was closed). */
  readonly error?: Error;
}

/**
 * An AbortController aborted when the client goes away before its response
 * is complete: the hop its signal feeds is cancelled, so an abandoned
 * generation stops costing tokens. Its owner may abort it too (a hop
 * cancelled once the client's answer is over).
 */
export function clientGone(res: ServerResponse): AbortController {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller;
}

function flushHeaders(res: ServerResponse): void {
  if (!res.destroyed && !res.writableEnded) res.flushHeaders();
}

/**
 * Streams an upstream response to the client as it arrives: status, end-to-end
 * headers, raw body bytes (compressed stays compressed). Event streams are
 * flushed at once and marked against buffering, and `transform` (when given)
 * rewrites them. A failure mid-body closes the client connection: a truncated
 * body must never look complete.
 */
export function relayResponse(
  res: ServerResponse,
  upstream: Dispatcher.ResponseData,
  options: { route: Route; metrics: Metrics; transform?: (() => Transform) | undefined; observe?: BodyObserver | undefined },
): Promise<RelayResult> {
  const headers = relayResponseHeaders(upstream.headers);
  const stream = isEventStream(headers['content-type']);
  const transform = stream && options.transform ? options.transform() : undefined;
  if (stream) markEventStream(headers);
  if (transform) delete headers['content-length'];
  res.writeHead(upstream.statusCode, headers);
  // An event stream's headers go out at once, whatever the first event's
  // timing: with its first chunk when that is already here (one socket write
  // instead of two; the first res.write carries the headers), else on their
  // own one turn of the event loop later.
  let flush = stream ? setImmediate(flushHeaders, res) : undefined;
  const observe = options.observe;
  observe?.head(upstream.statusCode, upstream.headers);

  let bytesOut = 0;
  const started = stream ? performance.now() : 0;
  const active = stream ? options.metrics.lean.streamsActive.at(options.route) : undefined;
  active?.inc();

  return new Promise((resolve) => {
    let settled = false;
    const done = (err?: Error | null): void => {
      if (settled) return;
      settled = true;
      if (flush) clearImmediate(flush);
      if (active) {
        active.dec();
        options.metrics.lean.streamDuration.at(options.route).observe((performance.now() - started) / 1000);
      }
      observe?.end(err ?? undefined);
      resolve(err ? { bytesOut, error: err } : { bytesOut });
    };
    // Wired by hand rather than with stream.pipeline: pipeline aborts an
    // AbortController of its own when it finishes, and that builds a
    // DOMException (with a stack trace) per response.
    const source: Readable = transform ? throughTransform(upstream.body, transform) : upstream.body;
    source.on('data', (chunk: Buffer) => {
      if (flush) {
        clearImmediate(flush);
        flush = undefined;
      }
      bytesOut += chunk.length;
      if (!res.write(chunk)) source.pause();
      observe?.chunk(chunk);
    });
    res.on('drain', () => source.resume());
    source.once('end', () => {
      if (flush) {
        clearImmediate(flush);
        flush = undefined;
      }
      res.end();
    });
    source.on('error', (err: Error) => {
      res.destroy();
      done(err);
    });
    res.once('close', () => {
      if (res.writableFinished) return done();
      source.destroy();
      done(Object.assign(new Error('client closed the connection before the response was complete'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
  });
}

/**
 * `body` piped into `transform`, what stream.pipeline did here without its
 * per-call AbortController: backpressure both ways (Readable.pipe), the
 * body's end ends the transform, a body error destroys the transform with
 * it (the relay sees it on the transform), and a transform that closes
 * first (it failed, or the client went away) destroys the body, so the
 * upstream request is aborted.
 */
export function throughTransform(body: Readable, transform: Transform): Transform {
  // Kept for the body's whole life: undici's body emits an error when it is destroyed before its end.
  body.on('error', (err: Error) => transform.destroy(err));
  transform.once('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(transform);
  return transform;
}
