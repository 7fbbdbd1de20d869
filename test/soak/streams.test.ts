// 1,000 concurrent long-lived SSE streams through the built sidecar (a child
// process, so its memory and descriptors are its own): every stream completes
// with every event, all of them are open at once, the child's RSS stays
// bounded, and its descriptors return to the baseline afterwards.
//
// File descriptors: each stream holds a client socket and an upstream socket
// in the sidecar, and both ends again in this process, so ~2,100 descriptors
// per process are needed. The test skips (saying so) when the soft limit is
// lower; run it under `ulimit -n 4096` (the soft limit can be raised up to the
// hard limit without privileges). Many machines default to 1024.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { startRig } from './soak.ts';
import { eventually } from '../faults/lib.ts';

const STREAMS = Number(process.env.SSE_STREAMS ?? 1000);
const EVENTS = 10;
const GAP_MS = 250;
const RSS_BUDGET = 256 * 2 ** 20;

function softFdLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

const needed = STREAMS * 2 + 200;
const limit = softFdLimit();

test(`${STREAMS} concurrent SSE streams complete with bounded memory`, { skip: limit < needed ? `ulimit -n is ${limit}; ${needed} needed (run under ulimit -n 4096)` : false, timeout: 90_000 }, async () => {
  const rig = await startRig({ sseEvents: EVENTS, sseGapMs: GAP_MS });
  const pid = rig.child.child.pid!;
  const rss = async (): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const fds = async (): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;
  const gauge = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${rig.adminPort}/metrics`)).text();
    return [...text.matchAll(/^firstops_streams_active\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
  };
  try {
    const baseRss = await rss();
    const baseFds = await fds();
    const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    let peakRss = baseRss;
    let peakStreams = 0;
    let done = 0;
    const sampler = setInterval(() => {
      void rss().then((v) => { peakRss = Math.max(peakRss, v); }).catch(() => undefined);
      void gauge().then((v) => { peakStreams = Math.max(peakStreams, v); }).catch(() => undefined);
    }, 200);
    const results = await Promise.all(Array.from({ length: STREAMS }, (_, i) => new Promise<string>((resolve) => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `stream ${i}` }] });
      const req = request({ host: '127.0.0.1', port: rig.proxyPort, method: 'POST', path: '/llm/openai/v1/chat/completions', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => {
          done++;
          const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).length;
          resolve(res.statusCode === 200 && res.complete && events === EVENTS + 2 && text.endsWith('data: [DONE]\n\n') ? 'ok' : `status ${res.statusCode}, ${events} events, complete=${res.complete}`);
        });
        res.on('error', (err) => resolve(`error ${err.message}`));
      });
      req.on('error', (err) => resolve(`request error ${err.message}`));
      req.end(body);
    })));
    clearInterval(sampler);
    agent.destroy();
    const failed = results.filter((r) => r !== 'ok');
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${STREAMS} streams failed`);
    assert.equal(done, STREAMS);
    assert.ok(peakStreams >= STREAMS * 0.9, `only ${peakStreams} streams were open at once`);
    assert.ok(peakRss - baseRss < RSS_BUDGET, `RSS grew ${((peakRss - baseRss) / 2 ** 20).toFixed(0)} MiB for ${STREAMS} streams`);
    // Client sockets close at once; idle upstream keep-alive sockets within the pool's 4 s.
    await eventually(async () => (await fds()) <= baseFds + 10, `descriptors back to ${baseFds}`, 10_000);
    console.log(`# ${STREAMS} streams: peak ${peakStreams} open, RSS ${(baseRss / 2 ** 20).toFixed(0)} -> peak ${(peakRss / 2 ** 20).toFixed(0)} MiB, fds ${baseFds} -> ${await fds()}`);
  } finally {
    const code = await rig.stop();
    assert.equal(code, 0);
  }
});
