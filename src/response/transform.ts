import { Transform, type TransformCallback } from 'node:stream';
import { createResponseGate, type ResponseGateOptions } from './gate.ts';

/**
 * The gate as a Node Transform, for the relay's `transform` option: upstream
 * SSE bytes in, governed bytes out. Input is always accepted at once (the
 * gate bounds what it holds), so a slow evaluation never stalls the
 * upstream socket. When the gate ends the stream early (a deny, a failure)
 * the readable side ends after the error event, and later input is read
 * and dropped until the upstream ends: abort the upstream from `onEnd` to
 * stop it sooner. Destroying the transform abandons pending evaluations.
 */
export function createResponseGateTransform(options: ResponseGateOptions): Transform {
  let ended = false;
  let flushed: TransformCallback | undefined;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      gate.write(chunk);
      callback();
    },
    flush(callback: TransformCallback) {
      if (ended) {
        callback();
        return;
      }
      flushed = callback;
      gate.end();
    },
    destroy(err, callback) {
      if (!ended) gate.destroy();
      callback(err);
    },
  });
  const gate = createResponseGate(options, {
    write(chunk) {
      if (!transform.destroyed) transform.push(chunk);
    },
    end() {
      ended = true;
      if (flushed) flushed();
      else if (!transform.destroyed) transform.push(null);
    },
  });
  return transform;
}
