import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Fields that must never reach a log line, whoever passes them. Code in this
 * project logs explicit fields only (never whole header or body objects); the
 * redaction list is the second line of defence.
 */
const REDACT_PATHS = [
  'authorization', 'Authorization', 'dpop', 'DPoP', 'cookie', 'x-api-key',
  'headers', '*.headers', 'body', '*.body', 'privateKey', '*.privateKey', 'proof', 'bearer',
];

const CENSOR = '[redacted]';
/** The same names without the `*.` paths, which only look inside nested objects. */
const SCALAR_REDACT_PATHS = REDACT_PATHS.filter((path) => !path.startsWith('*.'));

/**
 * pino's `isoTime` (`,"time":"<Date#toISOString()>"`) without a Date per
 * line: the text up to the minute is kept, and only the seconds and
 * milliseconds are written for each line (a Date and its ISO string cost
 * ~0.5 us hot and several times that cold, once per request line).
 */
let minuteStart = Number.NaN;
let minutePrefix = '';
export function isoTime(now = Date.now()): string {
  let ms = now - minuteStart;
  if (!(ms >= 0 && ms < 60_000)) {
    minuteStart = now - (((now % 60_000) + 60_000) % 60_000);
    const iso = new Date(minuteStart).toISOString();
    // `…THH:MM:` (the seconds and milliseconds of a minute's start are 00.000).
    minutePrefix = `,"time":"${iso.slice(0, iso.length - 7)}`;
    ms = now - minuteStart;
  }
  const seconds = (ms / 1000) | 0;
  const millis = ms - seconds * 1000;
  return `${minutePrefix}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z"`;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where lines go; defaults to stdout. Tests pass a stream they can parse. */
  destination?: DestinationStream;
  /** Static fields bound to every line. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'firstops-sidecar', ...options.base },
      timestamp: () => isoTime(),
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
    },
    // Lines are gathered into writes of about 4 KB (at most 250 ms late, and
    // flushed synchronously at exit) instead of one write per line.
    options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 }),
  );
}

/**
 * A child for lines whose fields are all scalars named in code (the one line
 * per request): it keeps every top-level name in the redaction list but not
 * the `*.` paths, which cannot match a scalar and made redaction the costliest
 * part of writing that line (about 5 us of the ~90 us a request costs).
 */
export function scalarChild(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child(bindings, { redact: { paths: SCALAR_REDACT_PATHS, censor: CENSOR } });
}
