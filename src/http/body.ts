import type { IncomingMessage } from 'node:http';
import { SidecarError } from '../errors.ts';
import type { BodyBudget, BudgetShare } from '../memory/budget.ts';
import { createReclaimer } from '../memory/reclaim.ts';

export interface ReadBodyOptions {
  /** FIRSTOPS_MAX_BODY_BYTES. */
  readonly maxBytes: number;
  /**
   * The memory budget and this request's share of it: the body takes
   * `factor` bytes of it per byte (the body, and room for what governing it
   * may build), before it is read when its length is declared, as it arrives
   * when it is chunked.
   */
  readonly budget?: { readonly budget: BodyBudget; readonly share: BudgetShare; readonly factor: number };
  /** Bodies larger than this are read into shared memory, so a policy worker reads them without a copy. */
  readonly sharedAbove?: number;
}

const EMPTY = Buffer.alloc(0);

function overBudget(budget: BodyBudget, bytes: number): SidecarError {
  const free = Math.max(0, budget.bytes - budget.inUse());
  return new SidecarError('body_budget_exhausted', `this body needs ${bytes} bytes of the in-flight budget, ${free} of ${budget.bytes} are free`);
}

/**
 * Reads a request body into memory with the cap and the memory budget
 * enforced both ways: a declared Content-Length over either fails before a
 * byte is read, and a chunked body fails as soon as it passes one. Node's
 * parser has already refused malformed, duplicated or conflicting framing
 * headers, and delivers no more than a declared length.
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<Buffer> {
  const { maxBytes, budget } = options;
  const sharedAbove = options.sharedAbove ?? Number.POSITIVE_INFINITY;
  const declared = req.headers['content-length'];
  let length: number | undefined;
  if (declared !== undefined) {
    length = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(length)) {
      return Promise.reject(new SidecarError('bad_request', 'invalid Content-Length'));
    }
    if (length > maxBytes) {
      req.resume(); // read and dropped: see stop() below
      return Promise.reject(new SidecarError('body_too_large', `${length} > ${maxBytes} bytes`));
    }
    if (length === 0) return Promise.resolve(EMPTY);
    if (budget && !budget.share.take(length * budget.factor, length <= budget.budget.smallBytes)) {
      // The body (at most the cap) is read and dropped before the 503 is sent:
      // no memory is kept, and the client, done writing, reads its answer
      // rather than a reset.
      const err = overBudget(budget.budget, length * budget.factor);
      return new Promise<Buffer>((_resolve, reject) => {
        const done = (): void => reject(err);
        req.once('end', done);
        req.once('close', () => (req.complete ? done() : reject(new ClientAbortedError())));
        req.resume();
      });
    }
  } else if (req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(EMPTY);
  }

  return new Promise<Buffer>((resolve, reject) => {
    // Small bodies: the chunks as they come (one chunk is used as it is).
    // Large ones: one block of shared memory, preallocated to a declared
    // length or grown in place (a growable SharedArrayBuffer reserves address
    // space, not memory) for a chunked body.
    let chunks: Buffer[] | undefined = [];
    let block: Buffer | undefined;
    let growable: SharedArrayBuffer | undefined;
    let size = 0;
    if (length !== undefined && length > sharedAbove) block = Buffer.from(new SharedArrayBuffer(length));
    // Chunks copied into the block are garbage: reclaim them as the body arrives (memory/reclaim.ts).
    const reclaim = createReclaimer();

    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const stop = (err: SidecarError): void => {
      cleanup();
      chunks = undefined;
      block = undefined;
      growable = undefined;
      // The rest of the body is read and dropped (no memory kept), so a client
      // still sending reads its 413 or 503 instead of a reset, and may go on
      // on the same connection; node's requestTimeout bounds a body that never ends.
      req.resume();
      reject(err);
    };
    const toBlock = (needed: number): void => {
      // A chunked body that grew past `sharedAbove`: move it into shared memory once, then append in place.
      growable = new SharedArrayBuffer(needed, { maxByteLength: maxBytes });
      block = Buffer.from(growable);
      let at = 0;
      for (const chunk of chunks!) {
        block.set(chunk, at);
        at += chunk.length;
      }
      chunks = undefined;
    };
    const onData = (chunk: Buffer): void => {
      const at = size;
      size += chunk.length;
      if (size > maxBytes) return stop(new SidecarError('body_too_large', `more than ${maxBytes} bytes`));
      if (length === undefined && budget && !budget.share.take(chunk.length * budget.factor, size <= budget.budget.smallBytes)) {
        return stop(overBudget(budget.budget, size * budget.factor));
      }
      if (block && length !== undefined) {
        block.set(chunk, at);
        reclaim(chunk.length);
      } else if (growable) {
        if (size > growable.byteLength) growable.grow(Math.min(maxBytes, Math.max(size, growable.byteLength * 2)));
        block = Buffer.from(growable, 0, growable.byteLength);
        block.set(chunk, at);
        reclaim(chunk.length);
      } else {
        chunks!.push(chunk);
        if (size > sharedAbove) toBlock(Math.min(maxBytes, size * 2));
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (block) {
        const whole = growable ? Buffer.from(growable, 0, size) : block;
        resolve(whole);
      } else {
        resolve(chunks!.length === 1 ? chunks![0]! : Buffer.concat(chunks!, size));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new ClientAbortedError({ cause: err }));
    };
    const onClose = (): void => {
      if (req.complete) return;
      cleanup();
      reject(new ClientAbortedError());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The client went away before its body arrived: nobody is left to answer. */
export class ClientAbortedError extends Error {
  readonly code = 'client_aborted';
  constructor(options?: { cause?: unknown }) {
    super('client closed the connection before the request body was complete', options);
    this.name = 'ClientAbortedError';
  }
}
