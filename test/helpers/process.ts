import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Waiter } from './server.ts';

export const NODE = process.execPath;
export const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: string[];
  /** Resolves with the first log line whose msg matches. */
  waitFor(msg: string | RegExp): Promise<Record<string, unknown>>;
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs dist/main.js (npm test builds it first), or another entry (`main`,
 * the image's bundle), with the given env and node flags; stdout JSON lines
 * are parsed. The debug listener takes a free port unless the test names
 * one: test files run in parallel, and its default (9324) is one port.
 */
export function runSidecar(args: string[], env: Record<string, string>, options: { main?: string; nodeArgs?: string[] } = {}): SidecarProcess {
  const child = spawn(NODE, [...(options.nodeArgs ?? []), options.main ?? MAIN, ...args], { env: { PATH: process.env.PATH ?? '', FIRSTOPS_DEBUG_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const arrivals = new Waiter<Record<string, unknown>>();
  const watchers: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      parsed = { msg: line, unparsed: true };
    }
    lines.push(parsed);
    arrivals.push(parsed);
    for (const w of [...watchers]) {
      if (w.match(parsed)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  });
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  return {
    child,
    lines,
    stderr,
    waitFor(msg) {
      const match = (l: Record<string, unknown>): boolean => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg)));
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        watchers.push({ match, resolve });
        void exited.then(({ code }) => reject(new Error(`sidecar exited (${code}) before logging ${String(msg)}: ${stderr.join('')}`)));
      });
    },
    exit: () => exited,
  };
}

/** The ports a started sidecar logged. */
export function portsOf(line: Record<string, unknown>): { proxy: number; admin: number; debug: number | undefined } {
  const port = (s: unknown): number => Number(String(s).split(':').at(-1));
  return { proxy: port(line.proxy), admin: port(line.admin), debug: line.debug === 'off' ? undefined : port(line.debug) };
}
