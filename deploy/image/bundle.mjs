// Bundles the compiled dist/main.js (tsc output) and its production
// dependencies into one ESM file for the runtime image, and writes the
// license notices of every package that went into it.
//
//   node deploy/image/bundle.mjs <outdir>     (run after `npm run build`)
//
// Output: <outdir>/dist/main.js, <outdir>/package.json (type: module),
// <outdir>/THIRD_PARTY_NOTICES.txt
//
// Why a bundle and not a pruned node_modules: measured on the same Node 24
// (deploy/README.md, "Image"), the bundle reached /readyz ~70 ms sooner
// (≈180 vs ≈250 ms median), ran the HEALTHCHECK command in ≈110 vs ≈190 ms,
// and is 2 MB instead of 19 MB. The entry file stays dist/main.js, so
// `node dist/main.js [serve|check|healthcheck|injector]` works unchanged;
// the injector is a dynamic import and is bundled into the same file.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const out = resolve(process.argv[2] ?? 'bundle');
mkdirSync(join(out, 'dist'), { recursive: true });

const result = await build({
  entryPoints: ['dist/main.js'],
  outfile: join(out, 'dist/main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  // Function and class names stay as written, so stack traces and pino's
  // error serialisation remain readable.
  keepNames: true,
  minifySyntax: true,
  legalComments: 'none', // collected into THIRD_PARTY_NOTICES.txt instead
  metafile: true,
  logLevel: 'warning',
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

const sections = [...packages].sort().map((dir) => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort() : [];
  const texts = files.map((f) => readFileSync(join(dir, f), 'utf8').trim());
  const license = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? 'UNKNOWN');
  return `${pkg.name}@${pkg.version} (${license})\n\n${texts.join('\n\n') || '(no license file shipped in the package)'}`;
});
writeFileSync(
  join(out, 'THIRD_PARTY_NOTICES.txt'),
  `Third-party software bundled into dist/main.js of firstops-sidecar.\n\n${sections.join(`\n\n${'-'.repeat(72)}\n\n`)}\n`,
);
// The runtime needs package.json only for "type": "module" (dist/main.js is
// ESM); ship a minimal one rather than the development manifest.
const app = JSON.parse(readFileSync('package.json', 'utf8'));
writeFileSync(
  join(out, 'package.json'),
  `${JSON.stringify({ name: app.name, version: app.version, license: app.license, type: 'module', private: true, main: 'dist/main.js' }, null, 2)}\n`,
);
console.log(`bundle: ${join(out, 'dist/main.js')} from ${packages.size} packages`);
