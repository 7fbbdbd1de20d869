/** A pino destination that keeps parsed lines and lets tests await one. */
import type { Logger } from 'pino';
import { createLogger } from '../../../src/log.ts';

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface LogCapture {
  logger: Logger;
  lines: LogLine[];
  /** Resolves with the first line (past or future) whose msg matches. */
  waitFor(msg: string, after?: number): Promise<LogLine>;
}

export function captureLogs(): LogCapture {
  const lines: LogLine[] = [];
  const waiters: Array<{ msg: string; from: number; resolve: (line: LogLine) => void }> = [];
  const destination = {
    write(chunk: string): void {
      for (const text of chunk.split('\n')) {
        if (text === '') continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (line.msg === waiter.msg && lines.length - 1 >= waiter.from) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    },
  };
  return {
    logger: createLogger({ level: 'debug', destination }),
    lines,
    waitFor(msg, after = 0) {
      const found = lines.slice(after).find((line) => line.msg === msg);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ msg, from: after, resolve }));
    },
  };
}
