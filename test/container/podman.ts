// What the container tests share: running podman (and other tools) without
// blocking the in-process fakes, the check that podman can run here, a free
// host port, and the sidecar memory limit the chart sets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;

export interface Result { code: number; stdout: string; stderr: string }

/** Async so the in-process fakes keep answering while podman runs. */
export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === 127 ? err.message : '') });
    });
  });
}

export async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}\n${(r.stderr || r.stdout).slice(-4000)}`);
  return r.stdout;
}

/** podman 4.3 without systemd logs healthcheck-timer errors; they are noise here. */
export const quiet = (s: string): string => s.split('\n').filter((l) => !l.includes('systemd')).join('\n');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Fails (never skips) with what to do when podman is missing or cannot run here. */
export async function podmanUsable(): Promise<void> {
  const v = await run('podman', ['--version']);
  assert.equal(v.code, 0,
    'podman is not installed or not runnable: the container test needs podman (+ buildah, runc, busybox-static) — ' +
    `run .ci/setup-container.sh as root. (${v.stderr.trim()})`);
  const info = await run('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}']);
  assert.equal(info.code, 0, `podman is installed but cannot run here (podman info failed): ${quiet(info.stderr).slice(-2000)}`);
  assert.equal(process.getuid?.(), 0, 'the container test runs podman as root (the identity files are chowned to 65532); run it as root');
}

/** The sidecar memory limit the chart gives every injected pod: podman's --memory value (bytes), bytes, and as written. */
export function chartMemoryLimit(): { podman: string; bytes: number; text: string } {
  const values = parseYaml(readFileSync(join(ROOT, 'helm/firstops-sidecar/values.yaml'), 'utf8')) as {
    sidecar: { resources: { limits: { memory: string | number } } };
  };
  const text = String(values.sidecar.resources.limits.memory);
  // Kubernetes quantities: binary (Ki, Mi, Gi) and decimal (k, M, G) suffixes, or plain bytes.
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(text);
  assert.ok(m, `sidecar.resources.limits.memory ${text}: expected a Kubernetes memory quantity such as 256Mi`);
  const unit = { Ki: 1024, Mi: MiB, Gi: 1024 * MiB, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  const bytes = Number(m[1]) * unit;
  return { podman: String(bytes), bytes, text };
}
