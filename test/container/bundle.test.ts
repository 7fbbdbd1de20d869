// The image's bundle (deploy/image/bundle.mjs) run as node runs it in the
// image, without podman: it must run on the npm undici alone. Node's own
// bundled undici (fetch, Request, Response, Headers) is about 3 MB of idle
// memory; three things loaded it in every sidecar until the fifth round of
// issue 21 (hono's adapter on the admin listener, the same on the debug
// listener, the bundle's ESM import of node:http). A probe preloaded into
// the process reports, on SIGUSR2, whether node has loaded it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portsOf, runSidecar } from '../helpers/process.ts';
import { startUpstream } from '../helpers/upstream.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

const PROBE = `process.on('SIGUSR2', () => {
  process.stderr.write('bundled-undici: ' + process.moduleLoadList.some((m) => m.endsWith('internal/deps/undici/undici')) + '\\n');
});
`;

test("the image bundle runs on npm undici alone: Node's bundled undici loads only once the debug page is used", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fo-bundle-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  execFileSync(process.execPath, [join(ROOT, 'deploy/image/bundle.mjs'), join(dir, 'image')], { cwd: ROOT, stdio: 'ignore' });
  const probe = join(dir, 'probe.cjs');
  await writeFile(probe, PROBE);
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const sidecar = runSidecar([], {
    NODE_ENV: 'production',
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_POLICY_FILE: join(ROOT, 'examples/policy.yaml'),
    FIRSTOPS_IDENTITY_DIR: join(dir, 'no-identity'),
    FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
  }, { main: join(dir, 'image/dist/main.js'), nodeArgs: ['--require', probe] });
  t.after(async () => {
    sidecar.child.kill('SIGTERM');
    await sidecar.exit();
  });
  const ports = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
  const loaded = async (): Promise<boolean> => {
    const answer = new Promise<string>((resolve) => {
      let text = '';
      const onData = (chunk: Buffer): void => {
        text += chunk.toString();
        const m = /bundled-undici: (true|false)\n/.exec(text);
        if (!m) return;
        sidecar.child.stderr!.off('data', onData);
        resolve(m[1]!);
      };
      sidecar.child.stderr!.on('data', onData);
    });
    sidecar.child.kill('SIGUSR2');
    return (await answer) === 'true';
  };

  // Probes, a scrape and a governed request: what every sidecar serves.
  const admin = `http://127.0.0.1:${ports.admin}`;
  assert.equal((await fetch(`${admin}/healthz`)).status, 200);
  assert.equal((await fetch(`${admin}/readyz`)).status, 200);
  assert.match(await (await fetch(`${admin}/metrics`)).text(), /^firstops_build_info\{/m);
  const chat = await fetch(`http://127.0.0.1:${ports.proxy}/llm/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(chat.status, 200);
  await chat.arrayBuffer();
  assert.equal(await loaded(), false, "Node's bundled undici was loaded by the proxy, admin or start-up path");

  // The debug page (hono) loads it on first use: the probe sees it, so the answer above means something.
  const debug = await fetch(`http://127.0.0.1:${ports.debug}/debug/requests`);
  assert.equal(debug.status, 200);
  await debug.arrayBuffer();
  assert.equal(await loaded(), true);
});
