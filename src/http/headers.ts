import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields, plus the de-facto ones proxies drop. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);

/**
 * The field names a Connection header lists, lower-cased. Every response of
 * an upstream, and most requests, carry the same value (`keep-alive`), so
 * the last value's set is kept and handed out again: callers only read it.
 */
let lastConnection: string | undefined;
let lastTokens: ReadonlySet<string> = new Set();
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (!value) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  if (joined === lastConnection) return lastTokens;
  const tokens = new Set<string>();
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name) tokens.add(name);
  }
  lastConnection = joined;
  lastTokens = tokens;
  return tokens;
}

/**
 * Request headers for an LLM upstream, from the client's raw header list
 * (case and order kept, repeated fields kept). Drops hop-by-hop fields and any
 * field the client named in `Connection`, `Host`, `Content-Length` (the
 * caller sets it for the body it sends), `Expect` and every `Proxy-*`. The
 * agent's own credentials pass through untouched.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[], connection: string | string[] | undefined): string[] {
  const named = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (
      HOP_BY_HOP.has(lower) || lower === 'host' || lower === 'content-length' || lower === 'expect' ||
      lower.startsWith('proxy-') || named?.has(lower)
    ) continue;
    out.push(name, rawHeaders[i + 1] as string);
  }
  return out;
}

/** Response headers to relay to the client: everything end-to-end, as the upstream sent it. */
export function relayResponseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export function isEventStream(contentType: string | string[] | undefined): boolean {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  return value !== undefined && value.trimStart().toLowerCase().startsWith('text/event-stream');
}

/** True for application/json and any `+json` media type. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  // What every provider sends, without splitting it.
  if (contentType === 'application/json' || contentType.startsWith('application/json;')) return true;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

/**
 * SSE responses get `X-Accel-Buffering: no` and `Cache-Control: no-cache`
 * unless the upstream set them, so a buffering proxy in front cannot batch
 * events.
 */
export function markEventStream(headers: Record<string, string | string[]>): void {
  headers['x-accel-buffering'] ??= 'no';
  headers['cache-control'] ??= 'no-cache';
}

const HOST = /^[A-Za-z0-9._~-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** A Host value that names a host (a name, IPv4 or [IPv6], and a port): RFC 9112 has anything else refused with a 400. */
export function isUsableHost(host: string): boolean {
  return HOST.test(host);
}
