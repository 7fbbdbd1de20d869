import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminHandler } from '../src/routes/admin.ts';
import { createMetrics } from '../src/metrics.ts';
import { startUpstream } from './helpers/upstream.ts';
import { portsOf, runSidecar } from './helpers/process.ts';
import { startTestSidecar } from './helpers/sidecar.ts';

test('admin listener: healthz, readyz both ways, metrics content type, nothing else', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false });
  let ready = true;
  const server = createServer(createAdminHandler({ registry: metrics.registry, readiness: () => ({ ready, reasons: ready ? [] : ['draining'] }) }));
  const { port } = await new Promise<AddressInfo>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address() as AddressInfo)));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const get = (path: string, method = 'GET') => fetch(`http://127.0.0.1:${port}${path}`, { method });
  const health = await get('/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.headers.get('content-type'), 'application/json');
  assert.deepEqual(await health.json(), { status: 'ok' });
  assert.equal((await get('/readyz?verbose')).status, 200, 'a query does not change the route');
  const head = await get('/healthz', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  ready = false;
  const notReady = await get('/readyz');
  assert.equal(notReady.status, 503);
  assert.deepEqual(await notReady.json(), { status: 'not_ready', reasons: ['draining'] });
  const m = await get('/metrics');
  assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(await m.text(), /firstops_build_info\{version="\d+\.\d+\.\d+",node_version="v24\./);
  for (const [path, method] of [['/llm/openai/v1/models', 'GET'], ['/mcp/x', 'GET'], ['/healthz', 'POST'], ['/metrics', 'DELETE'], ['/', 'GET']] as const) {
    const res = await get(path, method);
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
  }
});

test('admin listener: a failing registry is a JSON 500, not a crash', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const registry = Object.assign(Object.create(metrics.registry) as typeof metrics.registry, { metrics: () => Promise.reject(new Error('collector failed')) });
  const server = createServer(createAdminHandler({ registry, readiness: () => ({ ready: true, reasons: [] }) }));
  const { port } = await new Promise<AddressInfo>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address() as AddressInfo)));
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: { code: 'internal', message: 'internal error' } });
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the listener still answers');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Every line promtool prints about a page (stdout and stderr), with its exit status: a clean page has neither. */
function promtoolComplaints(page: string): { status: number | null; lines: string[] } {
  const check = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
  assert.equal(check.error, undefined, 'promtool is required (Debian package prometheus; .ci/setup-host.sh installs it)');
  const lines = `${check.stdout}\n${check.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return { status: check.status, lines };
}

test('the promtool check itself reports a misnamed gauge (so a clean result means something)', () => {
  const bad = promtoolComplaints('# HELP x_total a gauge\n# TYPE x_total gauge\nx_total 1\n');
  assert.ok(bad.lines.some((l) => l.includes('x_total')), bad.lines.join('\n'));
  assert.deepEqual(promtoolComplaints('# HELP x_seconds a gauge\n# TYPE x_seconds gauge\nx_seconds 1\n'), { status: 0, lines: [] });
});

test('live /metrics of a real sidecar process (default collectors on) draws no promtool complaint, labels stay bounded', async () => {
  const upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-p-'));
  await writeFile(join(dir, 'p.yaml'), 'rules: []');
  const child = runSidecar([], {
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_IDENTITY_DIR: join(dir, 'no-identity'),
    FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_DRAIN_TIMEOUT_MS: '2000',
  });
  try {
    const ports = portsOf(await child.waitFor('firstops-sidecar listening'));
    const url = `http://127.0.0.1:${ports.proxy}`;
    await fetch(`${url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m"}' });
    for (let i = 0; i < 20; i++) await fetch(`${url}/llm/random-${i}/v1/x`);
    await fetch(`${url}/llm/openai/v1/x`, { method: 'FROBNICATE' as 'GET' }).catch(() => undefined);
    const text = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
    assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m, 'the default collectors are on, as in production');
    assert.match(text, /^gen_ai_client_token_usage_sum\{.*gen_ai_token_type="output"\} 7$/m, 'the GenAI histograms are on the page');
    assert.deepEqual(promtoolComplaints(text), { status: 0, lines: [] });
    assert.ok(!/random-\d/.test(text), 'unknown providers do not become label values');
    assert.match(text, /firstops_requests_total\{route="llm",provider="unknown",method="GET",status="502"\} 20/);
    for (const name of ['firstops_requests_total', 'firstops_request_duration_seconds', 'firstops_policy_decisions_total', 'firstops_policy_evaluation_duration_seconds', 'firstops_inflight_requests', 'firstops_build_info', 'firstops_upstream_errors_total', 'firstops_identity_loaded', 'firstops_dpop_nonce_retries_total', 'firstops_streams_active']) {
      assert.match(text, new RegExp(`# TYPE ${name} `), name);
    }
  } finally {
    child.child.kill('SIGTERM');
    await child.exit();
    await upstream.close();
  }
});

test('firstops_ready follows /readyz: 1 once listening, 0 from the start of a drain', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fo-r-'));
  await writeFile(join(dir, 'p.yaml'), 'rules: []');
  const sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: join(dir, 'p.yaml') });
  assert.equal((await fetch(`${sidecar.adminUrl}/readyz`)).status, 200);
  assert.equal(await sidecar.metricValue('firstops_ready'), 1);
  const drained = sidecar.close();
  assert.equal(await sidecar.metricValue('firstops_ready'), 0);
  await drained;
});

test('lean series write what prom-client\'s own calls write, through reset and remove (issue 21)', async () => {
  const api = createMetrics({ defaultMetrics: false });
  const lean = createMetrics({ defaultMetrics: false });
  const run = (step: (m: ReturnType<typeof createMetrics>, viaLean: boolean) => void): void => {
    step(api, false);
    step(lean, true);
  };
  const ops = (m: ReturnType<typeof createMetrics>, viaLean: boolean, n: number): void => {
    for (let i = 0; i < n; i++) {
      const status = i % 3 === 0 ? '200' : '403';
      const seconds = [0.0001, 0.0007, 0.02, 4, 400, 0.001][i % 6]!;
      if (viaLean) {
        m.lean.inflight.at('llm').inc();
        m.lean.requests.at('llm', 'openai', 'POST', status).inc();
        m.lean.requestDuration.at('llm', 'openai').observe(seconds);
        m.lean.decisions.at('local', 'allow', 'request').inc();
        m.lean.policyDuration.at('remote').observe(seconds / 10);
        m.lean.streamsActive.at('llm').inc();
        m.lean.streamDuration.at('llm').observe(seconds);
        m.lean.streamsActive.at('llm').dec();
        if (i % 2) m.lean.inflight.at('llm').dec();
      } else {
        m.inflight.inc({ route: 'llm' });
        m.requests.inc({ route: 'llm', provider: 'openai', method: 'POST', status });
        m.requestDuration.observe({ route: 'llm', provider: 'openai' }, seconds);
        m.decisions.inc({ source: 'local', outcome: 'allow', phase: 'request' });
        m.policyDuration.observe({ source: 'remote' }, seconds / 10);
        m.streamsActive.inc({ route: 'llm' });
        m.streamDuration.observe({ route: 'llm' }, seconds);
        m.streamsActive.dec({ route: 'llm' });
        if (i % 2) m.inflight.dec({ route: 'llm' });
      }
    }
  };
  run((m, viaLean) => ops(m, viaLean, 25));
  assert.equal(await lean.registry.metrics(), await api.registry.metrics());
  run((m) => {
    m.requests.reset();
    m.requestDuration.remove({ route: 'llm', provider: 'openai' });
  });
  run((m, viaLean) => ops(m, viaLean, 7));
  const page = await lean.registry.metrics();
  assert.equal(page, await api.registry.metrics());
  assert.match(page, /firstops_requests_total\{route="llm",provider="openai",method="POST",status="403"\} 4/);
  assert.match(page, /firstops_request_duration_seconds_count\{route="llm",provider="openai"\} 7/);
});
