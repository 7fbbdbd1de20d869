// Identity and policy files replaced, removed and corrupted while traffic
// flows, both the Kubernetes way (atomic `..data` symlink swap) and by plain
// overwrite: no request fails because of a swap, every proof the gateway gets
// is valid, and the swaps were really seen (reload metrics move).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, unlink, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { startGateway, type FakeGateway } from '../helpers/gateway.ts';
import { generateKey } from '../helpers/identity.ts';
import { kubeSecretDir } from '../helpers/secret-dir.ts';
import { startTestSidecar, type TestSidecar } from '../helpers/sidecar.ts';
import { startUpstream, sendJson, type FakeUpstream } from '../helpers/upstream.ts';
import { calculateJwkThumbprint } from 'jose';
import { FAULT_POLICY, chatBody, send, tempDir } from './lib.ts';

const ROTATIONS = 4;
const WORKERS = 4;

describe('identity and policy swaps under traffic', () => {
  let gateway: FakeGateway;
  let upstream: FakeUpstream;
  let sidecar: TestSidecar;
  let secret: Awaited<ReturnType<typeof kubeSecretDir>>;
  let config: Awaited<ReturnType<typeof kubeSecretDir>>;
  let plain: Awaited<ReturnType<typeof tempDir>>;
  const keys = Array.from({ length: ROTATIONS + 1 }, () => generateKey());
  const agentId = 'agt_swap';

  before(async () => {
    gateway = await startGateway();
    for (const k of keys) gateway.trust(await calculateJwkThumbprint(k.publicJwk, 'sha256'), agentId);
    gateway.onMcp((_req, res) => sendJson(res, 200, { jsonrpc: '2.0', id: 1, result: {} }));
    upstream = await startUpstream();
    secret = await kubeSecretDir({ 'agent-id': agentId, 'private-key.pem': keys[0]!.pem });
    config = await kubeSecretDir({ 'policy.json': JSON.stringify(FAULT_POLICY) });
    plain = await tempDir();
    await writeFile(join(plain.dir, 'policy.json'), JSON.stringify(FAULT_POLICY));
    sidecar = await startTestSidecar({
      FIRSTOPS_IDENTITY_DIR: secret.dir,
      FIRSTOPS_GATEWAY_URL: gateway.baseUrl,
      FIRSTOPS_UPSTREAM_OPENAI: upstream.url,
      FIRSTOPS_POLICY_FILE: join(config.dir, 'policy.json'),
      FIRSTOPS_RELOAD_INTERVAL_MS: '100',
      FIRSTOPS_LOG_LEVEL: 'info',
    }, keys.map((k) => k.pem.split('\n')[1]));
  });

  after(async () => {
    await sidecar.close();
    await gateway.close();
    await upstream.close();
    await secret.cleanup();
    await config.cleanup();
    await plain.cleanup();
  });

  test('no request fails because of a swap', async () => {
    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const worker = async (n: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const mcp = (i + n) % 3 === 0;
        try {
          const r = mcp
            ? await send(sidecar.url, { path: '/mcp/v1', body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
            : await send(sidecar.url, { path: '/llm/openai/v1/chat/completions', body: chatBody(`worker ${n} request ${i} SECRET-${i}`) });
          if (r.status !== 200) failures.push(`${mcp ? 'mcp' : 'llm'} ${r.status} ${r.body.slice(0, 200)}`);
          served++;
        } catch (err) {
          failures.push(`${mcp ? 'mcp' : 'llm'} ${(err as Error).message}`);
        }
      }
    };
    const traffic = Array.from({ length: WORKERS }, (_, n) => worker(n));
    const identity = sidecar.sidecar.identity;
    const policy = sidecar.sidecar.policy!;
    const policyFile = join(config.dir, 'policy.json');
    /** Lets the poller and a few requests see the new state. */
    const settle = async (): Promise<void> => {
      const target = served + WORKERS * 2;
      await identity.reload();
      await policy.reload();
      while (served < target && failures.length === 0) await new Promise((r) => setImmediate(r));
    };

    for (let round = 1; round <= ROTATIONS; round++) {
      // Kubernetes-style atomic swaps: rotate the key, change the rules.
      await secret.update({ 'agent-id': agentId, 'private-key.pem': keys[round]!.pem });
      await settle();
      assert.equal(identity.current()?.jkt, await calculateJwkThumbprint(keys[round]!.publicJwk, 'sha256'), 'the rotation was not picked up');
      await config.update({ 'policy.json': JSON.stringify({ ...FAULT_POLICY, rules: [...FAULT_POLICY.rules, { id: `round-${round}`, match: { input: { model: `never-${round}` } }, decision: 'deny' }] }) });
      await settle();
      // Corrupt secret and config (a bad rotation): the ones in force stay.
      await secret.update({ 'agent-id': agentId, 'private-key.pem': '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n' });
      await config.update({ 'policy.json': 'rules: [ {id: broken' });
      await settle();
      // Removed: the ..data target vanishes, then the file links themselves.
      await secret.update({});
      await rm(join(secret.dir, 'private-key.pem'), { force: true });
      await unlink(policyFile).catch(() => undefined);
      await settle();
      // Back, the plain way for the policy: a symlink to a file overwritten in place (not atomic).
      await symlink(join(plain.dir, 'policy.json'), policyFile).catch(() => undefined);
      await writeFile(join(plain.dir, 'policy.json'), JSON.stringify(FAULT_POLICY).slice(0, 20)); // torn write
      await settle();
      await writeFile(join(plain.dir, 'policy.json'), JSON.stringify(FAULT_POLICY));
      await unlink(policyFile).catch(() => undefined);
      await secret.update({ 'agent-id': agentId, 'private-key.pem': keys[round]!.pem });
      await symlink(join('..data', 'private-key.pem'), join(secret.dir, 'private-key.pem')).catch(() => undefined);
      await config.update({ 'policy.json': JSON.stringify(FAULT_POLICY) });
      await settle();
    }
    stop = true;
    await Promise.all(traffic);

    assert.deepEqual(failures, [], `${failures.length} of ${served} requests failed during swaps`);
    assert.ok(served > ROTATIONS * 20, `only ${served} requests ran`);
    assert.deepEqual(gateway.rejected, [], 'the gateway got an invalid proof');
    assert.ok(await sidecar.metricValue('firstops_identity_reloads_total', { result: 'success' }) >= ROTATIONS);
    assert.ok(await sidecar.metricValue('firstops_identity_reloads_total', { result: 'failure' }) >= ROTATIONS);
    assert.ok(await sidecar.metricValue('firstops_policy_reloads_total', { result: 'success' }) >= ROTATIONS);
    assert.ok(await sidecar.metricValue('firstops_policy_reloads_total', { result: 'failure' }) >= ROTATIONS);
    // Every forwarded body was redacted by whichever policy was in force.
    assert.ok(upstream.requests.every((r) => !r.body.includes('SECRET-')), 'a request was forwarded unredacted');
  });
});
