import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { startUpstream, sendJson } from '../helpers/upstream.ts';
import { startTestSidecar, PROMPT_MARKER } from '../helpers/sidecar.ts';

const HISTORY = 50;
const REQUESTS = 1500;
const CONCURRENCY = 16;
/** A history entry's JSON: path and reason are cut at 256 characters, the rest are short scalars. */
const MAX_ENTRY_BYTES = 1024;

test('under load the history holds exactly FIRSTOPS_DEBUG_HISTORY entries of bounded size', async () => {
  const upstream = await startUpstream((_req, res) => sendJson(res, 200, { ok: true }));
  const dir = await mkdtemp(join(tmpdir(), 'fo-debug-load-'));
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, `rules:\n  - id: deny-long\n    match: { input: { model: deny } }\n    decision: deny\n    reason: "${'why '.repeat(500)}"\n`);
  const sidecar = await startTestSidecar({ FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_POLICY_FILE: policy, FIRSTOPS_DEBUG_HISTORY: String(HISTORY), FIRSTOPS_LOG_LEVEL: 'warn' });
  const agent = new Agent({ connections: CONCURRENCY });
  try {
    let next = 0;
    const longPath = `/llm/openai/v1/${'segment'.repeat(600)}`;
    const worker = async (): Promise<void> => {
      while (next < REQUESTS) {
        const i = next++;
        const res = await request(`${sidecar.url}${i % 2 ? longPath : '/llm/openai/v1/chat/completions'}?q=${'x'.repeat(2000)}`, {
          method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: i % 3 ? 'gpt-4o' : 'deny', prompt: `${PROMPT_MARKER} ${'p'.repeat(5000)}` }),
        });
        await res.body.dump();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Every line is pushed once its response is done; wait for the last few.
    let config: any;
    do config = await (await fetch(`${sidecar.debugUrl}/debug/config`)).json(); while (config.history.size < HISTORY);
    assert.equal(config.history.capacity, HISTORY);
    assert.equal(config.history.size, HISTORY);
    const { requests } = (await (await fetch(`${sidecar.debugUrl}/debug/requests`)).json()) as { requests: Array<Record<string, unknown>> };
    assert.equal(requests.length, HISTORY);
    for (const entry of requests) {
      const size = Buffer.byteLength(JSON.stringify(entry));
      assert.ok(size <= MAX_ENTRY_BYTES, `entry of ${size} bytes: ${JSON.stringify(entry).slice(0, 120)}`);
      assert.ok(String(entry.path).length <= 256);
      assert.ok(!String(entry.path).includes('?'));
    }
    const denied = requests.find((e) => e.decision === 'deny')!;
    assert.equal(String(denied.reason).length, 256, 'a long reason is cut');
    const big = await fetch(`${sidecar.debugUrl}/debug/requests?limit=${HISTORY}`);
    assert.ok(Number((await big.arrayBuffer()).byteLength) <= HISTORY * MAX_ENTRY_BYTES + 64);
  } finally {
    await agent.close();
    await sidecar.close();
    await upstream.close();
  }
});
