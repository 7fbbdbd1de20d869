import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InFlight } from '../../src/http/in-flight.ts';

test('InFlight adds, removes (once), counts and iterates what is left, also while entries are removed', () => {
  const list = new InFlight<string>();
  const entries = ['a', 'b', 'c', 'd'].map((v) => list.add(v));
  assert.equal(list.size, 4);
  assert.deepEqual([...list].sort(), ['a', 'b', 'c', 'd']);
  list.remove(entries[1]!);
  list.remove(entries[1]!);
  assert.equal(list.size, 3, 'a second remove does nothing');
  list.remove(entries[3]!); // the head
  list.remove(entries[0]!); // the tail
  assert.deepEqual([...list], ['c']);
  const seen: string[] = [];
  const more = ['e', 'f'].map((v) => list.add(v));
  for (const v of list) {
    seen.push(v);
    list.remove(more[0]!);
  }
  assert.deepEqual(seen.sort(), ['c', 'f'].sort().filter((v) => seen.includes(v)));
  assert.equal(list.size, 2);
  for (const entry of [entries[2]!, more[1]!]) list.remove(entry);
  assert.equal(list.size, 0);
  assert.deepEqual([...list], []);
});

test('InFlight: removed values die in young-generation collections; with a Set tracking the same churn they do not (the control)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  /** Heap still taken after two scavenges by 3,200 values (~1 KB each), added and removed 64 at a time. */
  const keptAfterScavenges = (tracker: { add(v: object): unknown; remove(handle: unknown, v: object): void }): number => {
    // The tracker and everything else so far to the old generation, as in a long-running process.
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: 64 }, () => ({ payload: new Array(120).fill(round) }));
      const handles = values.map((v) => tracker.add(v));
      values.forEach((v, i) => tracker.remove(handles[i], v));
    }
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    return process.memoryUsage().heapUsed - before;
  };
  const list = new InFlight<object>();
  const set = new Set<object>();
  // Some entries stay, as long streams do.
  for (let i = 0; i < 8; i++) {
    list.add({ long: i });
    set.add({ long: i });
  }
  const viaSet = keptAfterScavenges({ add: (v) => set.add(v), remove: (_h, v) => set.delete(v) });
  const viaList = keptAfterScavenges({ add: (v) => list.add(v), remove: (h) => list.remove(h as ReturnType<typeof list.add>) });
  assert.ok(viaSet > 1_000_000, `control: the Set's replaced tables kept ${viaSet} bytes through scavenges`);
  assert.ok(viaList < viaSet / 10, `InFlight kept ${viaList} bytes, the Set ${viaSet}`);
});
