import { createResponseGate, type GateSummary, type HeldReport, type ResponseGateOptions } from '../../src/response/gate.ts';
import { compileResponseRules, type ResponseRules } from '../../src/policy/response-rules.ts';
import { ISSUE_RULES } from './streams.ts';

export const issueRules: ResponseRules = compileResponseRules(ISSUE_RULES);

export interface GateRun {
  /** Every sink write, in order. */
  readonly writes: Buffer[];
  readonly ended: boolean;
  readonly summary: GateSummary | undefined;
  readonly held: HeldReport[];
  /** The writes joined. */
  output(): Buffer;
}

/** A gate whose sink records everything; `settled` resolves when the sink ends. */
export function openGate(options: Partial<ResponseGateOptions> & { provider: string }) {
  const writes: Buffer[] = [];
  const held: HeldReport[] = [];
  let summary: GateSummary | undefined;
  let ended = false;
  let resolveEnd: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => { resolveEnd = resolve; });
  const gate = createResponseGate(
    {
      rules: issueRules,
      ...options,
      onHeld: (r) => { held.push(r); options.onHeld?.(r); },
      onEnd: (s) => { summary = s; options.onEnd?.(s); },
    },
    {
      write: (chunk) => { writes.push(Buffer.from(chunk)); },
      end: () => { ended = true; resolveEnd(); },
    },
  );
  const run: GateRun = {
    writes,
    get ended() { return ended; },
    get summary() { return summary; },
    held,
    output: () => Buffer.concat(writes),
  };
  return { gate, run, settled };
}

/** Feeds the chunks, ends the upstream, and returns what came out (synchronous rules: no waiting needed). */
export function runGate(provider: string, chunks: readonly (Buffer | string)[], options: Partial<ResponseGateOptions> = {}): GateRun {
  const { gate, run } = openGate({ provider, ...options });
  for (const c of chunks) gate.write(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  gate.end();
  return run;
}

/** Every way to cut `bytes` in two, plus one byte at a time. */
export function* splits(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 1; i < bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
  yield [...bytes].map((b) => Buffer.from([b]));
}

/** A deterministic pseudo-random chunking (mulberry32). */
export function randomChunks(bytes: Buffer, seed: number, max = 40): Buffer[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}
