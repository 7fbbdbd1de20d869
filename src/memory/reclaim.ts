import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Prompt reclamation of the buffers a large body leaves behind. Node hands a
 * request body over in 64 KiB socket reads; once copied into the body's block
 * they are garbage, but V8 frees their memory only when a collection runs,
 * and nothing in the JavaScript heap (the chunks' small wrappers) asks for
 * one. Reading a 48 MiB prompt thus held a second 48 MiB of dead chunks at
 * its peak. A young-generation collection every few MiB of a large body
 * frees them (about a millisecond each; small requests never trigger one).
 */
type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let gc: Gc | undefined;
let unavailable = false;

function collector(): Gc | undefined {
  if (gc || unavailable) return gc;
  try {
    // Exposing gc at run time and fetching it from a fresh context is the
    // documented way to reach it without the --expose-gc flag.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  } catch {
    unavailable = true;
  }
  return gc;
}

/** Bytes of a body between two collections. */
export const RECLAIM_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * A full collection. Giving a large body's budget share back is only honest
 * once its memory is free: the body, its rewrite and a decoded payload live
 * in the old generation and as external memory, which V8 frees at a full
 * collection it has no reason to run soon. Without one, the next large body
 * was admitted on top of the last one's garbage (a 256Mi container was killed
 * that way). A few milliseconds, once per large body.
 */
export function reclaimAll(): void {
  collector()?.({ type: 'major' });
}

/** Runs reclaimAll once the current turn is over (the caller's frames no longer hold what they freed). */
export function reclaimSoon(): void {
  if (pending) return;
  pending = true;
  setImmediate(() => {
    pending = false;
    reclaimAll();
  });
}
let pending = false;

/** Collects the young generation, where dead socket chunks and decode buffers sit. */
export function reclaimYoung(): void {
  collector()?.({ type: 'minor' });
}

/**
 * Counts bytes that become garbage and reclaims every RECLAIM_EVERY_BYTES.
 * One per body (or per answer) being read.
 */
export function createReclaimer(): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < RECLAIM_EVERY_BYTES) return;
    since = 0;
    reclaimYoung();
  };
}
