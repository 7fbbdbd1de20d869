import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startUpstream, sendJson, chatCompletion } from '../helpers/upstream.ts';
import { startTestSidecar } from '../helpers/sidecar.ts';

const CHROMIUM = '/usr/bin/chromium';
/** Headless, no sandbox (root in CI), and nothing that would reach beyond the loopback. */
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

test('the debug page in a real browser: a deny appears in the live table, dry runs of a request and of a streamed answer from the form', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package (.ci/setup-host.sh does, as root)`);
  const upstream = await startUpstream((_req, res) => sendJson(res, 200, chatCompletion()));
  const dir = await mkdtemp(join(tmpdir(), 'fo-debug-browser-'));
  await writeFile(join(dir, 'policy.yaml'), [
    'rules:\n  - id: no-preview\n    match: { input: { model: "*-preview" } }\n    decision: deny\n    reason: preview models are not approved\n',
    'responses:\n  - id: no-rm\n    match: { tool_name: "*shell*", arguments: { command: "*rm -rf*" } }\n    decision: deny\n    reason: no recursive deletes\n',
  ].join(''));
  const sidecar = await startTestSidecar({ FIRSTOPS_UPSTREAM_OPENAI: upstream.url, FIRSTOPS_POLICY_FILE: join(dir, 'policy.yaml') });
  // A fresh profile per run: launchPersistentContext is how playwright takes --user-data-dir.
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
  const failures: string[] = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => failures.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') failures.push(`console: ${msg.text()}`);
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(sidecar.debugUrl)) failures.push(`request beyond the debug listener: ${req.url()}`);
    });
    await page.goto(`${sidecar.debugUrl}/`);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();

    const denied = await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-5-preview', messages: [] }),
    });
    assert.equal(denied.status, 403);
    await denied.arrayBuffer();
    const row = page.locator('#rows tr.deny').first();
    await row.waitFor();
    assert.equal(await row.locator('td.policy_id').textContent(), 'no-preview');
    assert.equal(await row.locator('td.reason').textContent(), 'preview models are not approved');
    assert.equal(await row.locator('td.status').textContent(), '403');

    await page.locator('#config', { hasText: 'no-preview' }).waitFor();

    // An unedited sample follows the mode.
    const requestSample = await page.inputValue('#dry-body');
    await page.selectOption('#dry-mode', 'response');
    assert.match(await page.inputValue('#dry-body'), /^\{"choices":/);
    await page.selectOption('#dry-mode', 'request');
    assert.equal(await page.inputValue('#dry-body'), requestSample);

    await page.fill('#dry-path', '/llm/openai/v1/chat/completions');
    await page.fill('#dry-body', '{"model":"o9-preview"}');
    await page.click('#dry-submit');
    await page.locator('#dry-decision', { hasText: 'deny' }).waitFor();
    const result = JSON.parse((await page.locator('#dry-result').textContent()) ?? '{}');
    assert.equal(result.policy_id, 'no-preview');
    assert.equal(result.source, 'local');
    assert.equal(result.phase, 'request');

    // Response mode: the path sample follows the mode; the edited text stays, and is replaced by a streamed run_shell call.
    await page.selectOption('#dry-mode', 'response_stream');
    assert.equal(await page.inputValue('#dry-path'), '/llm/anthropic/v1/messages', 'the sample path follows the mode');
    assert.equal(await page.inputValue('#dry-body'), '{"model":"o9-preview"}', 'edited text is kept');
    const event = (type: string, body: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...body })}\n\n`;
    await page.fill('#dry-body', [
      event('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: 'run_shell', input: {} } }),
      event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify({ command: 'rm -rf /srv' }) } }),
      event('content_block_stop', { index: 0 }),
      event('message_stop', {}),
    ].join(''));
    await page.click('#dry-submit');
    await page.locator('#dry-decision', { hasText: 'deny' }).waitFor();
    const judged = JSON.parse((await page.locator('#dry-result').textContent()) ?? '{}');
    assert.equal(judged.phase, 'response');
    assert.equal(judged.policy_id, 'no-rm');
    assert.deepEqual(judged.tool_calls, [{ id: 'toolu_1', name: 'run_shell' }]);
    assert.match(judged.error_event, /^event: error\n/);
    assert.ok(!JSON.stringify(judged).includes('/srv'), 'no argument value in the answer');

    await page.selectOption('#level', 'warn');
    await page.click('#level-form button');
    await page.locator('#level-state', { hasText: 'warn until' }).waitFor();
    assert.deepEqual(failures, []);
  } finally {
    await context.close();
    await sidecar.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
});
