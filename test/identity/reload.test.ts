import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPoller } from '../../src/identity/reload.ts';

test('check() reads after the call even while a check is under way', async () => {
  let value = 'a';
  let releaseRead: (() => void) | undefined;
  let reads = 0;
  const seen: string[] = [];
  const poller = startPoller({
    intervalMs: 60_000,
    initial: 'a',
    read: async () => {
      reads++;
      const snapshot = value;
      if (reads === 1) await new Promise<void>((resolve) => { releaseRead = resolve; });
      return snapshot;
    },
    key: (v) => v,
    onChange: async (v) => void seen.push(v),
  });
  const first = poller.check(); // reads 'a' and blocks
  value = 'b';
  const second = poller.check(); // must not reuse the read that began before the change
  releaseRead!();
  await first;
  await second;
  assert.deepEqual(seen, ['b']);
  assert.equal(reads, 2);
  poller.stop();
});

test('a change is applied once; an unchanged read is not', async () => {
  let value = 'x';
  const seen: string[] = [];
  const poller = startPoller({ intervalMs: 60_000, initial: 'x', read: async () => value, key: (v) => v, onChange: async (v) => void seen.push(v) });
  await poller.check();
  value = 'y';
  await poller.check();
  await poller.check();
  assert.deepEqual(seen, ['y']);
  poller.stop();
});
