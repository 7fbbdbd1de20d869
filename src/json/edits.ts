/**
 * A rewritten body as slices of the original: only what a rule replaced is
 * new memory, the rest is views of the bytes as read. Parts go to undici as
 * they are (an iterable body), so a redacted 48 MiB prompt is never copied
 * whole.
 */

/** Replace `[start, end)` of the original with `bytes`. */
export interface Edit {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
}

/** A body in pieces, in order. */
export type BodyParts = readonly Uint8Array[];

/** Edits must be in order and not overlap (a scan yields them so). */
export function applyEdits(body: Uint8Array, edits: readonly Edit[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const edit of edits) {
    if (edit.start < at || edit.end < edit.start) throw new RangeError('edits overlap or are out of order');
    if (edit.start > at) parts.push(body.subarray(at, edit.start));
    if (edit.bytes.length > 0) parts.push(edit.bytes);
    at = edit.end;
  }
  if (at < body.length) parts.push(body.subarray(at));
  return parts;
}

/**
 * Parts that no longer hold `original`: the pieces that are views of it are
 * copied out, when they are at most `1/8` of it (a redaction that rewrote
 * most of a prompt). The original can then be freed while the rewrite goes on
 * (to the gateway, which may answer with a third body). Returns the parts as
 * they are when copying would cost more than it frees.
 */
export function detach(parts: readonly Uint8Array[], original: Uint8Array): readonly Uint8Array[] {
  let viewed = 0;
  for (const part of parts) if (part.buffer === original.buffer) viewed += part.length;
  if (viewed === 0 || viewed > original.length / 8) return parts;
  return parts.map((part) => (part.buffer === original.buffer ? Buffer.from(part) : part));
}

export function partsLength(parts: BodyParts): number {
  let n = 0;
  for (const part of parts) n += part.length;
  return n;
}

/** One contiguous Buffer: for small bodies, where one write beats many. */
export function joinParts(parts: BodyParts): Buffer {
  if (parts.length === 1) {
    const only = parts[0]!;
    return Buffer.isBuffer(only) ? only : Buffer.from(only.buffer, only.byteOffset, only.byteLength);
  }
  return Buffer.concat(parts, partsLength(parts));
}

/**
 * Parts as an undici request body. undici writes any iterable body part by
 * part, with backpressure (its dispatch documentation lists Iterable); the
 * request() typings name only Buffer, string and streams, hence this one cast.
 */
export function undiciBody(parts: BodyParts | Buffer): Buffer {
  return parts as Buffer;
}

/** Bytes a rewrite adds on top of the original (what it costs in memory). */
export function addedBytes(edits: readonly Edit[]): number {
  let n = 0;
  for (const edit of edits) n += edit.bytes.length;
  return n;
}
