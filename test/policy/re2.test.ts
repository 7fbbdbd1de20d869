import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { nativeProblem } from '../../src/cli.ts';
import { MAIN, NODE } from '../helpers/process.ts';

// The native re2 addon (node-gyp) must be built for the project's Node, not
// for the Node npm ran under (scripts/ensure-re2.mjs, .npmrc): this file runs
// under the project's node, so these fail when the install built it wrongly.
const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;

test('the native binding loads under the project node (the ABI npm built it for)', () => {
  assert.equal(nativeProblem(), undefined);
  assert.equal(process.versions.node.split('.')[0], '24');
});

test('the binding loads in a worker thread too (the policy pool runs there)', async () => {
  const worker = new Worker(
    "const RE2 = require('re2'); require('node:worker_threads').parentPort.postMessage(new RE2('b+').exec('abbbc')[0]);",
    { eval: true },
  );
  const message = await new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  assert.equal(message, 'bbb');
  await worker.terminate();
});

/** Runs dist/main.js with `re2` resolved to a file that is not a shared object (a real dlopen failure). */
function runWithBrokenRe2(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'firstops-re2-'));
  const bad = join(dir, 're2.node');
  writeFileSync(bad, 'not a shared object\n'.repeat(256));
  const hook = join(dir, 'hook.mjs');
  writeFileSync(hook, `import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
registerHooks({ resolve: (specifier, context, next) =>
  specifier === 're2' ? { url: pathToFileURL(${JSON.stringify(bad)}).href, shortCircuit: true } : next(specifier, context) });
`);
  return new Promise((resolve) => {
    execFile(NODE, ['--import', hook, MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

const ENV = { FIRSTOPS_IDENTITY_DIR: '/nonexistent/identity', FIRSTOPS_POLICY_FILE: POLICY, FIRSTOPS_PORT: '0', FIRSTOPS_ADMIN_PORT: '0' };

test('`check` reports a binding that cannot load as its one problem', async () => {
  const r = await runWithBrokenRe2(['check'], ENV);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as { problems: string[]; policy?: unknown };
  assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
  assert.match(report.problems[0] ?? '', /^the native module re2 failed to load \(.*re2\.node: invalid ELF header\); it must be built for this Node \(v24\.[\d.]+\): run npm rebuild re2$/);
  assert.equal(report.policy, undefined);
});

test('startup refuses to serve without the binding: one line, exit 2', async () => {
  const r = await runWithBrokenRe2([], ENV);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] ?? '', /^firstops-sidecar: the native module re2 failed to load \(.*\): run npm rebuild re2$/);
  assert.equal(r.stdout, '', 'nothing listened, nothing logged');
});
