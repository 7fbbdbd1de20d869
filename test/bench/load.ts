// Load generation for the benchmark: wrk (or autocannon when wrk is missing)
// for closed-loop throughput, and a small undici client for the latency
// figures wrk cannot give (a fixed request rate, time to first SSE byte).
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Pool, type Dispatcher } from 'undici';

export interface Request {
  readonly url: string;
  readonly body: string;
  readonly headers: Record<string, string>;
}

export interface ThroughputResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Non-2xx answers plus socket errors: anything but 0 makes the figure worthless. */
  readonly errors: number;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version.
    return (err as { status?: number }).status === 1;
  }
}

export const loadTool = hasWrk() ? 'wrk' : 'autocannon';

/**
 * A Lua long-bracket string. Used as a table key it needs a space after `[`:
 * `t[[==[k]==]]` would open a level-0 long string at `[[`, a syntax error
 * on which wrk drops the whole script and sends bare GETs without a body.
 */
function luaString(text: string): string {
  if (text.includes(']==]')) throw new Error('body not representable in the wrk script');
  return `[==[${text}]==]`;
}

/** Runs a load tool; anything on its stderr (e.g. wrk's script errors, which it survives) is a failure. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else if (stderr.trim()) reject(new Error(`${cmd} wrote to stderr:\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Closed-loop throughput at `connections` keep-alive connections for `seconds`, generator pinned to `core`. */
export async function throughput(req: Request, options: { connections: number; seconds: number; core: number; scratch: string }): Promise<ThroughputResult> {
  if (loadTool === 'wrk') {
    const script = join(options.scratch, `wrk-${Buffer.from(req.url + req.body).toString('base64url').slice(-24)}.lua`);
    const lines = [`wrk.method = "POST"`, `wrk.body = ${luaString(req.body)}`];
    // The spaces matter: `[[` would open a Lua long string, the script would not
    // parse, and wrk would go on with a plain GET (it only prints the error).
    for (const [name, value] of Object.entries(req.headers)) lines.push(`wrk.headers[ ${luaString(name)} ] = ${luaString(value)}`);
    writeFileSync(script, `${lines.join('\n')}\n`);
    const out = await run('taskset', ['-c', String(options.core), 'wrk', '-t1', `-c${options.connections}`, `-d${options.seconds}s`, '-s', script, req.url]);
    // "N requests in 2.00s", "... in 999.12ms", "... in 1.00m" (runs of a minute or more).
    const done = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out);
    if (!done) throw new Error(`unexpected wrk output:\n${out}`);
    const requests = Number(done[1]);
    const seconds = Number(done[2]) * (done[3] === 'ms' ? 0.001 : done[3] === 'm' ? 60 : 1);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const errors = non2xx + (socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
    return { requests, seconds, rps: requests / seconds, errors };
  }
  const args = ['-c', String(options.connections), '-d', String(options.seconds), '-m', 'POST', '-b', req.body, '--json'];
  for (const [name, value] of Object.entries(req.headers)) args.push('-H', `${name}=${value}`);
  const out = await run('taskset', ['-c', String(options.core), join(import.meta.dirname, '../../node_modules/.bin/autocannon'), ...args, req.url]);
  const result = JSON.parse(out) as { requests: { total: number }; duration: number; non2xx: number; errors: number };
  return { requests: result.requests.total, seconds: result.duration, rps: result.requests.total / result.duration, errors: result.non2xx + result.errors };
}

function split(url: string): { origin: string; path: string } {
  const u = new URL(url);
  return { origin: u.origin, path: u.pathname + u.search };
}

async function once(dispatcher: Dispatcher, req: Request, path: string): Promise<{ total: number; firstByte: number; ok: boolean }> {
  const start = performance.now();
  const res = await dispatcher.request({ path, method: 'POST', headers: req.headers, body: req.body });
  let firstByte = 0;
  for await (const _chunk of res.body) {
    if (!firstByte) firstByte = performance.now() - start;
  }
  return { total: performance.now() - start, firstByte, ok: res.statusCode === 200 };
}

export interface LatencySamples {
  /** Milliseconds, one per request: whole response, or to the first body byte. */
  readonly total: number[];
  readonly firstByte: number[];
  readonly errors: number;
}

/** One request at a time on one keep-alive connection, for `seconds` or `count` requests. */
export async function sequential(req: Request, options: { seconds?: number; count?: number }): Promise<LatencySamples> {
  const { origin, path } = split(req.url);
  const client = new Client(origin, { keepAliveTimeout: 10_000 });
  const total: number[] = [];
  const firstByte: number[] = [];
  let errors = 0;
  const deadline = performance.now() + (options.seconds ?? Infinity) * 1000;
  try {
    while (performance.now() < deadline && total.length < (options.count ?? Infinity)) {
      const r = await once(client, req, path);
      if (!r.ok) errors++;
      total.push(r.total);
      firstByte.push(r.firstByte);
    }
  } finally {
    await client.close();
  }
  return { total, firstByte, errors };
}

/**
 * Open loop: requests start on a fixed schedule (`rate` per second) whatever
 * the answers do, on as many connections as that needs. Latency is from the
 * moment a request is started to the end of its response.
 */
export async function fixedRate(req: Request, options: { rate: number; seconds: number }): Promise<LatencySamples & { achievedRate: number }> {
  const { origin, path } = split(req.url);
  const pool = new Pool(origin, { connections: 64, keepAliveTimeout: 10_000 });
  const total: number[] = [];
  const firstByte: number[] = [];
  let errors = 0;
  const inflight = new Set<Promise<void>>();
  const count = Math.round(options.rate * options.seconds);
  const start = performance.now();
  let sent = 0;
  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * options.rate) + 1);
        for (; sent < due; sent++) {
          const p = once(pool, req, path).then(
            (r) => {
              if (!r.ok) errors++;
              total.push(r.total);
              firstByte.push(r.firstByte);
            },
            () => {
              errors++;
            },
          );
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        if (sent < count) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    await Promise.all(inflight);
  } finally {
    await pool.close();
  }
  return { total, firstByte, errors, achievedRate: sent / ((performance.now() - start) / 1000) };
}

/** Holds `streams` responses open at once for `seconds`, starting a new one as each ends. */
export async function concurrentStreams(req: Request, options: { streams: number; seconds: number; onTick?: () => void }): Promise<{ completed: number; errors: number }> {
  const { origin, path } = split(req.url);
  const pool = new Pool(origin, { connections: options.streams, keepAliveTimeout: 10_000 });
  const deadline = performance.now() + options.seconds * 1000;
  let completed = 0;
  let errors = 0;
  const sampler = options.onTick ? setInterval(options.onTick, 50) : undefined;
  try {
    await Promise.all(Array.from({ length: options.streams }, async () => {
      while (performance.now() < deadline) {
        const r = await once(pool, req, path).catch(() => ({ ok: false }));
        if (r.ok) completed++;
        else errors++;
      }
    }));
  } finally {
    clearInterval(sampler);
    await pool.close();
  }
  return { completed, errors };
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
