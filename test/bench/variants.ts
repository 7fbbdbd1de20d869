// `BENCH_VARIANTS='{"name":{"env":{...},"flags":[...],"main":"…/main.js"},…}' node test/bench/variants.ts`
// (after `npm run build`): what a setting, a V8 flag or another build costs
// per request. Each round starts every variant as a fresh sidecar (local
// allow-all policy, the defaults otherwise), in an order that alternates,
// (BENCH_REMOTE=1: with an identity, every request evaluated by the fake gateway),
// warms it for 1 s and drives it with wrk at c16 (BENCH_CONNECTIONS; JSON, or SSE with
// BENCH_SSE=1) for BENCH_SECONDS (default 3), its stdout a pipe this process
// reads, as in a container. Per variant and round: CPU per request (utime +
// stime), context switches per request (every thread), the main thread's GC
// pauses per request, the median bytes a scavenge kept (--trace-gc-nvp) and
// the process's peak RSS (VmHWM) at the end. A single run's figures move by ±10%
// on this VM: compare medians over BENCH_ROUNDS (default 6). Not part of the suite.
import { readFileSync, readdirSync } from 'node:fs';
import { LOAD_CORE, cpuSeconds, memory, setUp, stop, watchdog } from './procs.ts';
import { median, throughput } from './load.ts';

interface Variant { readonly env?: Record<string, string>; readonly flags?: string[]; readonly main?: string }
const variants = JSON.parse(process.env.BENCH_VARIANTS ?? '{"defaults":{}}') as Record<string, Variant>;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
watchdog(30 * 60_000);

/** Voluntary and involuntary context switches of every thread of a process. */
function contextSwitches(pid: number): number {
  let n = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) n += Number(m[1]);
  }
  return n;
}

const bench = await setUp();
const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Summarise: '.concat('Lorem ipsum dolor sit amet. '.repeat(30)) }] };
const body = JSON.stringify(process.env.BENCH_SSE ? { ...CHAT, stream: true } : CHAT);
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-0123456789abcdef' };
const results: Record<string, { cpu: number[]; switches: number[]; gcUs: number[]; keptKb: number[]; hwmMb: number[] }> = {};

for (let round = 0; round < ROUNDS; round++) {
  const names = Object.keys(variants);
  if (round % 2 === 1) names.reverse();
  for (const name of names) {
    const v = variants[name]!;
    const sidecar = await bench.startSidecar({ ...bench.localEnv, ...(process.env.BENCH_REMOTE ? bench.remoteEnv : {}), ...v.env }, ['--trace-gc-nvp', ...(v.flags ?? [])], v.main, 'pipe');
    let measuring = false;
    const kept: number[] = [];
    let pausedMs = 0;
    let partial = '';
    sidecar.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('latin1')).split('\n');
      partial = lines.pop()!;
      if (!measuring) return;
      for (const line of lines) {
        const pause = / pause=([\d.]+) /.exec(line);
        if (pause) pausedMs += Number(pause[1]);
        const m = / gc=s .*? promoted=(\d+) .*?new_space_survived=(\d+)/.exec(line);
        if (m) kept.push(Number(m[1]) + Number(m[2]));
      }
    });
    const req = { url: `http://127.0.0.1:${sidecar.port}/llm/openai/v1/chat/completions`, body, headers: HEADERS };
    await throughput(req, { connections: CONNECTIONS, seconds: 1, core: LOAD_CORE, scratch: bench.scratch });
    const cpu0 = cpuSeconds(sidecar.pid);
    const switches0 = contextSwitches(sidecar.pid);
    measuring = true;
    const r = await throughput(req, { connections: CONNECTIONS, seconds: SECONDS, core: LOAD_CORE, scratch: bench.scratch });
    measuring = false;
    if (r.errors > 0) throw new Error(`${name}: ${r.errors} errors`);
    const out = (results[name] ??= { cpu: [], switches: [], gcUs: [], keptKb: [], hwmMb: [] });
    out.hwmMb.push(memory(sidecar.pid).hwmMb);
    out.gcUs.push((pausedMs * 1000) / r.requests);
    out.cpu.push(((cpuSeconds(sidecar.pid) - cpu0) / r.requests) * 1e6);
    out.switches.push((contextSwitches(sidecar.pid) - switches0) / r.requests);
    out.keptKb.push(median(kept) / 1024);
    await stop(sidecar.child);
    process.stderr.write(`round ${round + 1}/${ROUNDS} ${name}: ${r.rps.toFixed(0)} req/s\n`);
  }
}
await bench.close();
const row = (xs: number[], digits: number): string => `${median(xs).toFixed(digits)} (${xs.map((x) => x.toFixed(digits)).join(' ')})`;
console.log('| variant | CPU µs/request | context switches/request | GC pause µs/request | KB kept per scavenge | VmHWM MB |\n|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${row(r.cpu, 0)} | ${row(r.switches, 2)} | ${row(r.gcUs, 1)} | ${row(r.keptKb, 0)} | ${row(r.hwmMb, 0)} |`);
