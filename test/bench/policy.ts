// `npm run bench:policy` (also the last part of `npm run bench`): what the
// local rules cost on large prompts, and whether probes stay answered while
// large hostile prompts are evaluated. Figures are from this run only.
//  1. Evaluation time per MiB with the shipped example policy, for clean
//     prose, one long single token (the e-mail pattern's old worst case) and
//     text with many matches: inline (the code a worker runs) and through the
//     worker pool (copy, message, evaluate, answer).
//  2. /healthz latency while four clients send 1 MiB single-token prompts
//     through a sidecar running the example policy, beside /healthz on the
//     same sidecar idle. Premise: every prompt counted was evaluated by the
//     local rules (firstops_policy_decisions_total{source="local"}).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, request } from 'undici';
import { inspect, type InspectInput } from '../../src/policy/inspect.ts';
import { compilePolicy } from '../../src/policy/local.ts';
import { createInspector } from '../../src/policy/pool.ts';
import { median, percentile } from './load.ts';
import { ROOT, setUp, stop, watchdog } from './procs.ts';

const MIB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2) * 3;
const EXAMPLE_FILE = join(ROOT, 'examples/policy.yaml');
const RESULTS = join(import.meta.dirname, 'results');

watchdog(5 * 60_000);
mkdirSync(RESULTS, { recursive: true });

const example = compilePolicy(readFileSync(EXAMPLE_FILE, 'utf8'), EXAMPLE_FILE);
const chat = (content: string): Buffer => Buffer.from(JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }));
const TEXTS: Record<string, string> = {
  clean: 'The quick brown fox jumps over the lazy dog while the committee reviews the report. '.repeat(Math.ceil(MIB / 84)).slice(0, MIB),
  'single token': 'a1'.repeat(MIB / 2),
  'many matches': 'contact bob.smith@example.com or key sk-ABCDEFGHIJKLMNOPQRSTUVWX now. '.repeat(Math.ceil(MIB / 72)).slice(0, MIB),
};

function input(body: Buffer): InspectInput {
  return { toolName: 'openai.v1.chat.completions', channel: 'llm', body, contentType: 'application/json', contentTypeCount: 1 };
}

// ---- 1. evaluation time per MiB ----
const perMib: Record<string, { inlineMs: number; workerMs: number; decision: string }> = {};
const pool = createInspector({ workers: 1, offloadBytes: 0, budgetMs: 60_000, maxQueue: 4 });
await pool.inspect(input(chat('warm the worker up')), example);
for (const [name, text] of Object.entries(TEXTS)) {
  const body = chat(text);
  const mib = body.length / MIB;
  const inline: number[] = [];
  const worker: number[] = [];
  let decision = '';
  for (let i = 0; i < 7; i++) {
    let t = performance.now();
    const r = inspect(input(body), example);
    inline.push((performance.now() - t) / mib);
    t = performance.now();
    const w = await pool.inspect(input(body), example);
    worker.push((performance.now() - t) / mib);
    if (r.kind !== 'inspected' || w.kind !== 'inspected' || r.local?.action !== w.local?.action) throw new Error(`${name}: inline and worker disagree`);
    decision = r.local!.action;
  }
  perMib[name] = { inlineMs: median(inline), workerMs: median(worker), decision };
}
await pool.close();
if (perMib['many matches']!.decision !== 'modify' || perMib['single token']!.decision !== 'allow') throw new Error('premise: the texts did not exercise the redactions as intended');

// ---- 2. /healthz while four clients send 1 MiB hostile prompts ----
const bench = await setUp();
const sidecar = await bench.startSidecar({ FIRSTOPS_POLICY_FILE: EXAMPLE_FILE, FIRSTOPS_IDENTITY_DIR: join(bench.scratch, 'none') });
const admin = `http://127.0.0.1:${sidecar.adminPort}`;

async function probe(seconds: number): Promise<number[]> {
  const client = new Client(admin);
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    const res = await client.request({ method: 'GET', path: '/healthz' });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`/healthz answered ${res.statusCode}`);
    samples.push(performance.now() - t);
  }
  await client.close();
  return samples;
}

async function localDecisions(): Promise<number> {
  const res = await request(`${admin}/metrics`);
  const text = await res.body.text();
  // The prompts' decisions only: the example policy's response rules judge each answer too (phase="response").
  return [...text.matchAll(/^firstops_policy_decisions_total\{source="local",[^}]*phase="request"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

const idle = await probe(SECONDS / 2);
const hostile = chat(TEXTS['single token']!);
let sent = 0;
let running = true;
const before = await localDecisions();
const clients = Array.from({ length: 4 }, async () => {
  const client = new Client(`http://127.0.0.1:${sidecar.port}`);
  while (running) {
    const res = await client.request({ method: 'POST', path: '/llm/openai/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: hostile });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`a hostile prompt answered ${res.statusCode}`);
    sent++;
  }
  await client.close();
});
const loaded = await probe(SECONDS);
running = false;
await Promise.all(clients);
const evaluated = (await localDecisions()) - before;
if (evaluated !== sent) throw new Error(`premise: ${sent} prompts answered but ${evaluated} evaluated by the local rules`);
await stop(sidecar.child);
await bench.close();

const result = {
  date: new Date().toISOString(),
  node: process.version,
  evaluationMsPerMib: perMib,
  healthz: {
    idle: { p50: percentile(idle, 50), p99: percentile(idle, 99), samples: idle.length },
    underHostileLoad: { p50: percentile(loaded, 50), p99: percentile(loaded, 99), samples: loaded.length, hostilePromptsServed: sent, seconds: SECONDS },
  },
};
const file = join(RESULTS, `policy-${result.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

const f = (n: number): string => n.toFixed(1);
console.log('\nLocal policy cost, shipped example policy (median of 7, ms per MiB of prompt)');
console.log('| text | inline | via worker | decision | target < 50 ms |');
console.log('|---|---:|---:|---|---|');
for (const [name, r] of Object.entries(perMib)) console.log(`| ${name} | ${f(r.inlineMs)} | ${f(r.workerMs)} | ${r.decision} | ${r.workerMs < 50 ? 'yes' : 'no'} |`);
const h = result.healthz;
console.log(`\n/healthz latency (ms): idle p50 ${f(h.idle.p50)} p99 ${f(h.idle.p99)}; with 4 clients sending 1 MiB single-token prompts ` +
  `(${sent} served in ${SECONDS} s, every one evaluated) p50 ${f(h.underHostileLoad.p50)} p99 ${f(h.underHostileLoad.p99)} ` +
  `(target p99 < 50 ms: ${h.underHostileLoad.p99 < 50 ? 'yes' : 'no'})`);
console.log(`written: ${file}`);
