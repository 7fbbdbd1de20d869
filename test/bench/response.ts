// `npm run bench:response` (issue 22): what the policy file's response rules
// cost on /llm answers, as an A/B of two sidecars built from the same dist/
// in one run: rules OFF (examples/policy.yaml without its `responses:`
// section: the same request rules, answers relayed as before) against rules
// ON (examples/policy.yaml as shipped, two response rules).
//
// Cases, each an OpenAI Chat Completions answer from this file's own fake
// upstream (a child process pinned beside the load generator):
// - text_sse: a stream of 20 chunks, text deltas only (plus the finish and
//   usage chunks), as OpenAI streams with include_usage;
// - tool_sse: a stream with text deltas, then one tool call (get_weather,
//   harmless arguments: the rules allow it) in argument fragments; the call's
//   events are held by the gate until it is complete, then released;
// - tool_json: the non-streamed answer with the same tool call, read whole
//   and judged.
// Figures per case: throughput at c16 (wrk) and the sidecar's CPU per
// request; time to the first body byte at c1 (one keep-alive connection,
// requests back to back, p50), added over the fake upstream reached directly.
// For the streams the first-byte figure uses a paced answer: the first text
// chunk, then the rest 2 ms later, so it times the first text event's way
// through the sidecar and not the whole stream's. Each round measures both
// sides (order alternating) and the direct upstream (order rotating); a
// figure is the median over rounds, a ratio or a difference the median of
// the per-round ones.
//
// Premises, checked on every measurement warm-up included (any failure
// exits 1): every answer is 200 and byte-for-byte the upstream's (wrk's
// response() hook compares each body, the c1 client too), with no socket
// error; on the ON side
// `firstops_policy_decisions_total{phase="response"}` in the sidecar's
// /metrics grows by at least the answers counted (one local decision per
// answer, stream or JSON, counted when it ends; at most one more per
// connection, answers wrk leaves in flight when it stops), all of them
// `allow`; on the OFF side it does not grow. Once per side before the rounds
// (outside timing), each case's bytes at the client are compared with the
// upstream's reached directly. wrk's timeouts (answers still running after
// 2 s, which it waits for, counts and checks) are reported, not failures:
// on this shared VM they are stalls of a whole round. Prints a table; writes
// test/bench/results/response-<timestamp>.json (gitignored).
// Knobs: BENCH_SECONDS (per c16 measurement, default 3; the c1 one takes
// half), BENCH_ROUNDS (default 5), BENCH_SIDECAR (another build's
// dist/main.js). The machine is shared: only ratios within one run count.
import { execFile } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { parse } from 'yaml';
import { chatCompletion, openAiChunk } from '../helpers/upstream.ts';
import { loadTool, median, percentile } from './load.ts';
import { LOAD_CORE, ROOT, cpuSeconds, firstLine, settled, setUp, start, stop, watchdog, writeResult, type SidecarProcess } from './procs.ts';

// ---- the answers (shared by the fake upstream and the checks) ----

const withNullUsage = (event: string): string => event.replace(/\}\n\n$/, ',"usage":null}\n\n');
const chunkEvent = (delta: Record<string, unknown>, finish: string | null = null): string => withNullUsage(`data: ${JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini',
  choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
})}\n\n`);
const usageEvent = `data: ${JSON.stringify({
  id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [],
  usage: { prompt_tokens: 61, completion_tokens: 19, total_tokens: 80 },
})}\n\n`;
const DONE = 'data: [DONE]\n\n';

const TOOL_ARGS = '{"location":"Paris, France","unit":"celsius","days":3,"include_hourly":false}';
const TOOL_CALL = { id: 'call_bench0123456789', type: 'function', function: { name: 'get_weather', arguments: TOOL_ARGS } };
/** Splits the arguments into `n` fragments, as a model streams them. */
function fragments(text: string, n: number): string[] {
  const size = Math.ceil(text.length / n);
  return Array.from({ length: n }, (_, i) => text.slice(i * size, (i + 1) * size)).filter((s) => s.length > 0);
}

/** Each answer as the events (SSE) or body (JSON) the upstream writes; the first event is text. */
const ANSWERS: Record<string, { readonly sse: boolean; readonly parts: readonly Buffer[] }> = {
  // 18 text deltas, the finish chunk, the usage chunk: 20 chunks, then [DONE] (fakes.ts's stream).
  text_sse: {
    sse: true,
    parts: [...Array.from({ length: 18 }, (_, i) => withNullUsage(openAiChunk(`token${i} `))), withNullUsage(openAiChunk('', 'stop')), usageEvent, DONE].map((s) => Buffer.from(s)),
  },
  // 8 text deltas, the call's first event (id, name), 9 argument fragments, the finish chunk, usage: 20 chunks.
  tool_sse: {
    sse: true,
    parts: [
      ...Array.from({ length: 8 }, (_, i) => chunkEvent(i === 0 ? { role: 'assistant', content: 'Let me ' } : { content: `check${i} ` })),
      chunkEvent({ tool_calls: [{ index: 0, id: TOOL_CALL.id, type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
      ...fragments(TOOL_ARGS, 9).map((a) => chunkEvent({ tool_calls: [{ index: 0, function: { arguments: a } }] })),
      chunkEvent({}, 'tool_calls'),
      usageEvent,
      DONE,
    ].map((s) => Buffer.from(s)),
  },
  tool_json: {
    sse: false,
    parts: [Buffer.from(JSON.stringify({
      ...chatCompletion(),
      choices: [{
        index: 0,
        message: { role: 'assistant', content: 'Let me check the weather in Paris for the next three days.', refusal: null, tool_calls: [TOOL_CALL] },
        finish_reason: 'tool_calls',
        logprobs: null,
      }],
    }))],
  },
};
const EXPECTED: Record<string, Buffer> = Object.fromEntries(Object.entries(ANSWERS).map(([k, a]) => [k, Buffer.concat(a.parts)]));
const PACE_MS = 2;

// ---- the fake upstream (this file run with --upstream) ----

function answer(req: IncomingMessage, res: ServerResponse, body: string): void {
  const query = new URLSearchParams(req.url?.slice(req.url.indexOf('?') + 1) ?? '');
  const a = ANSWERS[query.get('case') ?? ''];
  // Anything but a POST with a body (a wrk script that failed to load sends bare GETs) is a 400 the bench counts.
  if (!a || req.method !== 'POST' || body.length === 0) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end('{"error":"the bench sends a POST with a body and ?case="}');
    return;
  }
  if (!a.sse) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': a.parts[0]!.length });
    res.end(a.parts[0]);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const paced = query.has('pace');
  const last = a.parts.length - 1;
  // Paced: the first (text) event alone, the rest PACE_MS later.
  const from = paced ? 1 : 0;
  if (paced) res.write(a.parts[0]);
  const rest = (): void => {
    for (let i = from; i < last; i++) res.write(a.parts[i]);
    res.end(a.parts[last]);
  };
  if (paced) setTimeout(rest, PACE_MS);
  else rest();
}

async function serveUpstream(): Promise<void> {
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ upstream: (server.address() as AddressInfo).port })}\n`);
  const quit = (): never => process.exit(0);
  process.stdin.on('end', quit).on('close', quit).resume();
  process.on('SIGTERM', quit);
}

// ---- the bench ----

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const C1_SECONDS = Math.max(0.5, SECONDS / 2);
const CONNECTIONS = 16;
const PATH = '/llm/openai/v1/chat/completions';
const HEADERS: Record<string, string> = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const CHAT = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Use the tools when they help.' },
    { role: 'user', content: 'What will the weather be like in Paris for the next three days? '.concat('Please be brief. '.repeat(8)) },
  ],
  tools: [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather forecast for a place.',
      parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string' }, days: { type: 'integer' }, include_hourly: { type: 'boolean' } }, required: ['location'] },
    },
  }],
};
const STREAM = { ...CHAT, stream: true, stream_options: { include_usage: true } };
const BODIES: Record<string, string> = {
  text_sse: JSON.stringify(STREAM),
  tool_sse: JSON.stringify(STREAM),
  tool_json: JSON.stringify(CHAT),
};
const CASES = Object.keys(ANSWERS);

class PremiseFailed extends Error {}

async function main(): Promise<void> {
  if (loadTool !== 'wrk') throw new Error('bench:response needs wrk (apt-get install wrk)');
  watchdog(10 * 60_000);

  // The two policy files: the shipped one, and the same without its responses section.
  const shipped = readFileSync(join(ROOT, 'examples/policy.yaml'), 'utf8');
  const cut = shipped.search(/^responses:/m);
  if (cut < 0) throw new Error('examples/policy.yaml has no responses section');
  const offText = shipped.slice(0, cut);
  const onDoc = parse(shipped) as { rules: unknown[]; responses?: unknown[] };
  const offDoc = parse(offText) as { rules: unknown[]; responses?: unknown[] };
  if (!isDeepStrictEqual(onDoc.rules, offDoc.rules) || offDoc.responses !== undefined || !onDoc.responses?.length) {
    throw new Error('the OFF policy is not the shipped one minus its response rules');
  }

  const bench = await setUp();
  const offPolicy = join(bench.scratch, 'policy-off.yaml');
  writeFileSync(offPolicy, offText);
  const upstreamChild = start(LOAD_CORE, [import.meta.filename, '--upstream'], {}, 'pipe');
  const upstreamUrl = `http://127.0.0.1:${(await firstLine(upstreamChild)).upstream}`;
  const env = (policy: string): Record<string, string> => ({ ...bench.localEnv, FIRSTOPS_POLICY_FILE: policy, FIRSTOPS_UPSTREAM_OPENAI: upstreamUrl });
  const sides: Record<'off' | 'on', SidecarProcess> = {
    off: await bench.startSidecar(env(offPolicy)),
    on: await bench.startSidecar(env(join(ROOT, 'examples/policy.yaml'))),
  };
  type Side = keyof typeof sides;
  const url = (target: Side | 'direct', c: string, paced = false): string =>
    (target === 'direct' ? `${upstreamUrl}/v1/chat/completions` : `http://127.0.0.1:${sides[target].port}${PATH}`) + `?case=${c}${paced ? '&pace=1' : ''}`;

  const loadBefore = loadavg();
  const t0 = performance.now();
  const log = (line: string): void => {
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  };

  // ---- premise bookkeeping ----

  const checks = {
    /** Answers counted by the clients (wrk's and the c1 one), per side, and the response decisions the sidecar counted meanwhile. */
    counted: { off: { answers: 0, decisions: 0 }, on: { answers: 0, decisions: 0 } },
    /** Answers that were not 200 or not the upstream's bytes, and load-generator errors, per target. */
    bad: { direct: 0, off: 0, on: 0 } as Record<string, number>,
    /** wrk's timeouts (answers slower than 2 s, still counted and checked when they end), per side: stalls of the VM or the sidecar. */
    slow: { off: 0, on: 0 },
    /** Once per side and case, outside timing: client bytes against the upstream's reached directly. */
    bytes: {} as Record<string, Record<string, { client: number; upstream: number; equal: boolean }>>,
  };
  const failures: string[] = [];
  const fail = (text: string): void => {
    failures.push(text);
    process.stderr.write(`PREMISE FAILED: ${text}\n`);
  };

  /** The sidecar's response-phase decisions, by outcome. */
  async function decisions(side: Side): Promise<Record<string, number>> {
    await settled(sides[side].adminPort);
    const text = await (await fetch(`http://127.0.0.1:${sides[side].adminPort}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^firstops_policy_decisions_total\{([^}]*)\} (\d+)$/gm)) {
      if (!/\bphase="response"/.test(m[1]!)) continue;
      const outcome = /\boutcome="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
      out[outcome] = (out[outcome] ?? 0) + Number(m[2]);
    }
    return out;
  }
  const total = (d: Record<string, number>): number => Object.values(d).reduce((s, n) => s + n, 0);

  /** Runs `load` against a side and checks the decisions it grew by against the answers the client counted. */
  async function governed<T>(side: Side, what: string, slack: number, load: () => Promise<T & { answers: number }>): Promise<T & { answers: number }> {
    const before = await decisions(side);
    const r = await load();
    const after = await decisions(side);
    const grew: Record<string, number> = {};
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const d = (after[k] ?? 0) - (before[k] ?? 0);
      if (d) grew[k] = d;
    }
    const n = total(grew);
    checks.counted[side].answers += r.answers;
    checks.counted[side].decisions += n;
    if (side === 'off' && n !== 0) fail(`${what}: the OFF sidecar counted ${n} response decisions`);
    if (side === 'on') {
      if (n < r.answers || n > r.answers + slack) fail(`${what}: ${r.answers} answers counted by the client, ${n} response decisions (${JSON.stringify(grew)}) on the ON sidecar`);
      if (n !== (grew.allow ?? 0)) fail(`${what}: response decisions other than allow: ${JSON.stringify(grew)}`);
    }
    return r;
  }

  // ---- wrk at c16, every body compared in its response() hook ----

  const luaString = (text: string): string => {
    if (text.includes(']==]')) throw new Error('text not representable in the wrk script');
    return `[==[${text}]==]`;
  };
  const scripts: Record<string, string> = {};
  for (const c of CASES) {
    const file = join(bench.scratch, `response-${c}.lua`);
    const lines = ['wrk.method = "POST"', `wrk.body = ${luaString(BODIES[c]!)}`];
    // The spaces matter: `[[` would open a Lua long string and wrk would send bare GETs.
    for (const [k, v] of Object.entries(HEADERS)) lines.push(`wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`);
    lines.push(
      `local expected = ${luaString(EXPECTED[c]!.toString('latin1'))}`,
      'local threads = {}',
      'function setup(thread) table.insert(threads, thread) end',
      'function init(args) seen = 0; bad = 0; sample = "" end',
      'function response(status, headers, body)',
      '  seen = seen + 1',
      '  if status ~= 200 or body ~= expected then',
      '    bad = bad + 1',
      // The first bad answer, for the report: its status and where it departs from the upstream's bytes.
      '    if sample == "" then',
      '      local i = 1',
      '      while i <= #body and body:byte(i) == expected:byte(i) do i = i + 1 end',
      '      sample = string.format("status %d, %d bytes, differs at byte %d: %q", status, #body, i, body:sub(math.max(1, i - 40), i + 300))',
      '    end',
      '  end',
      'end',
      'function done(summary, latency, requests)',
      '  local s, b, first = 0, 0, ""',
      '  for _, t in ipairs(threads) do s = s + t:get("seen"); b = b + t:get("bad"); if first == "" then first = t:get("sample") end end',
      '  io.write(string.format("answers-checked %d bad %d\\n", s, b))',
      '  if first ~= "" then io.write("first-bad " .. first:gsub("\\n", "\\\\n") .. "\\n") end',
      'end',
    );
    writeFileSync(file, `${lines.join('\n')}\n`);
    scripts[c] = file;
  }
  const UNIT: Record<string, number> = { ms: 0.001, s: 1, m: 60 };
  /** `timeouts`: wrk's count of answers still running after its 2 s timeout (it waits for them: a stall, not a failure). */
  interface Load { answers: number; rps: number; errors: number; timeouts: number; detail: string }
  function wrk(target: string, c: string, seconds: number): Promise<Load> {
    const args = ['-c', String(LOAD_CORE), 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '-s', scripts[c]!, target];
    return new Promise((resolve, reject) => {
      execFile('taskset', args, { maxBuffer: 1 << 20 }, (err, out, stderr) => {
        if (err || stderr.trim()) return reject(new Error(`wrk failed: ${err?.message ?? ''}\n${stderr}`));
        const done = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out);
        const checked = /answers-checked (\d+) bad (\d+)/.exec(out);
        if (!done || !checked) return reject(new Error(`unexpected wrk output:\n${out}`));
        const requests = Number(done[1]);
        const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
        const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
        const [connect, read, write, timeouts] = socket ? socket.slice(1, 5).map(Number) : [0, 0, 0, 0];
        const unchecked = Math.abs(requests - Number(checked[1]));
        // wrk's `bad` includes the non-2xx answers.
        const errors = Number(checked[2]) + connect! + read! + write! + unchecked;
        const firstBad = /^first-bad (.*)$/m.exec(out)?.[1];
        const detail = `non-2xx ${non2xx}, not the upstream's bytes ${Number(checked[2]) - non2xx}, socket errors connect ${connect} read ${read} write ${write}, answers the hook missed ${unchecked}${firstBad ? `; first: ${firstBad}` : ''}`;
        resolve({ answers: requests, rps: requests / (Number(done[2]) * UNIT[done[3]!]!), errors, timeouts: timeouts!, detail });
      });
    });
  }

  // ---- c1: first body byte, every answer compared ----

  interface FirstBytes { answers: number; firstByteMs: number[]; errors: number; detail: string }
  async function firstBytes(target: string, c: string, seconds: number): Promise<FirstBytes> {
    const u = new URL(target);
    const client = new Client(u.origin, { keepAliveTimeout: 10_000 });
    const expected = EXPECTED[c]!;
    const firstByteMs: number[] = [];
    let errors = 0;
    let detail = '';
    const deadline = performance.now() + seconds * 1000;
    try {
      do {
        const t = performance.now();
        const res = await client.request({ path: u.pathname + u.search, method: 'POST', headers: HEADERS, body: BODIES[c]! });
        let first = 0;
        const chunks: Buffer[] = [];
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          if (!first) first = performance.now() - t;
          chunks.push(chunk);
        }
        const got = Buffer.concat(chunks);
        if (res.statusCode !== 200 || !got.equals(expected)) {
          errors++;
          detail ||= `first: status ${res.statusCode}, ${got.length} bytes: ${JSON.stringify(got.subarray(0, 300).toString())}`;
        }
        firstByteMs.push(first);
      } while (performance.now() < deadline);
    } finally {
      await client.close();
    }
    return { answers: firstByteMs.length, firstByteMs, errors, detail };
  }

  // ---- the measurements ----

  type Figures = { rps: number[]; cpuUsPerReq: number[]; firstByteP50Ms: number[] };
  const figures: Record<string, Record<string, Figures>> = {};
  const fig = (c: string, t: string): Figures => ((figures[c] ??= {})[t] ??= { rps: [], cpuUsPerReq: [], firstByteP50Ms: [] });

  async function throughput(side: Side, c: string, seconds: number, keep: boolean): Promise<void> {
    const pid = sides[side].pid;
    let cpu = 0;
    const r = await governed(side, `${c} c${CONNECTIONS} ${side}`, CONNECTIONS, async () => {
      const cpu0 = cpuSeconds(pid);
      const load = await wrk(url(side, c), c, seconds);
      cpu = cpuSeconds(pid) - cpu0;
      return load;
    });
    checks.slow[side] += r.timeouts;
    if (r.timeouts) log(`${c} c${CONNECTIONS} ${side}: ${r.timeouts} answers slower than 2 s (${r.rps.toFixed(0)} req/s)`);
    if (r.errors) {
      checks.bad[side]! += r.errors;
      fail(`${c} c${CONNECTIONS} ${side}: ${r.errors} errors (${r.detail})`);
    }
    if (!keep) return;
    const f = fig(c, side);
    f.rps.push(r.rps);
    f.cpuUsPerReq.push((cpu / r.answers) * 1e6);
  }

  async function firstByte(target: Side | 'direct', c: string, seconds: number, keep: boolean): Promise<void> {
    const paced = ANSWERS[c]!.sse;
    const run = (): Promise<FirstBytes> => firstBytes(url(target, c, paced), c, seconds);
    const r = target === 'direct' ? await run() : await governed(target, `${c} c1 ${target}`, 1, run);
    if (r.errors) {
      checks.bad[target]! += r.errors;
      fail(`${c} c1 ${target}: ${r.errors} answers not 200 or not the upstream's bytes (${r.detail})`);
    }
    if (keep) fig(c, target).firstByteP50Ms.push(percentile(r.firstByteMs, 50));
  }

  log(`${ROUNDS} rounds; c${CONNECTIONS} ${SECONDS} s, c1 ${C1_SECONDS} s per figure; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // Bytes at the client against the upstream's, once per side and case, outside timing.
  for (const c of CASES) {
    const direct = await firstBytes(url('direct', c), c, 0.001);
    for (const side of ['off', 'on'] as const) {
      const r = await governed(side, `${c} bytes check ${side}`, 0, async () => {
        const res = await fetch(url(side, c), { method: 'POST', headers: HEADERS, body: BODIES[c] });
        const client = Buffer.from(await res.arrayBuffer());
        return { answers: 1, status: res.status, client };
      });
      const equal = r.status === 200 && direct.errors === 0 && r.client.equals(EXPECTED[c]!);
      (checks.bytes[c] ??= {})[side] = { client: r.client.length, upstream: EXPECTED[c]!.length, equal };
      if (!equal) fail(`${c} ${side}: the client got ${r.status}, ${r.client.length} bytes, not the upstream's ${EXPECTED[c]!.length}`);
    }
  }
  // Warm-up: JIT, connection pools.
  for (const c of CASES) {
    for (const side of ['off', 'on'] as const) {
      await throughput(side, c, 1, false);
      await firstByte(side, c, 0.3, false);
    }
    await firstByte('direct', c, 0.3, false);
  }
  log('warm-up done');
  const targets = ['direct', 'off', 'on'] as const;
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CASES) {
      const pair = round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      for (const side of pair) await throughput(side, c, SECONDS, true);
      for (let i = 0; i < targets.length; i++) await firstByte(targets[(i + round) % targets.length]!, c, C1_SECONDS, true);
    }
    log(`round ${round + 1}/${ROUNDS}`);
  }
  const loadAfter = loadavg();
  await Promise.all([stop(sides.off.child), stop(sides.on.child), stop(upstreamChild)]);
  await bench.close();

  // ---- the table ----

  const results: Record<string, Record<string, number>> = {};
  const lines = [
    `| case | off req/s (c${CONNECTIONS}) | on req/s | **on ÷ off** | off CPU µs/req | on CPU µs/req | first byte p50, direct (ms) | added, off (ms) | added, on (ms) | **on − off (ms)** |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of CASES) {
    const f = figures[c]!;
    const ratio = median(f.on!.rps.map((v, i) => v / f.off!.rps[i]!));
    const added = (side: Side): number[] => f[side]!.firstByteP50Ms.map((v, i) => v - f.direct!.firstByteP50Ms[i]!);
    const onMinusOff = median(f.on!.firstByteP50Ms.map((v, i) => v - f.off!.firstByteP50Ms[i]!));
    results[c] = {
      offRps: median(f.off!.rps), onRps: median(f.on!.rps), throughputRatio: ratio,
      offCpuUsPerReq: median(f.off!.cpuUsPerReq), onCpuUsPerReq: median(f.on!.cpuUsPerReq),
      directFirstByteP50Ms: median(f.direct!.firstByteP50Ms),
      offAddedFirstByteMs: median(added('off')), onAddedFirstByteMs: median(added('on')), onMinusOffFirstByteMs: onMinusOff,
    };
    const r = results[c];
    lines.push(`| ${c} | ${r.offRps!.toFixed(0)} | ${r.onRps!.toFixed(0)} | **${ratio.toFixed(3)}** | ${r.offCpuUsPerReq!.toFixed(0)} | ${r.onCpuUsPerReq!.toFixed(0)} | ${r.directFirstByteP50Ms!.toFixed(3)} | ${r.offAddedFirstByteMs!.toFixed(3)} | ${r.onAddedFirstByteMs!.toFixed(3)} | **${onMinusOff.toFixed(3)}** |`);
  }
  const counted = checks.counted;
  const bytesText = CASES.map((c) => `${c} ${(['off', 'on'] as const).map((s) => `${s} ${checks.bytes[c]![s]!.client}/${checks.bytes[c]![s]!.upstream}${checks.bytes[c]![s]!.equal ? ' equal' : ' DIFFERENT'}`).join(', ')}`).join('; ');
  process.stdout.write(`\n${lines.join('\n')}\n\n` +
    `response decisions: on ${counted.on.decisions} for ${counted.on.answers} answers counted by the clients; off ${counted.off.decisions} for ${counted.off.answers}\n` +
    `bytes at the client (once per side, outside timing): ${bytesText}\n` +
    `answers not 200 / not the upstream's bytes / load-generator errors: ${JSON.stringify(checks.bad)}; answers slower than 2 s (wrk timeouts, not failures): ${JSON.stringify(checks.slow)}\n` +
    `premises: ${failures.length ? `${failures.length} FAILED` : 'all held'}\n`);

  const file = writeResult('response', {
    loadAverage: { before: loadBefore, after: loadAfter },
    seconds: SECONDS,
    c1Seconds: C1_SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    paceMs: PACE_MS,
    answerBytes: Object.fromEntries(CASES.map((c) => [c, EXPECTED[c]!.length])),
    results,
    figures,
    checks,
    failures,
  });
  process.stdout.write(`wrote ${file}\n`);
  if (failures.length) throw new PremiseFailed(`${failures.length} premise checks failed; the figures do not measure what they say`);
}

if (process.argv[2] === '--upstream') await serveUpstream();
else {
  try {
    await main();
    process.exit(0);
  } catch (err) {
    process.stderr.write(`${err instanceof PremiseFailed ? err.message : (err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}
