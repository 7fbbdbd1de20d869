import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream } from '../helpers/upstream.ts';
import { startTestSidecar } from '../helpers/sidecar.ts';

const rule = (model: string): string => `rules:\n  - id: block-${model}\n    match: { input: { model: ${model} } }\n    decision: deny\n    reason: no ${model}\n`;

/** Write + rename, as editors and config tools do: the poller never reads a half-written file. */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

test('the policy file is reloaded on change; an invalid or removed file keeps the rules in force', async (t) => {
  const upstream = await startUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'fo-policy-reload-'));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, rule('alpha'));
  const sidecar = await startTestSidecar({ FIRSTOPS_POLICY_FILE: file, FIRSTOPS_UPSTREAM_OPENAI: upstream.url });
  // A failed assertion must not leave the listeners up (the file would never exit).
  let closed = false;
  t.after(async () => {
    if (!closed) await sidecar.sidecar.drain();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });
  const status = async (model: string): Promise<number> =>
    (await fetch(`${sidecar.url}/llm/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model }) })).status;

  assert.equal(await status('alpha'), 403);
  assert.equal(await status('beta'), 200);

  let since = sidecar.logs.lines.length;
  await replace(file, rule('beta'));
  await sidecar.logs.waitFor('local policy reloaded', since);
  assert.equal(await status('alpha'), 200);
  assert.equal(await status('beta'), 403);

  since = sidecar.logs.lines.length;
  await replace(file, 'rules: [{ id: x, decision: sometimes }]');
  const rejected = await sidecar.logs.waitFor('policy file rejected; keeping the rules in force', since);
  assert.match(String((rejected.err as { message: string }).message), /decision/);
  assert.equal(await status('beta'), 403, 'the last good rules still apply');

  since = sidecar.logs.lines.length;
  await rm(file);
  await sidecar.logs.waitFor('policy file rejected; keeping the rules in force', since);
  assert.equal(await status('beta'), 403);
  assert.equal(await sidecar.metricValue('firstops_policy_reloads_total', { result: 'failure' }), 2);
  assert.equal(await sidecar.metricValue('firstops_policy_reloads_total', { result: 'success' }), 1);

  closed = true;
  await sidecar.close();
});
