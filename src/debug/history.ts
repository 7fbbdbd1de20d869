import type { RequestLine } from '../http/context.ts';

export type { RequestLine };

/** A line with the wall-clock time it was written, as /debug/requests serves it. */
export type HistoryEntry = RequestLine & { readonly time: string };

export interface HistoryFilter {
  readonly status?: number;
  readonly decision?: string;
  readonly provider?: string;
  readonly limit?: number;
}

export interface History {
  readonly capacity: number;
  /** O(1): overwrites the oldest entry once full; keeps a reference, copies nothing. `at`: epoch ms. */
  push(line: RequestLine, at: number): void;
  /** Newest first, filtered, at most `limit`. */
  list(filter?: HistoryFilter): HistoryEntry[];
  readonly size: number;
}

export function withTime(line: RequestLine, at: number): HistoryEntry {
  return { time: new Date(at).toISOString(), ...line };
}

/**
 * The last `capacity` request lines in a fixed ring: the lines themselves are
 * the objects the logger was given, and the times sit in a typed array, so a
 * push allocates nothing.
 */
export function createHistory(capacity: number): History {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`history capacity must be a positive integer, got ${capacity}`);
  const lines: Array<RequestLine | undefined> = new Array<RequestLine | undefined>(capacity).fill(undefined);
  const times = new Float64Array(capacity);
  let next = 0;
  let size = 0;

  return {
    capacity,
    get size() {
      return size;
    },
    push(line, at) {
      lines[next] = line;
      times[next] = at;
      next = next + 1 === capacity ? 0 : next + 1;
      if (size < capacity) size++;
    },
    list(filter = {}) {
      const limit = filter.limit ?? capacity;
      const out: HistoryEntry[] = [];
      for (let i = 1; i <= size && out.length < limit; i++) {
        const slot = (next - i + capacity) % capacity;
        const line = lines[slot]!;
        if (filter.status !== undefined && line.status !== filter.status) continue;
        if (filter.decision !== undefined && line.decision !== filter.decision) continue;
        if (filter.provider !== undefined && line.provider !== filter.provider) continue;
        out.push(withTime(line, times[slot]!));
      }
      return out;
    },
  };
}
