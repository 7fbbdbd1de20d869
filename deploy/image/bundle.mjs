// Bundles the compiled dist/main.js (tsc output) and its production
// dependencies into one ESM file for the runtime image, the policy worker
// thread's entry into a second one, copies the runtime files of the one
// native dependency (re2) beside them, and writes the license notices of
// every package that went into the image.
//
//   node deploy/image/bundle.mjs <outdir>     (run after `npm run build`)
//
// Output: <outdir>/dist/main.js, <outdir>/dist/worker.js (when
// dist/policy/worker.js exists), <outdir>/node_modules/re2/, <outdir>/package.json
// (type: module), <outdir>/THIRD_PARTY_NOTICES.txt
//
// Why a bundle and not a pruned node_modules: measured on the same Node 24
// (deploy/README.md, "Image"), the bundle reached /readyz ~70 ms sooner
// (≈180 vs ≈250 ms median), ran the HEALTHCHECK command in ≈110 vs ≈190 ms,
// and is 2 MB instead of 19 MB. The entry file stays dist/main.js, so
// `node dist/main.js [serve|check|healthcheck|injector]` works unchanged;
// the injector is a dynamic import and is bundled into the same file.
//
// The policy worker pool (src/policy/pool.ts) starts workers from
// new URL('./worker.js', import.meta.url): in the bundle that module is
// dist/main.js, so the worker entry is bundled to dist/worker.js beside it.
// re2 is a node-gyp addon (build/Release/re2.node) and cannot be bundled:
// it stays an external import, resolved from /app/node_modules/re2.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const out = resolve(process.argv[2] ?? 'bundle');
mkdirSync(join(out, 'dist'), { recursive: true });

const WORKER = 'dist/policy/worker.js';
const NATIVE = ['re2'];
// What re2 needs at run time (re2.js requires ./build/Release/re2.node and
// nothing else); its C++ sources, vendored RE2/Abseil and build tree stay behind.
const RE2_RUNTIME_FILES = ['package.json', 're2.js', 'LICENSE', 'build/Release/re2.node'];
// Licenses of code compiled into re2.node besides re2's own.
const RE2_COMPILED_IN = [
  { name: 'RE2 (vendored in re2: vendor/re2)', dir: 'node_modules/re2/vendor/re2', license: 'BSD-3-Clause' },
  { name: 'Abseil (vendored in re2: vendor/abseil-cpp)', dir: 'node_modules/re2/vendor/abseil-cpp', license: 'Apache-2.0' },
  { name: 'nan (C++ headers compiled into re2.node)', dir: 'node_modules/nan' },
];

/**
 * `node:http` as its CommonJS object rather than an ESM import. An ESM
 * import builds the module's namespace, which reads every export, and
 * `http.WebSocket`, `CloseEvent` and `MessageEvent` are lazy getters that
 * load Node's bundled undici: about 3 MB of idle memory the sidecar never
 * uses (it runs npm undici; docs/performance.md, "Fifth round"). No other
 * built-in's namespace loads it (checked on Node 24 for http, https, net,
 * stream, zlib, crypto, worker_threads, fs, events). esbuild reads the named
 * imports of a CommonJS module through getters, at use.
 */
const httpByRequire = {
  name: 'node-http-by-require',
  setup(b) {
    b.onResolve({ filter: /^node:http$/ }, (args) => ({ path: args.path, namespace: 'node-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: { main: 'dist/main.js', ...(existsSync(WORKER) ? { worker: WORKER } : {}) },
  outdir: join(out, 'dist'),
  bundle: true,
  external: NATIVE,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  // No keepNames: it wraps every function and class, closures made per
  // request included, in a defineProperty of its name, which cost ~40 us of
  // CPU per request (152 against 112 us, docs/performance.md, "Fourth
  // round"). Identifiers are not minified, so stack traces keep the names
  // as written (a name two modules share gets a numeric suffix), and the
  // sidecar's errors set their `name` themselves.
  keepNames: false,
  minifySyntax: true,
  legalComments: 'none', // collected into THIRD_PARTY_NOTICES.txt instead
  metafile: true,
  logLevel: 'warning',
  plugins: [httpByRequire],
  // CommonJS dependencies (pino, prom-client) call require() for Node
  // built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __firstopsCreateRequire } from 'node:module';\n" +
      'const require = __firstopsCreateRequire(import.meta.url);',
  },
});

// Every package that contributed code, by its node_modules directory.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^(.*?node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) packages.add(m[1]);
}
if (packages.size === 0) throw new Error('bundle contains no dependency: was dist/ built?');

// The native package, copied file by file (never bundled).
const re2Out = join(out, 'node_modules/re2');
rmSync(re2Out, { recursive: true, force: true });
for (const file of RE2_RUNTIME_FILES) {
  const from = join('node_modules/re2', file);
  if (!existsSync(from)) throw new Error(`${from} missing: was re2 built (npm rebuild re2)?`);
  mkdirSync(dirname(join(re2Out, file)), { recursive: true });
  copyFileSync(from, join(re2Out, file));
}

function licenseTexts(dir) {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort() : [];
  return files.map((f) => readFileSync(join(dir, f), 'utf8').trim()).join('\n\n') || '(no license file shipped in the package)';
}
function packageJson(dir) {
  return existsSync(join(dir, 'package.json')) ? JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) : undefined;
}
const sections = [...packages, ...NATIVE.map((n) => `node_modules/${n}`)].sort().map((dir) => {
  const pkg = packageJson(dir);
  const license = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? 'UNKNOWN');
  return `${pkg.name}@${pkg.version} (${license})\n\n${licenseTexts(dir)}`;
});
for (const c of RE2_COMPILED_IN) {
  const pkg = packageJson(c.dir);
  const name = pkg ? `${c.name}: ${pkg.name}@${pkg.version}` : c.name;
  sections.push(`${name} (${c.license ?? pkg?.license ?? 'UNKNOWN'})\n\n${licenseTexts(c.dir)}`);
}
writeFileSync(
  join(out, 'THIRD_PARTY_NOTICES.txt'),
  'Third-party software in this image: bundled into dist/main.js and dist/worker.js, and the native\n' +
    `re2 addon in node_modules/re2 (with the RE2, Abseil and nan code compiled into re2.node).\n\n${sections.join(`\n\n${'-'.repeat(72)}\n\n`)}\n`,
);
// The runtime needs package.json only for "type": "module" (dist/main.js is
// ESM); ship a minimal one rather than the development manifest.
const app = JSON.parse(readFileSync('package.json', 'utf8'));
writeFileSync(
  join(out, 'package.json'),
  `${JSON.stringify({ name: app.name, version: app.version, license: app.license, type: 'module', private: true, main: 'dist/main.js' }, null, 2)}\n`,
);
console.log(`bundle: ${Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).join(', ')} from ${packages.size} packages; native: ${NATIVE.join(', ')}`);
