import type { MemoryLimit } from './limit.ts';

const MIB = 1024 * 1024;

/**
 * What the process keeps besides request bodies once it serves: a policy
 * worker thread's heap, open streams' buffers, GC slack. Added to the baseline
 * measured at start.
 */
export const HEADROOM_BYTES = 32 * MIB;
/**
 * Bytes of budget a body takes per byte when it is admitted: the body as read
 * and room for a rewrite of the same size (a redaction's new strings). A
 * remote modify payload takes its share as it is decoded.
 */
export const ADMISSION_FACTOR = 2;
/**
 * Bytes a body may need at the worst, per byte: the body, a local rewrite and
 * a remote modify payload of its size. The default cap is the largest body
 * that fits the budget so.
 */
export const WORST_CASE_FACTOR = 3;
/** The default cap never goes above this (the previous fixed default). */
export const MAX_DEFAULT_CAP = 100 * MIB;
/** Bodies up to this size are never refused by the budget (counted, not refused). */
export const SMALL_BODY_BYTES = 64 * 1024;

export interface MemoryPlan {
  readonly limitBytes: number;
  readonly limitSource: MemoryLimit['source'] | 'FIRSTOPS_MEMORY_BUDGET_BYTES';
  /** Resident memory when the configuration was read (modules loaded, nothing served yet). */
  readonly baselineBytes: number;
  /** The in-flight body budget. */
  readonly budgetBytes: number;
  /** The effective body cap (FIRSTOPS_MAX_BODY_BYTES, or derived). */
  readonly maxBodyBytes: number;
  /** How the cap came about. */
  readonly maxBodySource: 'derived from the budget' | 'FIRSTOPS_MAX_BODY_BYTES';
  /** Set when a body at the cap cannot be governed within the budget. */
  readonly warning: string | undefined;
}

/**
 * Budget and cap from the container's limit: budget = limit - baseline -
 * headroom, unless FIRSTOPS_MEMORY_BUDGET_BYTES sets it; cap = what one body
 * can cost at the worst within the budget (budget / 3, whole MiB, at most
 * 100 MiB), unless FIRSTOPS_MAX_BODY_BYTES sets it. A configured cap the
 * budget cannot hold is reported, not refused: such bodies get 503
 * body_budget_exhausted.
 */
export function planMemory(options: { limit: MemoryLimit; rssBytes: number; budgetBytes?: number; maxBodyBytes?: number }): MemoryPlan {
  const { limit, rssBytes } = options;
  const budgetBytes = options.budgetBytes ?? Math.max(0, limit.bytes - rssBytes - HEADROOM_BYTES);
  const derivedCap = Math.min(MAX_DEFAULT_CAP, Math.max(MIB, Math.floor(budgetBytes / WORST_CASE_FACTOR / MIB) * MIB));
  const maxBodyBytes = options.maxBodyBytes ?? derivedCap;
  let warning: string | undefined;
  if (maxBodyBytes * ADMISSION_FACTOR > budgetBytes) {
    warning = `FIRSTOPS_MAX_BODY_BYTES=${maxBodyBytes} does not fit the memory budget of ${budgetBytes} bytes: a body takes ${ADMISSION_FACTOR}x its size when admitted, so bodies over ${Math.floor(budgetBytes / ADMISSION_FACTOR)} bytes are always refused (503 body_budget_exhausted); raise the memory limit or lower the cap`;
  } else if (maxBodyBytes * WORST_CASE_FACTOR > budgetBytes) {
    warning = `FIRSTOPS_MAX_BODY_BYTES=${maxBodyBytes}: a body at the cap that a rule redacts and the gateway rewrites needs ${WORST_CASE_FACTOR}x its size, more than the memory budget of ${budgetBytes} bytes; such a remote modify fails (FIRSTOPS_FAIL_MODE decides) above ${Math.floor(budgetBytes / WORST_CASE_FACTOR)} bytes`;
  }
  return {
    limitBytes: limit.bytes,
    limitSource: options.budgetBytes === undefined ? limit.source : 'FIRSTOPS_MEMORY_BUDGET_BYTES',
    baselineBytes: rssBytes,
    budgetBytes,
    maxBodyBytes,
    maxBodySource: options.maxBodyBytes === undefined ? 'derived from the budget' : 'FIRSTOPS_MAX_BODY_BYTES',
    warning,
  };
}

/** The plan as `check` and the start-up log line show it (snake_case, bytes). */
export function describeMemory(plan: MemoryPlan): Record<string, number | string> {
  return {
    limit_bytes: plan.limitBytes,
    limit_source: plan.limitSource,
    baseline_bytes: plan.baselineBytes,
    budget_bytes: plan.budgetBytes,
    max_body_bytes: plan.maxBodyBytes,
    max_body_source: plan.maxBodySource,
  };
}
