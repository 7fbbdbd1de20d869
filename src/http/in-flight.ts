/** One entry of an InFlight list: a handle to remove it by. */
export interface InFlightEntry<T> {
  value: T | undefined;
  prev: InFlightEntry<T> | undefined;
  next: InFlightEntry<T> | undefined;
}

/**
 * What is in flight (the proxy's open responses): add and remove in O(1),
 * iterate, count. A doubly linked list rather than a `Set`, because a Set
 * that gains and loses an entry per request is rehashed every few dozen
 * requests, and V8 links each replaced (obsolete) table to its successor,
 * entries and all, for iterators still walking it. Once one obsolete table
 * has been promoted to the old generation, that chain keeps every later
 * table and every response they held (with its request, record and
 * buffers) alive through each scavenge until the next full collection.
 * Measured on the sidecar at c64 (docs/performance.md, "Fourth round"):
 * 3.1 MB kept per scavenge with the Set, 0.8 MB without. A removed entry
 * here lets go of its value and its neighbours at once.
 */
export class InFlight<T> implements Iterable<T> {
  #head: InFlightEntry<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(value: T): InFlightEntry<T> {
    const entry: InFlightEntry<T> = { value, prev: undefined, next: this.#head };
    if (this.#head) this.#head.prev = entry;
    this.#head = entry;
    this.#size++;
    return entry;
  }

  /** Removes the entry (once; a second call does nothing). */
  remove(entry: InFlightEntry<T>): void {
    if (entry.value === undefined) return;
    if (entry.prev) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    entry.value = entry.prev = entry.next = undefined;
    this.#size--;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let entry = this.#head; entry; ) {
      // Read before yielding: the caller may remove the entry it is given.
      const next = entry.next;
      if (entry.value !== undefined) yield entry.value;
      entry = next;
    }
  }
}
