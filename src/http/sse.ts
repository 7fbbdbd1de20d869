import { Transform, type TransformCallback } from 'node:stream';

const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;
const ENDPOINT_EVENT = /^event:[ ]?endpoint[ \t]*$/m;
const DATA_LINE = /^(data:[ ]?)(.*)$/gm;
/** An event longer than this without a terminator is passed on unparsed (no endpoint event is that long). */
const MAX_PENDING_CHARS = 1 << 20;

/**
 * Rewrites the `data` of SSE `endpoint` events (the legacy MCP HTTP+SSE
 * transport announces its message URL that way) and passes every other byte
 * through. It works on whole events, decoded as a UTF-8 stream, so a URL or a
 * multi-byte character split across TCP chunks comes out right; events are
 * emitted as soon as their blank line arrives.
 */
export function createEndpointRewriter(rewrite: (url: string) => string): Transform {
  const decoder = new TextDecoder('utf-8');
  let pending = '';

  const processEvents = (text: string): string => {
    if (!text.includes('endpoint')) return text;
    let out = '';
    let last = 0;
    EVENT_END.lastIndex = 0;
    for (let m = EVENT_END.exec(text); m; m = EVENT_END.exec(text)) {
      const end = m.index + m[0].length;
      out += rewriteEvent(text.slice(last, end));
      last = end;
    }
    return out + rewriteEvent(text.slice(last));
  };

  const rewriteEvent = (event: string): string =>
    ENDPOINT_EVENT.test(event) ? event.replace(DATA_LINE, (_, prefix: string, value: string) => prefix + rewrite(value)) : event;

  // Where the terminator search resumes: text before it held none (a
  // terminator is at most 4 characters, so 3 are re-read).
  let scanFrom = 0;
  const flushComplete = (push: (s: string) => void): void => {
    let lastEnd = -1;
    EVENT_END.lastIndex = scanFrom;
    for (let m = EVENT_END.exec(pending); m; m = EVENT_END.exec(pending)) lastEnd = m.index + m[0].length;
    if (lastEnd === -1) {
      if (pending.length > MAX_PENDING_CHARS) {
        push(pending);
        pending = '';
      }
      scanFrom = Math.max(0, pending.length - 3);
      return;
    }
    push(processEvents(pending.slice(0, lastEnd)));
    pending = pending.slice(lastEnd);
    scanFrom = Math.max(0, pending.length - 3);
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      pending += decoder.decode(chunk, { stream: true });
      flushComplete((s) => this.push(Buffer.from(s, 'utf8')));
      callback();
    },
    flush(callback: TransformCallback) {
      pending += decoder.decode();
      if (pending) this.push(Buffer.from(processEvents(pending), 'utf8'));
      pending = '';
      callback();
    },
  });
}

/**
 * The rewrite the sidecar applies: an absolute URL under the gateway base
 * becomes the same path and query under the origin the client used to reach
 * the sidecar. Relative URLs and foreign origins pass unchanged. The gateway's
 * spellings are worked out once; each response supplies its local origin.
 */
export function localRewriter(gatewayUrl: string): (localOrigin: string) => (url: string) => string {
  const bases = [gatewayUrl];
  const parsed = URL.parse(gatewayUrl);
  if (parsed) {
    const normalised = parsed.origin + (parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/+$/, ''));
    if (normalised !== gatewayUrl) bases.push(normalised);
  }
  return (localOrigin) => (url) => {
    const trimmed = url.trim();
    for (const base of bases) {
      if (trimmed.startsWith(base) && (trimmed.length === base.length || '/?#'.includes(trimmed[base.length]!))) {
        return localOrigin + trimmed.slice(base.length);
      }
    }
    return url;
  };
}

export function gatewayToLocal(gatewayUrl: string, localOrigin: string): (url: string) => string {
  return localRewriter(gatewayUrl)(localOrigin);
}
