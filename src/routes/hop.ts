import type { Context } from 'hono';
import type { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ClientAbortedError, readBody } from '../body.ts';
import { SidecarError } from '../errors.ts';
import type { Metrics, Route } from '../metrics.ts';
import type { ErrorStyle } from '../providers.ts';
import { clientGone, relayResponse } from '../relay.ts';
import type { ProxyEnv } from '../context.ts';
import { RESPONSE_ALREADY_SENT, replySidecarError } from './respond.ts';

/**
 * Reads the request body under the cap. Returns the body, or the answer to
 * give instead: the error for a bad or oversized body, nothing (the socket is
 * closed) when the client went away mid-body.
 */
export async function readBodyOrReply(c: Context<ProxyEnv>, maxBytes: number, style?: ErrorStyle): Promise<Buffer | Response> {
  const req = c.env!.incoming!;
  try {
    const body = await readBody(req, maxBytes);
    if (c.env?.record) c.env.record.bytesIn = body.length;
    return body;
  } catch (err) {
    if (err instanceof ClientAbortedError) {
      if (c.env?.record) c.env.record.code = err.code;
      c.env!.outgoing!.destroy();
      return RESPONSE_ALREADY_SENT;
    }
    if (err instanceof SidecarError) return replySidecarError(c, err, style);
    throw err;
  }
}

export interface Hop {
  /** Aborted when the client goes away: pass it to the outbound request. */
  readonly signal: AbortSignal;
  /**
   * Awaits the outbound request. A failure before its response is classified,
   * counted and answered here (nothing to answer when the client left).
   */
  send(request: Promise<Dispatcher.ResponseData>): Promise<Dispatcher.ResponseData | Response>;
  /** Streams the response to the client and records how it went. */
  relay(response: Dispatcher.ResponseData, transform?: () => Transform): Promise<Response>;
}

/** One outbound hop tied to the client's lifetime, for a route whose failures `classify` names. */
export function openHop(c: Context<ProxyEnv>, options: { route: Route; metrics: Metrics; classify: (err: unknown) => SidecarError; style?: ErrorStyle }): Hop {
  const { route, metrics, classify } = options;
  const res = c.env!.outgoing!;
  const record = c.env?.record;
  const signal = clientGone(res);
  const failed = (err: unknown): string => {
    if (signal.aborted) return 'client_aborted';
    const code = classify(err).code;
    if (code !== 'identity_unavailable') metrics.upstreamErrors.inc({ route, code });
    return code;
  };

  return {
    signal,
    async send(request) {
      try {
        return await request;
      } catch (err) {
        const code = failed(err);
        if (code === 'client_aborted') {
          if (record) record.code = code;
          return RESPONSE_ALREADY_SENT;
        }
        return replySidecarError(c, classify(err), options.style);
      }
    },
    async relay(response, transform) {
      const relayed = await relayResponse(res, response, { route, metrics, transform });
      if (record) {
        record.bytesOut = relayed.bytesOut;
        if (relayed.error) record.code = failed(relayed.error);
      } else if (relayed.error) {
        failed(relayed.error);
      }
      return RESPONSE_ALREADY_SENT;
    },
  };
}
