import type { ServerResponse } from 'node:http';
import { SidecarError } from '../errors.ts';
import { errorEnvelope, sidecarErrorBody, type ErrorBody, type ErrorStyle } from '../http/providers.ts';
import type { Exchange } from '../http/context.ts';

/**
 * An answer to write whole (a route's JSON error, an admin answer), or SENT
 * when the route has written (or given up on) the response itself, as a
 * relay does.
 */
export class Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  constructor(status: number, headers: Readonly<Record<string, string>>, body: string) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
}

/** The route wrote the response itself (or the client is gone): nothing left to write. */
export const SENT = new Reply(0, {}, '');

/**
 * Codes after which the rest of the request body may still be on the wire:
 * close the connection. Not the cap's 413 or the budget's 503: body.ts reads
 * and drops the rest, so a client still sending reads the answer, not a reset.
 */
const CLOSE_AFTER = new Set(['bad_request', 'invalid_json', 'unsupported_content_encoding']);
/** Codes a client should retry after a pause (the SDKs honour Retry-After). */
const RETRY_AFTER: Record<string, string> = { body_budget_exhausted: '1' };

/**
 * A JSON error answer, its code recorded for the request's log line. With a
 * provider style, the body has that provider's envelope (the SDKs then raise
 * their typed errors); without one, the sidecar's own
 * `{"error":{"code","message"}}`.
 */
export function replyError(x: Pick<Exchange, 'record'>, body: ErrorBody, style?: ErrorStyle): Reply {
  x.record.code = body.code;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (CLOSE_AFTER.has(body.code)) headers.connection = 'close';
  const retryAfter = RETRY_AFTER[body.code];
  if (retryAfter) headers['retry-after'] = retryAfter;
  const payload = style ? errorEnvelope(style, body) : { error: { code: body.code, message: body.message } };
  return new Reply(body.status, headers, JSON.stringify(payload));
}

export function replySidecarError(x: Pick<Exchange, 'record'>, err: SidecarError, style?: ErrorStyle): Reply {
  return replyError(x, sidecarErrorBody(err), style);
}

/** Writes a route's answer; one that comes after the response has started (or closed) ends it instead. */
export function writeReply(res: ServerResponse, reply: Reply): void {
  if (reply === SENT) return;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = Buffer.from(reply.body);
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(body.length) });
  res.end(body);
}
