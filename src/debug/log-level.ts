import type { LevelWithSilent } from 'pino';
import { LOG_LEVELS, type Logger } from '../log.ts';

export const DEFAULT_LEVEL_TTL_SECONDS = 600;
export const MAX_LEVEL_TTL_SECONDS = 86_400;

export interface LevelState {
  readonly level: string;
  /** The configured level (FIRSTOPS_LOG_LEVEL) a change reverts to. */
  readonly configured: string;
  /** When a change reverts; undefined when the configured level is in force. */
  readonly revertAt: string | undefined;
}

export interface LevelSwitch {
  state(): LevelState;
  set(level: LevelWithSilent, ttlSeconds: number): LevelState;
  /** Back to the configured level now, timer cleared (at shutdown). */
  reset(): void;
}

export function isLogLevel(value: unknown): value is LevelWithSilent {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Run-time log level with a time limit. Setting the root logger's level is
 * enough: the children in this code (components, the request line) are made
 * without a level of their own, so pino resolves theirs through the parent.
 * The change is logged at warn (both ways), so it shows at the usual levels.
 */
export function createLevelSwitch(logger: Logger, configured: LevelWithSilent): LevelSwitch {
  let timer: NodeJS.Timeout | undefined;
  let revertAt: number | undefined;

  const apply = (level: LevelWithSilent, why: string): void => {
    const previous = logger.level;
    logger.level = level;
    logger.warn({ component: 'debug', log_level: level, previous_log_level: previous, ...(revertAt ? { revert_at: new Date(revertAt).toISOString() } : {}) }, why);
  };
  const clear = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    revertAt = undefined;
  };
  const state = (): LevelState => ({
    level: logger.level,
    configured,
    revertAt: revertAt === undefined ? undefined : new Date(revertAt).toISOString(),
  });

  return {
    state,
    set(level, ttlSeconds) {
      clear();
      if (level !== configured) {
        revertAt = Date.now() + ttlSeconds * 1000;
        timer = setTimeout(() => {
          clear();
          apply(configured, 'log level reverted to FIRSTOPS_LOG_LEVEL');
        }, ttlSeconds * 1000);
        timer.unref();
      }
      apply(level, 'log level changed on the debug listener');
      return state();
    },
    reset() {
      const changed = logger.level !== configured;
      clear();
      if (changed) logger.level = configured;
    },
  };
}
