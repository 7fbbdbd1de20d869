// Builds the sidecar image from the real Dockerfile on the stand-in bases
// (standin-bases.sh), once for every test file that needs it: the build runs
// under an flock, so a second caller (image.test.ts and compose.test.ts run
// in parallel) waits and then gets every layer from podman's cache. The build
// arguments are deterministic (CREATED is the commit time), so the cached
// build yields the same image. Callers use the returned image ID, which no
// concurrent build elsewhere on the machine can re-point the way it can a tag.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('./', import.meta.url));
const LOCK = join(tmpdir(), 'firstops-sidecar-image.lock');
export const SIDECAR_TAG = 'localhost/firstops-sidecar:container-test';

export interface SidecarImage {
  /** Image ID (sha256:...) of the build. */
  readonly id: string;
  readonly tag: string;
  readonly runtimeBase: string;
  readonly builderBase: string;
  readonly version: string;
  readonly basesMs: number;
  readonly buildMs: number;
}

function exec(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20, env: env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed (${String(err.code ?? err.message)}):\n${String(stderr || stdout).slice(-4000)}`));
      else resolve(String(stdout));
    });
  });
}

async function gitOr(args: string[], fallback: string): Promise<string> {
  try {
    return (await exec('git', args, 10_000, { ...process.env, TZ: 'UTC' })).trim() || fallback;
  } catch {
    return fallback;
  }
}

/** Needs node 24 as process.execPath (the stand-in bases copy it), root and podman. */
export async function buildSidecarImage(): Promise<SidecarImage> {
  const node = process.execPath;
  if (process.versions.node.split('.')[0] !== '24') {
    throw new Error(`the stand-in bases copy this node binary; it must be node 24 (is ${process.version})`);
  }
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const t0 = Date.now();
  const bases = await exec('flock', [LOCK, 'bash', join(HERE, 'standin-bases.sh'), node], 900_000);
  const runtimeBase = /^RUNTIME=(.+)$/m.exec(bases)?.[1];
  const builderBase = /^BUILDER=(.+)$/m.exec(bases)?.[1];
  if (!runtimeBase || !builderBase) throw new Error(`standin-bases.sh printed no image refs:\n${bases}`);
  const revision = await gitOr(['rev-parse', 'HEAD'], 'unknown');
  const created = await gitOr(['log', '-1', '--format=%cd', '--date=format-local:%Y-%m-%dT%H:%M:%SZ'], '1970-01-01T00:00:00Z');
  const t1 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'firstops-iid-'));
  try {
    const iidfile = join(dir, 'iid');
    // --format docker keeps HEALTHCHECK (OCI image config has no such field).
    // --network host: the build's npm ci reaches the registry the way the host does.
    await exec('flock', [LOCK,
      'podman', 'build', '--format', 'docker', '--network', 'host', '--file', 'Dockerfile',
      '--build-arg', `BUILDER_IMAGE=${builderBase}`,
      '--build-arg', `RUNTIME_IMAGE=${runtimeBase}`,
      '--build-arg', `VERSION=${version}`,
      '--build-arg', `REVISION=${revision}`,
      '--build-arg', `CREATED=${created}`,
      '--iidfile', iidfile,
      '--tag', SIDECAR_TAG, '.',
    ], 1_800_000);
    const id = readFileSync(iidfile, 'utf8').trim();
    return { id, tag: SIDECAR_TAG, runtimeBase, builderBase, version, basesMs: t1 - t0, buildMs: Date.now() - t1 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
