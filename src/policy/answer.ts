/**
 * Reads an EvaluateHook answer as it arrives, without ever holding a large
 * `modified_payload` as text: the payload's base64 is decoded chunk by chunk
 * into the parts of the new body, and only the rest of the answer (decision,
 * reason, policy id: small) is kept and parsed. A 48 MiB modify therefore
 * costs its decoded bytes, not the 64 MiB of base64 around them plus a string
 * and a parse of it; each network chunk is a bounded piece of work, so the
 * event loop never stalls on one answer.
 */

const BASE64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') BASE64[c.charCodeAt(0)] = 1;
const PAYLOAD_KEY = 'modified_payload';
const EQ = 0x3d;

/** What the payload member held, when it was a string. */
export interface StreamedPayload {
  /** Decoded bytes, in parts; undefined when the payload was not standard base64 or was not kept. */
  readonly parts: Buffer[] | undefined;
  /** Why the parts are missing. */
  readonly problem: 'not standard base64' | 'over the memory budget' | undefined;
  /** Characters of base64 the string held (0 for ""). */
  readonly chars: number;
}

export interface AnswerReader {
  /** Feeds the next chunk; throws AnswerTooLargeError when the non-payload rest passes its cap. */
  push(chunk: Uint8Array): void;
  /** The answer without its payload's content (`"modified_payload":""`), and the payload if one was streamed. */
  finish(): { readonly rest: string; readonly payload: StreamedPayload | undefined };
}

export class AnswerTooLargeError extends Error {
  constructor() {
    super('answer too large');
    this.name = 'AnswerTooLargeError';
  }
}

/**
 * `maxRestBytes` bounds everything but the payload's content; `reserve` is
 * asked before each decoded piece is kept (false: the payload is dropped and
 * reported `over the memory budget`).
 */
export function createAnswerReader(options: { maxRestBytes: number; reserve?: (bytes: number) => boolean }): AnswerReader {
  const rest: Buffer[] = [];
  let restBytes = 0;
  // Top-level tokenizer state.
  let depth = 0;
  let inString = false;
  let escape = false;
  /** At depth 1, the next string is a key. */
  let keyNext = false;
  let readingKey = false;
  let key: number[] = [];
  let lastKey = '';
  let afterColon = false;
  // Payload state.
  let inPayload = false;
  let payload: { parts: Buffer[] | undefined; problem: StreamedPayload['problem']; chars: number; pad: number; carry: string; pendingEscape: number[] } | undefined;

  const keep = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    restBytes += bytes.length;
    if (restBytes > options.maxRestBytes) throw new AnswerTooLargeError();
    rest.push(Buffer.from(bytes));
  };

  const bad = (): void => {
    if (!payload) return;
    payload.problem ??= 'not standard base64';
    payload.parts = undefined;
  };

  /** Base64 characters of the payload, in order (escapes already resolved). */
  const feed = (text: string): void => {
    const p = payload!;
    p.chars += text.length;
    if (p.problem) return;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === EQ) {
        if (++p.pad > 2) return bad();
      } else if (p.pad > 0 || c > 0xff || !BASE64[c]) {
        return bad();
      }
    }
    const all = p.carry + text;
    const whole = all.length - (all.length % 4);
    p.carry = all.slice(whole);
    if (whole === 0) return;
    const decoded = Buffer.from(all.slice(0, whole), 'base64');
    if (options.reserve && !options.reserve(decoded.length)) {
      p.problem = 'over the memory budget';
      p.parts = undefined;
      return;
    }
    p.parts!.push(decoded);
  };

  /** Payload bytes from `from` of `chunk`: returns where the payload's string ended (its closing quote), or -1. */
  const payloadBytes = (chunk: Uint8Array, from: number): number => {
    const p = payload!;
    let i = from;
    while (i < chunk.length) {
      if (p.pendingEscape.length > 0) {
        // An escape split across chunks: complete it byte by byte.
        p.pendingEscape.push(chunk[i++]!);
        const esc = p.pendingEscape;
        if (esc[1] === 0x75 ? esc.length === 6 : esc.length === 2) {
          resolveEscape(esc);
          p.pendingEscape = [];
        }
        continue;
      }
      let stop = i;
      while (stop < chunk.length && chunk[stop] !== 0x22 && chunk[stop] !== 0x5c) stop++;
      if (stop > i) feed(Buffer.prototype.latin1Slice.call(chunk, i, stop));
      if (stop === chunk.length) return -1;
      if (chunk[stop] === 0x22) return stop;
      p.pendingEscape = [0x5c];
      i = stop + 1;
    }
    return -1;
  };

  const resolveEscape = (esc: number[]): void => {
    if (esc[1] === 0x2f) return feed('/');
    if (esc[1] === 0x75) {
      const code = Number.parseInt(String.fromCharCode(...esc.slice(2)), 16);
      if (Number.isNaN(code)) return bad();
      return feed(String.fromCharCode(code));
    }
    bad(); // \n, \", \\ ... are not base64
  };

  return {
    push(chunk) {
      let i = 0;
      let keptFrom = 0;
      while (i < chunk.length) {
        if (inPayload) {
          const end = payloadBytes(chunk, i);
          if (end === -1) return;
          inPayload = false;
          inString = false;
          keptFrom = end; // the closing quote is kept
          i = end + 1;
          continue;
        }
        const c = chunk[i]!;
        if (inString) {
          if (escape) escape = false;
          else if (c === 0x5c) escape = true;
          else if (c === 0x22) {
            inString = false;
            if (readingKey) {
              readingKey = false;
              lastKey = key.length <= PAYLOAD_KEY.length ? String.fromCharCode(...key) : '';
            }
          }
          if (readingKey && inString && key.length <= PAYLOAD_KEY.length) key.push(c);
          i++;
          continue;
        }
        switch (c) {
          case 0x22:
            inString = true;
            if (depth === 1 && keyNext) {
              readingKey = true;
              keyNext = false;
              key = [];
            } else if (depth === 1 && afterColon && lastKey === PAYLOAD_KEY) {
              // Keep the opening quote, stream the content.
              keep(chunk.subarray(keptFrom, i + 1));
              keptFrom = i + 1;
              payload = { parts: [], problem: undefined, chars: 0, pad: 0, carry: '', pendingEscape: [] };
              inPayload = true;
              afterColon = false;
              i++;
              continue;
            }
            afterColon = false;
            break;
          case 0x7b:
          case 0x5b:
            depth++;
            if (depth === 1) keyNext = c === 0x7b;
            afterColon = false;
            break;
          case 0x7d:
          case 0x5d:
            depth--;
            afterColon = false;
            break;
          case 0x3a:
            if (depth === 1) afterColon = true;
            break;
          case 0x2c:
            if (depth === 1) keyNext = true;
            afterColon = false;
            break;
          default:
            if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) afterColon = false;
        }
        i++;
      }
      if (!inPayload) keep(chunk.subarray(keptFrom));
    },
    finish() {
      let streamed: StreamedPayload | undefined;
      if (payload) {
        if (inPayload || payload.pendingEscape.length > 0) bad();
        if (!payload.problem && payload.carry.length > 0) bad();
        streamed = { parts: payload.parts, problem: payload.problem, chars: payload.chars };
      }
      return { rest: Buffer.concat(rest, restBytes).toString('utf8'), payload: streamed };
    },
  };
}
