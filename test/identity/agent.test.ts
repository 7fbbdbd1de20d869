import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { IdentityError, createIdentity, derToJose, htuOf, readIdentityFiles } from '../../src/identity/agent.ts';
import { emptyDir, generateKey, makeIdentityDir } from '../helpers/identity.ts';

for (const format of ['pkcs8', 'sec1'] as const) {
  test(`loads an EC P-256 key in ${format} PEM and signs verifiable DPoP proofs`, async () => {
    const { pem, publicJwk } = generateKey(format);
    assert.match(pem, format === 'pkcs8' ? /BEGIN PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/);
    const identity = await createIdentity('  fo_agent_agt_123\n', pem);
    assert.equal(identity.agentId, 'agt_123');
    assert.equal(identity.bearer, 'fo_agent_agt_123');
    assert.equal(identity.jkt, await calculateJwkThumbprint(publicJwk, 'sha256'));

    const proof = await identity.proof('POST', 'https://GW.example.com/mcp/proxy/c1?sessionId=abc#frag');
    const header = decodeProtectedHeader(proof);
    assert.deepEqual(header, { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk });
    const { payload } = await jwtVerify(proof, await importJWK(header.jwk as JWK, 'ES256'), { typ: 'dpop+jwt' });
    assert.deepEqual(Object.keys(payload).sort(), ['htm', 'htu', 'iat', 'jti']);
    assert.equal(payload.htm, 'POST');
    assert.equal(payload.htu, 'https://GW.example.com/mcp/proxy/c1', 'htu is cut at the query, case kept byte for byte');
    assert.equal(Buffer.from(payload.jti as string, 'base64url').length, 16);
    assert.ok(Math.abs((payload.iat as number) - Date.now() / 1000) < 5);
  });
}

test('every proof has a fresh jti; a nonce goes into the claims when given', async () => {
  const identity = await createIdentity('a', generateKey().pem);
  const jtis = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const [, body] = (await identity.proof('GET', 'http://x/y')).split('.');
    jtis.add(JSON.parse(Buffer.from(body!, 'base64url').toString()).jti);
  }
  assert.equal(jtis.size, 200);
  const [, body] = (await identity.proof('GET', 'http://x/y', 'n-1')).split('.');
  assert.equal(JSON.parse(Buffer.from(body!, 'base64url').toString()).nonce, 'n-1');
});

test('htu is cut by string slicing only', () => {
  assert.equal(htuOf('https://h/p?q#f'), 'https://h/p');
  assert.equal(htuOf('https://h/p#f?q'), 'https://h/p');
  assert.equal(htuOf('HTTPS://H:443/a/%2F/b'), 'HTTPS://H:443/a/%2F/b');
});

test('other key types and curves are refused with a clear message', async () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await assert.rejects(createIdentity('a', rsa), (e: Error) => e instanceof IdentityError && /rsa key; an EC P-256 key is required/.test(e.message));
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await assert.rejects(createIdentity('a', p384), /secp384r1; P-256 \(prime256v1\) is required/);
  const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await assert.rejects(createIdentity('a', ed), /ed25519 key/);
  await assert.rejects(createIdentity('a', 'not a pem'), /not an unencrypted PEM private key/);
  await assert.rejects(createIdentity('   ', generateKey().pem), /agent-id is empty/);
  await assert.rejects(createIdentity('fo_agent_', generateKey().pem), /agent-id is empty/);
  await assert.rejects(createIdentity('two words', generateKey().pem), /printable ASCII/);
});

test('readIdentityFiles: both, neither, or a clear error for one', async () => {
  const id = await makeIdentityDir();
  const files = await readIdentityFiles(id.dir);
  assert.equal(files?.agentId.trim(), id.agentId);
  const empty = await emptyDir();
  assert.equal(await readIdentityFiles(empty.dir), undefined);
  assert.equal(await readIdentityFiles('/nonexistent/dir'), undefined);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${empty.dir}/agent-id`, 'x');
  await assert.rejects(readIdentityFiles(empty.dir), /private-key.pem is missing beside agent-id/);
  await id.cleanup();
  await empty.cleanup();
});

test('derToJose turns every DER ECDSA signature into the r||s a verifier expects, short and padded integers included', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('payload');
  let short = 0;
  let padded = 0;
  for (let i = 0; i < 3000; i++) {
    const der = sign('sha256', data, privateKey);
    const rLen = der[3]!;
    const sLen = der[5 + rLen]!;
    if (rLen < 32 || sLen < 32) short++;
    if (rLen === 33 || sLen === 33) padded++;
    const jose = derToJose(der);
    assert.equal(jose.length, 64);
    assert.ok(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose), `signature ${i} does not verify`);
  }
  // 3000 signatures all but surely include both shapes (a 1/128 and a ~1/2 chance each).
  assert.ok(short > 0 && padded > 0, `short ${short}, padded ${padded}`);
  assert.throws(() => derToJose(Buffer.alloc(8)), /not a DER ECDSA signature/);
});
