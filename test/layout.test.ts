// The layout of src/ (issue 23, docs/architecture.md): every module belongs to
// a room (a folder, or one of the root files), rooms have levels, and imports
// run one way: from a room to a lower level, or within a room. No cycle
// between modules either. Read from the import statements themselves, type-only
// and dynamic imports included, so a shortcut cannot hide in a type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const SRC = new URL('../src/', import.meta.url).pathname;

/** Higher imports lower; a room never imports a room of its own level or above. Keep in step with docs/architecture.md. */
export const LEVELS: Readonly<Record<string, number>> = {
  main: 9,
  cli: 8,
  server: 8,
  routes: 7,
  debug: 7,
  injector: 7,
  response: 6,
  usage: 5,
  policy: 5,
  config: 4,
  identity: 3,
  http: 3,
  egress: 2,
  memory: 1,
  json: 1,
  errors: 0,
  log: 0,
  metrics: 0,
};

const IMPORT = /(?:^|[\s;])(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []);
}

/** `policy` for src/policy/chain.ts, `config` for src/config.ts. */
export function roomOf(file: string): string {
  const rel = relative(SRC, file);
  const slash = rel.indexOf('/');
  return slash === -1 ? rel.replace(/\.[^.]+$/, '') : rel.slice(0, slash);
}

/** Each module's relative imports, resolved to files under src/ (a `.js` specifier names its `.ts` source). */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    const targets: string[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      targets.push(normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts'));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Every cycle's members, as paths relative to src/ (empty when the graph is acyclic). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') found.push(stack.slice(stack.indexOf(next)).map((f) => relative(SRC, f)));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

const files = sourceFiles(SRC);
const graph = importGraph(files);

test('every src/ module belongs to a room with a level', () => {
  const unknown = [...new Set(files.map(roomOf))].filter((room) => !(room in LEVELS));
  assert.deepEqual(unknown, [], 'a new folder or root file gets a level here and a line in docs/architecture.md');
});

test('every relative import names a file that exists', () => {
  const known = new Set(files);
  const missing = [...graph].flatMap(([from, targets]) =>
    targets.filter((t) => t.endsWith('.ts') && !known.has(t)).map((t) => `${relative(SRC, from)} -> ${relative(SRC, t)}`));
  assert.deepEqual(missing, []);
});

test('imports run one way: to a lower level, or within the room', () => {
  const upward: string[] = [];
  for (const [from, targets] of graph) {
    const room = roomOf(from);
    for (const target of targets) {
      const other = roomOf(target);
      if (other === room) continue;
      if (LEVELS[other]! >= LEVELS[room]!) upward.push(`${relative(SRC, from)} (${room}, ${LEVELS[room]}) -> ${relative(SRC, target)} (${other}, ${LEVELS[other]})`);
    }
  }
  assert.deepEqual(upward, []);
});

test('no import cycle between modules', () => {
  assert.deepEqual(cycles(graph), []);
});

test('the checks see what they are meant to see', () => {
  // A known upward import and a known cycle, built in memory: the checks would fail on them.
  const a = join(SRC, 'log.ts');
  const b = join(SRC, 'server.ts');
  assert.deepEqual(cycles(new Map([[a, [b]], [b, [a]]])).length, 1);
  assert.ok(LEVELS[roomOf(b)]! > LEVELS[roomOf(a)]!, 'server sits above log');
  assert.ok((graph.get(join(SRC, 'main.ts')) ?? []).includes(join(SRC, 'server.ts')), 'main.ts imports server.ts, as read');
  assert.ok(graph.size > 100, `read ${graph.size} modules`);
});
