import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { SidecarError } from '../errors.ts';
import { errorEnvelope, sidecarErrorBody, type ErrorBody, type ErrorStyle } from '../http/providers.ts';
import { parseTarget, type Target } from '../http/path.ts';
import type { ProxyEnv } from '../http/context.ts';

export { RESPONSE_ALREADY_SENT };

/** The request target as the client sent it (the raw node URL when there is a socket), parsed once per request. */
export function targetOf(c: Context<ProxyEnv>): Target {
  const known = c.get('target');
  if (known) return known;
  const raw = c.env?.incoming?.url;
  let target: Target;
  if (raw !== undefined) {
    target = parseTarget(raw);
  } else {
    const url = new URL(c.req.url);
    target = parseTarget(url.pathname + url.search);
  }
  c.set('target', target);
  return target;
}

/**
 * Codes after which the rest of the request body may still be on the wire:
 * close the connection. Not the cap's 413 or the budget's 503: body.ts reads
 * and drops the rest, so a client still sending reads the answer, not a reset.
 */
const CLOSE_AFTER = new Set(['bad_request', 'invalid_json', 'unsupported_content_encoding']);
/** Codes a client should retry after a pause (the SDKs honour Retry-After). */
const RETRY_AFTER: Record<string, string> = { body_budget_exhausted: '1' };

/**
 * A JSON error answer. With a provider style, the body has that provider's
 * envelope (the SDKs then raise their typed errors); without one, the
 * sidecar's own `{"error":{"code","message"}}`.
 */
export function replyError(c: Context<ProxyEnv>, body: ErrorBody, style?: ErrorStyle): Response {
  const record = c.env?.record;
  if (record) record.code = body.code;
  const headers: Record<string, string> = {};
  if (CLOSE_AFTER.has(body.code)) headers.connection = 'close';
  const retryAfter = RETRY_AFTER[body.code];
  if (retryAfter) headers['retry-after'] = retryAfter;
  const payload = style ? errorEnvelope(style, body) : { error: { code: body.code, message: body.message } };
  return c.json(payload, body.status as 400, headers);
}

export function replySidecarError(c: Context<ProxyEnv>, err: SidecarError, style?: ErrorStyle): Response {
  return replyError(c, sidecarErrorBody(err), style);
}
