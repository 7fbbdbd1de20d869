import type { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ClientAbortedError, readBody, type ReadBodyOptions } from '../http/body.ts';
import { SidecarError } from '../errors.ts';
import type { Metrics, Route } from '../metrics.ts';
import type { ErrorStyle } from '../http/providers.ts';
import { clientGone, relayResponse, type BodyObserver } from '../http/relay.ts';
import type { Exchange } from '../http/context.ts';
import { SENT, replySidecarError, type Reply } from './respond.ts';

/**
 * Reads the request body under the cap. Returns the body, or the answer to
 * give instead: the error for a bad or oversized body, nothing (the socket is
 * closed) when the client went away mid-body.
 */
export function readBodyOrReply(x: Exchange, options: ReadBodyOptions & { route: Route; metrics: Metrics }, style?: ErrorStyle): Promise<Buffer | Reply> {
  // Continuations rather than an async frame: this runs for every request.
  return readBody(x.req, options).then((body) => {
    x.record.bytesIn = body.length;
    return body;
  }, (err: unknown) => {
    if (err instanceof ClientAbortedError) {
      x.record.code = err.code;
      x.res.destroy();
      return SENT;
    }
    if (err instanceof SidecarError) {
      // The request's log line carries the code (replyError records it).
      if (err.code === 'body_budget_exhausted') options.metrics.budgetRefusals.inc({ route: options.route });
      return replySidecarError(x, err, style);
    }
    throw err;
  });
}

export interface Hop {
  /** Aborted when the client goes away (or by cancel()): pass it to the outbound request. */
  readonly signal: AbortSignal;
  /**
   * Aborts `signal` (the outbound request) with `reason`. Only once the
   * client's answer is over: until then an aborted signal means the client
   * left. One controller for both, where an AbortSignal.any of the client's
   * signal and a second controller's cost a composite signal per request.
   */
  cancel(reason: Error): void;
  /**
   * Awaits the outbound request. A failure before its response is classified,
   * counted and answered here (nothing to answer when the client left).
   */
  send(request: Promise<Dispatcher.ResponseData>): Promise<Dispatcher.ResponseData | Reply>;
  /** The client left before there was anything to send: record it, answer nothing. */
  abandoned(): Reply;
  /** Streams the response to the client and records how it went; `observe` sees a copy of the body. */
  relay(response: Dispatcher.ResponseData, transform?: () => Transform, observe?: BodyObserver): Promise<Reply>;
}

/** One outbound hop tied to the client's lifetime, for a route whose failures `classify` names. */
export function openHop(x: Exchange, options: { route: Route; metrics: Metrics; classify: (err: unknown) => SidecarError; style?: ErrorStyle }): Hop {
  const { route, metrics, classify } = options;
  const { res, record } = x;
  const gone = clientGone(res);
  const signal = gone.signal;
  /** The error code for a failed hop, counted unless the client caused it. */
  const failed = (err: unknown): { code: string; error?: SidecarError } => {
    if (signal.aborted) return { code: 'client_aborted' };
    const error = classify(err);
    if (error.code !== 'identity_unavailable') metrics.upstreamErrors.inc({ route, code: error.code });
    return { code: error.code, error };
  };
  const abandoned = (): Reply => {
    record.code = 'client_aborted';
    return SENT;
  };

  return {
    signal,
    cancel: (reason) => gone.abort(reason),
    // Continuations rather than async frames: each runs for every request.
    send(request) {
      return request.catch((err: unknown) => {
        const { error } = failed(err);
        return error ? replySidecarError(x, error, options.style) : abandoned();
      });
    },
    abandoned,
    relay(response, transform, observe) {
      return relayResponse(res, response, { route, metrics, transform, observe }).then((relayed) => {
        record.bytesOut = relayed.bytesOut;
        if (relayed.error) record.code = failed(relayed.error).code;
        return SENT;
      });
    },
  };
}
