/**
 * A real Prometheus (Debian's server) scrapes a real sidecar process carrying
 * real SDK traffic; the PromQL the docs promise is asked of it: tokens by
 * type, the request rate, every dashboard query, the README's cost example,
 * and the alert rules, loaded and evaluated. promtool checks and unit-tests
 * the rules file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { anthropicMessage, chatCompletion, sendJson, startUpstream, type FakeUpstream } from '../helpers/upstream.ts';
import { portsOf, runSidecar, type SidecarProcess } from '../helpers/process.ts';
import { startPrometheus, type TestPrometheus } from '../helpers/prometheus.ts';
import { openAiUsageStream, writeStream } from '../usage/fakes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RULES = join(ROOT, 'deploy/prometheus/rules.yaml');
const RULES_TEST = join(ROOT, 'deploy/prometheus/rules.test.yaml');
const DASHBOARD = join(ROOT, 'deploy/grafana/firstops-sidecar.json');
const KEY = 'sk-prom-test-0123456789';

let upstream: FakeUpstream;
let sidecar: SidecarProcess;
let prometheus: TestPrometheus;
let proxyUrl: string;

before(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url.endsWith('/v1/messages')) return sendJson(res, 200, anthropicMessage());
    if (JSON.parse(req.body.toString()).stream) return writeStream(res, openAiUsageStream(['a', 'b']));
    return sendJson(res, 200, chatCompletion());
  });
  const dir = await mkdtemp(join(tmpdir(), 'fo-prom-sidecar-'));
  await writeFile(join(dir, 'policy.yaml'), 'version: 1\nrules: []\n');
  sidecar = runSidecar([], {
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_IDENTITY_DIR: join(dir, 'no-identity'),
    FIRSTOPS_POLICY_FILE: join(dir, 'policy.yaml'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
    FIRSTOPS_UPSTREAM_ANTHROPIC: upstream.url,
    FIRSTOPS_DRAIN_TIMEOUT_MS: '2000',
  });
  const ports = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  proxyUrl = `http://127.0.0.1:${ports.proxy}`;
  prometheus = await startPrometheus({ targets: [`127.0.0.1:${ports.admin}`], ruleFiles: [RULES] });
});

after(async () => {
  await prometheus?.close();
  sidecar?.child.kill('SIGTERM');
  await sidecar?.exit();
  await upstream?.close();
});

/** One chat completion (5 in, 7 out), one stream with include_usage (21 in, 4 out), one Anthropic message (5 in, 7 out). */
async function traffic(): Promise<void> {
  const openai = new OpenAI({ apiKey: KEY, baseURL: `${proxyUrl}/llm/openai/v1`, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: KEY, baseURL: `${proxyUrl}/llm/anthropic`, maxRetries: 0 });
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
  for await (const _ of stream) { /* drain */ }
  await anthropic.messages.create({ model: 'claude-test', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
}

/** Resolves with `sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum)` once a scrape shows these totals. */
async function tokensScraped(input: number, output: number): Promise<Record<string, number>> {
  return prometheus.until(`tokens ${input}/${output}`, async () => {
    const answer = await prometheus.query('sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum)');
    assert.equal(answer.status, 'success', answer.error);
    const byType = Object.fromEntries(answer.data.result.map((s) => [s.metric.gen_ai_token_type, Number(s.value[1])]));
    return byType.input === input && byType.output === output ? byType : undefined;
  });
}

const value = async (promql: string): Promise<number | undefined> => {
  const answer = await prometheus.query(promql);
  assert.equal(answer.status, 'success', `${promql}: ${answer.error}`);
  const first = answer.data.result[0];
  return first ? Number(first.value[1]) : undefined;
};

test('Prometheus scrapes token usage by type and a request rate from SDK traffic', async () => {
  await traffic();
  assert.deepEqual(await tokensScraped(31, 18), { input: 31, output: 18 });
  await traffic();
  assert.deepEqual(await tokensScraped(62, 36), { input: 62, output: 36 });
  await prometheus.until('six requests', async () => ((await value('sum(firstops_requests_total{route="llm",status="200"})')) === 6 ? true : undefined));
  const rate = await value('sum(rate(firstops_requests_total{route="llm"}[1m]))');
  assert.ok(rate !== undefined && rate > 0, `request rate ${rate}`);
  // Models and operations arrive as labels.
  const byModel = await prometheus.query('sum by (gen_ai_provider_name, gen_ai_request_model) (gen_ai_client_token_usage_sum)');
  const models = byModel.data.result.map((s) => `${s.metric.gen_ai_provider_name}/${s.metric.gen_ai_request_model}=${s.value[1]}`).sort();
  assert.deepEqual(models, ['anthropic/claude-test=24', 'openai/gpt-4o-mini=74']);
  assert.equal(await value('sum(gen_ai_client_operation_time_to_first_chunk_seconds_count)'), 2, 'one per stream');
  assert.equal(await value('sum(gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"})'), 6);
});

test('every dashboard query parses and runs against the scraped data', async () => {
  await tokensScraped(62, 36);
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
    uid: string; panels: Array<{ id: number; type: string; title: string; targets?: Array<{ expr: string }>; gridPos: object }>;
    templating: { list: Array<{ name: string; query: unknown }> };
  };
  assert.equal(dashboard.uid, 'firstops-sidecar');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const substitute = (expr: string): string => expr
    .replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$__interval', '15s')
    .replaceAll('${job}', '.*').replaceAll('$job', '.*');
  const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  assert.ok(queries.length >= 15, `${queries.length} queries`);
  for (const { panel, expr } of queries) {
    const answer = await prometheus.query(substitute(expr));
    assert.equal(answer.status, 'success', `${panel}: ${expr}: ${answer.error}`);
  }
  const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join('|');
  for (const topic of ['requests', 'errors', 'latency', 'policy decisions', 'fail-open', 'tokens', 'model', 'streams']) assert.ok(titles.includes(topic), topic);
  // Panels that should have data after the traffic do.
  const tokensPanel = queries.find((q) => q.panel === 'Tokens in range by model')!;
  assert.ok((await prometheus.query(substitute(tokensPanel.expr))).data.result.length > 0);
  // The job variable's label_values() is Grafana's: its metric is there, with a job label.
  const jobVar = JSON.stringify(dashboard.templating.list.find((v) => v.name === 'job')!.query);
  assert.match(jobVar, /label_values\(firstops_build_info, job\)/);
  assert.equal(await value('count by (job) (firstops_build_info)'), 1);
});

test("the README's PromQL examples parse and answer", async () => {
  await tokensScraped(62, 36);
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  assert.ok(blocks.length >= 1, 'README has a promql example');
  for (const block of blocks) {
    const answer = await prometheus.query(block);
    assert.equal(answer.status, 'success', `${block}: ${answer.error}`);
    assert.ok(answer.data.result.length > 0, `${block}: no data`);
  }
});

test('the alert rules load into Prometheus and evaluate without error', async () => {
  type Rules = { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> };
  const rules = await prometheus.until('rules evaluated', async () => {
    const answer = await prometheus.api<Rules>('rules');
    const all = answer.data.groups.flatMap((g) => g.rules);
    return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001-')) ? all : undefined;
  });
  assert.deepEqual(rules.map((r) => r.name).sort(), [
    'FirstOpsIdentityReloadFailing', 'FirstOpsLogLinesDropped', 'FirstOpsPolicyFailingClosed', 'FirstOpsPolicyFailingOpen',
    'FirstOpsPolicyUnavailable', 'FirstOpsSidecarNotReady', 'FirstOpsUpstreamErrorRatio',
  ]);
  for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
});

test('promtool: the rules check clean and their unit tests pass', () => {
  const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.deepEqual(`${check.stdout}${check.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean), [`Checking ${RULES}`, 'SUCCESS: 7 rules found']);
  const unit = spawnSync('promtool', ['test', 'rules', RULES_TEST], { encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout + unit.stderr, /SUCCESS/);
});
