import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBodyBudget } from '../../src/memory/budget.ts';
import { DEFAULT_LIMIT_BYTES, readMemoryLimit } from '../../src/memory/limit.ts';
import { planMemory } from '../../src/memory/plan.ts';
import { loadConfig, describeConfig } from '../../src/config.ts';

const MIB = 1024 * 1024;

function files(entries: Record<string, string>): (path: string) => string | undefined {
  return (path) => entries[path];
}

test('the limit comes from cgroup v2 memory.max, v1 memory.limit_in_bytes, or the documented default', () => {
  // A container with its own cgroup namespace: its limit at the mount's root.
  assert.deepEqual(readMemoryLimit(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/memory.max': '268435456\n' })), { bytes: 256 * MIB, source: 'cgroup v2 memory.max' });
  // The host's view: the process's own cgroup path; the smaller of it and the root wins.
  assert.deepEqual(
    readMemoryLimit(files({ '/proc/self/cgroup': '0::/kubepods/pod1/c1\n', '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': '134217728', '/sys/fs/cgroup/memory.max': 'max' })),
    { bytes: 128 * MIB, source: 'cgroup v2 memory.max' },
  );
  // v1, with the memory controller among others on one line.
  assert.deepEqual(
    readMemoryLimit(files({ '/proc/self/cgroup': '12:cpu,cpuacct:/x\n9:memory:/libpod_parent/libpod-abc\n', '/sys/fs/cgroup/memory/libpod_parent/libpod-abc/memory.limit_in_bytes': '268435456' })),
    { bytes: 256 * MIB, source: 'cgroup v1 memory.limit_in_bytes' },
  );
  // "max", v1's 2^63-ish "unlimited", garbage, nothing at all: the default.
  for (const entries of [{ '/sys/fs/cgroup/memory.max': 'max' }, { '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }, { '/sys/fs/cgroup/memory.max': 'lots' }, {}]) {
    assert.deepEqual(readMemoryLimit(files(entries as Record<string, string>)), { bytes: DEFAULT_LIMIT_BYTES, source: 'none found (default)' }, JSON.stringify(entries));
  }
});

test('under the chart\'s 256Mi the default cap is at least 48 MiB, and a body at the cap fits the worst case', () => {
  const plan = planMemory({ limit: { bytes: 256 * MIB, source: 'cgroup v2 memory.max' }, rssBytes: 70 * MIB });
  assert.equal(plan.budgetBytes, 256 * MIB - 70 * MIB - 32 * MIB);
  assert.ok(plan.maxBodyBytes >= 48 * MIB, `cap ${plan.maxBodyBytes / MIB} MiB`);
  assert.ok(plan.maxBodyBytes * 3 <= plan.budgetBytes, 'body, rewrite and remote payload fit');
  assert.equal(plan.maxBodyBytes % MIB, 0);
  assert.equal(plan.warning, undefined);
  // No limit found: the documented 1 GiB default keeps the old 100 MiB cap.
  assert.equal(planMemory({ limit: { bytes: DEFAULT_LIMIT_BYTES, source: 'none found (default)' }, rssBytes: 70 * MIB }).maxBodyBytes, 100 * MIB);
});

test('a configured cap the budget cannot hold is reported, with what it means', () => {
  const limit = { bytes: 256 * MIB, source: 'cgroup v2 memory.max' } as const;
  const tooBig = planMemory({ limit, rssBytes: 70 * MIB, maxBodyBytes: 100 * MIB });
  assert.match(tooBig.warning ?? '', /FIRSTOPS_MAX_BODY_BYTES=104857600 does not fit the memory budget .* always refused \(503 body_budget_exhausted\)/);
  const tight = planMemory({ limit, rssBytes: 70 * MIB, maxBodyBytes: 60 * MIB });
  assert.match(tight.warning ?? '', /remote modify fails \(FIRSTOPS_FAIL_MODE decides\)/);
  const override = planMemory({ limit, rssBytes: 70 * MIB, budgetBytes: 600 * MIB });
  assert.equal(override.limitSource, 'FIRSTOPS_MEMORY_BUDGET_BYTES');
  assert.equal(override.maxBodyBytes, 100 * MIB);
});

test('config and check show the effective budget and cap; bad values are config errors', () => {
  const config = loadConfig({ FIRSTOPS_MEMORY_BUDGET_BYTES: String(90 * MIB) }, { limit: { bytes: 256 * MIB, source: 'cgroup v2 memory.max' }, rssBytes: 60 * MIB });
  assert.equal(config.maxBodyBytes, 30 * MIB);
  assert.deepEqual(describeConfig(config).memory, {
    limit_bytes: 256 * MIB, limit_source: 'FIRSTOPS_MEMORY_BUDGET_BYTES', baseline_bytes: 60 * MIB, budget_bytes: 90 * MIB,
    max_body_bytes: 30 * MIB, max_body_source: 'derived from the budget', warning: null,
  });
  assert.throws(() => loadConfig({ FIRSTOPS_MEMORY_BUDGET_BYTES: 'lots', FIRSTOPS_MAX_BODY_BYTES: '0' }), (err: Error) =>
    /FIRSTOPS_MEMORY_BUDGET_BYTES="lots": expected an integer/.test(err.message) && /FIRSTOPS_MAX_BODY_BYTES="0": expected an integer from 1/.test(err.message));
});

test('the budget: shares take what fits, small bodies are never refused, release is once', () => {
  const seen: number[] = [];
  const budget = createBodyBudget({ bytes: 100, smallBytes: 10, observer: { inUse: (n) => seen.push(n) } });
  const a = budget.open();
  const b = budget.open();
  assert.equal(a.take(60), true);
  assert.equal(b.take(50), false, 'does not fit what is left');
  assert.equal(b.taken, 0, 'a refused take takes nothing');
  assert.equal(b.take(40), true);
  assert.equal(budget.inUse(), 100);
  assert.equal(b.take(5, true), true, 'forced (a small body) even when full');
  assert.equal(budget.inUse(), 105);
  a.release();
  a.release();
  assert.equal(budget.inUse(), 45, 'released once');
  assert.equal(a.take(1), false, 'a released share takes nothing more');
  b.release();
  assert.equal(budget.inUse(), 0);
  assert.deepEqual(seen, [60, 100, 105, 45, 0]);
  assert.throws(() => createBodyBudget({ bytes: -1, smallBytes: 0 }), RangeError);
});
