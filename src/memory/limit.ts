import { readFileSync } from 'node:fs';

/** Where the container's memory limit came from. */
export type LimitSource = 'cgroup v2 memory.max' | 'cgroup v1 memory.limit_in_bytes' | 'none found (default)';

export interface MemoryLimit {
  readonly bytes: number;
  readonly source: LimitSource;
}

/** Taken as the limit when no cgroup sets one (a developer's `npm start`, a container run without --memory). */
export const DEFAULT_LIMIT_BYTES = 1024 * 1024 * 1024;
/** Values at or above this mean "no limit" (cgroup v1 writes 2^63 rounded down to a page). */
const UNLIMITED = 2 ** 60;

type Read = (path: string) => string | undefined;

const readOrUndefined: Read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

function limitValue(text: string | undefined): number | undefined {
  const value = text?.trim();
  if (!value || value === 'max' || !/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n < UNLIMITED ? n : undefined;
}

/**
 * The memory limit of the cgroup this process runs in: cgroup v2's
 * `memory.max`, else v1's `memory.limit_in_bytes`, looked up both at the
 * process's own cgroup path (/proc/self/cgroup) and at the mount's root (what
 * a container with its own cgroup namespace sees). The smallest one found
 * wins: a parent's limit binds the child too.
 */
export function readMemoryLimit(read: Read = readOrUndefined, root = '/sys/fs/cgroup'): MemoryLimit {
  const own = read('/proc/self/cgroup') ?? '';
  const v2Path = /^0::(\/.*)$/m.exec(own)?.[1];
  const v1Path = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(\/.*)$/m.exec(own)?.[1];
  const join = (...parts: string[]) => parts.join('/').replace(/\/+/g, '/').replace(/\/$/, '');
  const v2 = [v2Path && join(root, v2Path, 'memory.max'), join(root, 'memory.max')].filter(Boolean) as string[];
  const v1 = [v1Path && join(root, 'memory', v1Path, 'memory.limit_in_bytes'), join(root, 'memory', 'memory.limit_in_bytes')].filter(Boolean) as string[];
  const smallest = (paths: string[]) =>
    paths.map((p) => limitValue(read(p))).reduce<number | undefined>((min, n) => (n === undefined ? min : min === undefined ? n : Math.min(min, n)), undefined);
  const fromV2 = smallest(v2);
  if (fromV2 !== undefined) return { bytes: fromV2, source: 'cgroup v2 memory.max' };
  const fromV1 = smallest(v1);
  if (fromV1 !== undefined) return { bytes: fromV1, source: 'cgroup v1 memory.limit_in_bytes' };
  return { bytes: DEFAULT_LIMIT_BYTES, source: 'none found (default)' };
}
