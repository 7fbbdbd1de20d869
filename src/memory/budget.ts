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

/** One request's share: a class, so opening one per request is one small object (no getter and closures). */
class Share implements BudgetShare {
  taken = 0;
  #released = false;
  readonly #pool: Pool;
  constructor(pool: Pool) {
    this.#pool = pool;
  }

  take(n: number, force = false): boolean {
    if (this.#released) return false;
    const pool = this.#pool;
    if (!force && pool.used + n > pool.bytes) return false;
    this.taken += n;
    pool.change(n);
    return true;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const taken = this.taken;
    if (taken > 0) {
      this.#pool.change(-taken);
      this.#pool.observer?.released?.(taken);
    }
    this.taken = 0;
  }
}

class Pool {
  used = 0;
  readonly bytes: number;
  readonly observer: BudgetObserver | undefined;
  constructor(bytes: number, observer: BudgetObserver | undefined) {
    this.bytes = bytes;
    this.observer = observer;
  }

  change(delta: number): void {
    this.used += delta;
    this.observer?.inUse?.(this.used);
  }
}

export function createBodyBudget(options: { bytes: number; smallBytes: number; observer?: BudgetObserver }): BodyBudget {
  const { bytes, smallBytes, observer } = options;
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`budget bytes must be a non-negative integer (got ${bytes})`);
  if (!Number.isSafeInteger(smallBytes) || smallBytes < 0) throw new RangeError(`budget smallBytes must be a non-negative integer (got ${smallBytes})`);
  const pool = new Pool(bytes, observer);
  return {
    bytes,
    smallBytes,
    inUse: () => pool.used,
    open: () => new Share(pool),
  };
}
