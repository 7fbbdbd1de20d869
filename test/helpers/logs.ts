import { Writable } from 'node:stream';
import assert from 'node:assert/strict';

/** A pino destination that keeps every line parsed, for assertions. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
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
