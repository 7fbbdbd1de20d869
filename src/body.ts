import type { IncomingMessage } from 'node:http';
import { SidecarError } from './errors.ts';

/**
 * Reads a request body into memory with the cap enforced both ways: a
 * declared Content-Length over the cap fails before a byte is read, and a
 * chunked body fails as soon as it passes the cap. Node's parser has already
 * refused malformed, duplicated or conflicting framing headers.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    if (!/^\d+$/.test(declared) || !Number.isSafeInteger(length)) {
      return Promise.reject(new SidecarError('bad_request', 'invalid Content-Length'));
    }
    if (length > maxBytes) return Promise.reject(new SidecarError('body_too_large', `${length} > ${maxBytes} bytes`));
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
  } else if (req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(Buffer.alloc(0));
  }

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        reject(new SidecarError('body_too_large', `more than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
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
