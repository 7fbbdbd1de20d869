/**
 * The memory that request bodies in flight may use, shared by every request
 * of the process: a body is admitted only when its share fits what is left,
 * so no prompt (or set of prompts) can take the process past its container's
 * limit. Bodies up to `smallBytes` are always admitted (counted, never
 * refused), so small requests and streams keep flowing while large ones are
 * refused.
 */
export interface BodyBudget {
  /** The whole budget, in bytes. */
  readonly bytes: number;
  /** Bodies up to this size are never refused. */
  readonly smallBytes: number;
  /** Bytes taken by requests in flight. */
  inUse(): number;
  /** A share for one request: take into it as the body arrives, release it once when the request is done. */
  open(): BudgetShare;
}

export interface BudgetShare {
  /** Bytes this share holds. */
  readonly taken: number;
  /** Takes `bytes` more; false, and nothing taken, when they do not fit (unless `force`). */
  take(bytes: number, force?: boolean): boolean;
  /** Gives everything back; later calls do nothing. */
  release(): void;
}

export interface BudgetObserver {
  /** Called with the bytes in use after every change. */
  inUse?(bytes: number): void;
  /** Called when a share gives back `bytes` (server.ts reclaims a large body's memory then). */
  released?(bytes: number): void;
}

export function createBodyBudget(options: { bytes: number; smallBytes: number; observer?: BudgetObserver }): BodyBudget {
  const { bytes, smallBytes, observer } = options;
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`budget bytes must be a non-negative integer (got ${bytes})`);
  if (!Number.isSafeInteger(smallBytes) || smallBytes < 0) throw new RangeError(`budget smallBytes must be a non-negative integer (got ${smallBytes})`);
  let used = 0;
  const changed = (delta: number): void => {
    used += delta;
    observer?.inUse?.(used);
  };

  return {
    bytes,
    smallBytes,
    inUse: () => used,
    open(): BudgetShare {
      let taken = 0;
      let released = false;
      return {
        get taken() {
          return taken;
        },
        take(n, force = false) {
          if (released) return false;
          if (!force && used + n > bytes) return false;
          taken += n;
          changed(n);
          return true;
        },
        release() {
          if (released) return;
          released = true;
          if (taken > 0) {
            changed(-taken);
            observer?.released?.(taken);
          }
          taken = 0;
        },
      };
    },
  };
}
