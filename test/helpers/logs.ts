import { Writable } from 'node:stream';
import assert from 'node:assert/strict';

/** A pino destination that keeps every line parsed, for assertions. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  readonly #watchers: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];

  /** Resolves with the first line (already written or still to come) whose msg matches and that `since` did not see. */
  waitFor(msg: string | RegExp, since = 0): Promise<Record<string, unknown>> {
    const match = (l: Record<string, unknown>): boolean => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg)));
    const seen = this.lines.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#watchers.push({ match, resolve }));
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.raw.push(line);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      this.lines.push(parsed);
      for (const w of [...this.#watchers]) {
        if (!w.match(parsed)) continue;
        this.#watchers.splice(this.#watchers.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
    callback();
  }
  requests(): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === 'request');
  }
}

/** Fails when any captured line contains any of the given secret strings. */
export function assertNoSecrets(raw: readonly string[], secrets: ReadonlyArray<string | undefined>): void {
  for (const secret of secrets) {
    if (!secret) continue;
    const hit = raw.find((line) => line.includes(secret));
    assert.equal(hit, undefined, `a log line leaks a secret (${secret.slice(0, 12)}…): ${hit}`);
  }
}
