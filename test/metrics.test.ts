import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminApp } from '../src/routes/admin.ts';
import { createMetrics } from '../src/metrics.ts';
import { startUpstream } from './helpers/upstream.ts';
import { startTestSidecar } from './helpers/sidecar.ts';

test('admin app: healthz, readyz both ways, metrics content type, nothing else', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  let ready = true;
  const app = createAdminApp({ registry: metrics.registry, readiness: () => ({ ready, reasons: ready ? [] : ['draining'] }) });
  assert.equal((await app.request('/healthz')).status, 200);
  assert.equal((await app.request('/readyz')).status, 200);
  ready = false;
  const notReady = await app.request('/readyz');
  assert.equal(notReady.status, 503);
  assert.deepEqual(await notReady.json(), { status: 'not_ready', reasons: ['draining'] });
  const m = await app.request('/metrics');
  assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(await m.text(), /firstops_build_info\{version="\d+\.\d+\.\d+",node_version="v24\./);
  assert.equal((await app.request('/llm/openai/v1/models')).status, 404);
  assert.equal((await app.request('/mcp/x')).status, 404);
});

test('live /metrics passes promtool check metrics and keeps labels bounded', async () => {
  const promtool = spawnSync('promtool', ['--version']);
  assert.equal(promtool.error, undefined, 'promtool is required (Debian package prometheus; .ci/setup-host.sh installs it)');
  const upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-p-'));
  await writeFile(join(dir, 'p.yaml'), 'rules: []');
  const sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml'), FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m"}' });
  for (let i = 0; i < 20; i++) await fetch(`${sidecar.url}/llm/random-${i}/v1/x`);
  await fetch(`${sidecar.url}/llm/openai/v1/x`, { method: 'FROBNICATE' as 'GET' }).catch(() => undefined);
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text });
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  assert.ok(!/random-\d/.test(text), 'unknown providers do not become label values');
  assert.match(text, /firstops_requests_total\{route="llm",provider="unknown",method="GET",status="502"\} 20/);
  for (const name of ['firstops_requests_total', 'firstops_request_duration_seconds', 'firstops_policy_decisions_total', 'firstops_policy_evaluation_duration_seconds', 'firstops_inflight_requests', 'firstops_build_info', 'firstops_upstream_errors_total', 'firstops_identity_loaded', 'firstops_dpop_nonce_retries_total', 'firstops_streams_active']) {
    assert.match(text, new RegExp(`# TYPE ${name} `), name);
  }
  await sidecar.close();
  await upstream.close();
});
