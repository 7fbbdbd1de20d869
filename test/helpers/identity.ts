import { generateKeyPairSync, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';

export interface TestIdentity {
  readonly dir: string;
  readonly agentId: string;
  readonly privateKeyPem: string;
  readonly publicJwk: JWK;
  readonly jkt: string;
  cleanup(): Promise<void>;
}

export function generateKey(format: 'pkcs8' | 'sec1' = 'pkcs8'): { pem: string; key: KeyObject; publicJwk: JWK } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ format: 'pem', type: format }) as string;
  const { kty, crv, x, y } = createPublicKey(privateKey).export({ format: 'jwk' });
  return { pem, key: privateKey, publicJwk: { kty, crv, x, y } as JWK };
}

/** A directory laid out like the mounted Secret: `agent-id` and `private-key.pem`. */
export async function makeIdentityDir(options: { agentId?: string; format?: 'pkcs8' | 'sec1'; agentIdFileText?: string } = {}): Promise<TestIdentity> {
  const dir = await mkdtemp(join(tmpdir(), 'fo-identity-'));
  const agentId = options.agentId ?? `agt_${Math.random().toString(36).slice(2, 10)}`;
  const { pem, publicJwk } = generateKey(options.format);
  await writeFile(join(dir, 'agent-id'), options.agentIdFileText ?? `${agentId}\n`);
  await writeFile(join(dir, 'private-key.pem'), pem);
  const jkt = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { dir, agentId, privateKeyPem: pem, publicJwk, jkt, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function emptyDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fo-empty-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
