// https:// targets: CONNECT tunnels through HTTPS_PROXY, a private CA through
// NODE_EXTRA_CA_CERTS (read at process start, so a spawned dist/main.js),
// TLS failures as upstream_tls, and mTLS client certificates from files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { createTestCa, type TestCa } from '../helpers/pki.ts';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { runSidecar, portsOf, type SidecarProcess } from '../helpers/process.ts';
import { startTestSidecar, TEST_API_KEY } from '../helpers/sidecar.ts';
import { chatCompletion } from '../helpers/upstream.ts';
import { closedPort } from '../faults/lib.ts';

interface TlsUpstream {
  readonly url: string;
  readonly port: number;
  /** Requests that got through the handshake, with the client certificate's CN if one was sent. */
  readonly requests: Array<{ url: string; clientCn: string | undefined }>;
  close(): Promise<void>;
}

async function startTlsUpstream(cert: { cert: Buffer; key: Buffer }, mtlsCa?: Buffer): Promise<TlsUpstream> {
  const requests: TlsUpstream['requests'] = [];
  const server: Server = createServer({ cert: cert.cert, key: cert.key, ...(mtlsCa ? { ca: mtlsCa, requestCert: true, rejectUnauthorized: true } : {}) }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    requests.push({ url: req.url ?? '', clientCn: peer && 'subject' in peer ? String(peer.subject?.CN) : undefined });
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify(chatCompletion('over verified TLS'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const PROXY_PASSWORD = 'tls-proxy-PASSWORD-secret';
const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;
let ca: TestCa;
let proxy: TestProxy;
let good: TlsUpstream;
let wrongName: TlsUpstream;
let expired: TlsUpstream;
let mtls: TlsUpstream;
let client: ReturnType<TestCa['issue']>;

before(async () => {
  ca = createTestCa();
  good = await startTlsUpstream(ca.issue('good'));
  wrongName = await startTlsUpstream(ca.issue('wrong-name', { san: 'DNS:llm.example.test' }));
  expired = await startTlsUpstream(ca.issue('expired', { days: -1 }));
  mtls = await startTlsUpstream(ca.issue('mtls'), ca.caCert);
  client = ca.issue('sidecar-client', { purpose: 'clientAuth' });
  proxy = await startProxy({ credentials: `u:${PROXY_PASSWORD}` });
});

after(async () => {
  await Promise.all([good.close(), wrongName.close(), expired.close(), mtls.close(), proxy.close()]);
  ca.cleanup();
});

async function post(base: string, provider: string): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
  const res = await fetch(`${base}/llm/${provider}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
  const body = await res.json() as { error?: { code?: string; message?: string } };
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}

test('in process, no private CA: an unknown CA is a 502 upstream_tls, direct and through the CONNECT tunnel, and no request leaks', async () => {
  const sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: POLICY,
    FIRSTOPS_UPSTREAM_OPENAI: good.url,
    FIRSTOPS_UPSTREAM_DIRECT: good.url.replace('127.0.0.1', 'localhost'),
    HTTPS_PROXY: `http://u:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
    NO_PROXY: 'localhost',
  }, [PROXY_PASSWORD]);
  const hits = proxy.hits.length;
  const tunnelled = await post(sidecar.url, 'openai');
  assert.equal(tunnelled.status, 502);
  assert.equal(tunnelled.code, 'upstream_tls');
  assert.match(tunnelled.message ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  assert.deepEqual(proxy.hits.slice(hits).map((h) => [h.kind, h.target]), [['connect', `127.0.0.1:${good.port}`]]);
  const direct = await post(sidecar.url, 'direct');
  assert.equal(direct.code, 'upstream_tls');
  assert.equal(proxy.hits.length, hits + 1, 'NO_PROXY=localhost went direct');
  assert.equal(good.requests.length, 0, 'nothing was sent without verification');
  assert.equal(await sidecar.metricValue('firstops_upstream_errors_total', { route: 'llm', code: 'upstream_tls' }), 2);
  await sidecar.close();
});

test('in process: a CONNECT the proxy refuses is proxy_refused with its status; a proxy that is down is proxy_unreachable', async () => {
  const down = await closedPort();
  const sidecar = await startTestSidecar({
    FIRSTOPS_POLICY_FILE: POLICY,
    FIRSTOPS_UPSTREAM_OPENAI: good.url,
    https_proxy: `http://u:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
  }, [PROXY_PASSWORD]);
  proxy.refuseWith(403);
  try {
    const refused = await post(sidecar.url, 'openai');
    assert.equal(refused.status, 502);
    assert.equal(refused.code, 'proxy_refused');
    assert.match(refused.message ?? '', new RegExp(`http://\\*\\*\\*@127\\.0\\.0\\.1:${proxy.port} answered 403`));
  } finally {
    proxy.refuseWith(undefined);
  }
  await sidecar.close();

  const unreachable = await startTestSidecar({ FIRSTOPS_POLICY_FILE: POLICY, FIRSTOPS_UPSTREAM_OPENAI: good.url, ALL_PROXY: `127.0.0.1:${down}` });
  const answer = await post(unreachable.url, 'openai');
  assert.equal(answer.status, 502);
  assert.equal(answer.code, 'proxy_unreachable');
  await unreachable.close();
});

test('dist/main.js with NODE_EXTRA_CA_CERTS: the OpenAI SDK through the CONNECT tunnel; wrong name and expired are upstream_tls; mTLS with the mounted certificate', async () => {
  const env = {
    NODE_EXTRA_CA_CERTS: ca.caFile,
    HTTPS_PROXY: `http://u:${PROXY_PASSWORD}@127.0.0.1:${proxy.port}`,
    NO_PROXY: `127.0.0.1:${expired.port}`,
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_IDENTITY_DIR: '/nonexistent/identity',
    FIRSTOPS_POLICY_FILE: POLICY,
    FIRSTOPS_UPSTREAM_OPENAI: good.url,
    FIRSTOPS_UPSTREAM_WRONGNAME: wrongName.url,
    FIRSTOPS_UPSTREAM_EXPIRED: expired.url,
    FIRSTOPS_UPSTREAM_SECURE: mtls.url,
    FIRSTOPS_UPSTREAM_NOCERT: mtls.url.replace('127.0.0.1', 'localhost'),
    FIRSTOPS_TLS_CLIENT_CERT_SECURE: client.certFile,
    FIRSTOPS_TLS_CLIENT_KEY_SECURE: client.keyFile,
  };
  let sidecar: SidecarProcess | undefined = runSidecar([], env);
  try {
    const { proxy: port } = portsOf(await sidecar.waitFor('firstops-sidecar listening'));
    const base = `http://127.0.0.1:${port}`;
    const hits = proxy.hits.length;
    const openai = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `${base}/llm/openai/v1`, maxRetries: 0 });
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(completion.choices[0]?.message.content, 'over verified TLS');
    assert.deepEqual(proxy.hits.slice(hits).map((h) => [h.kind, h.target]), [['connect', `127.0.0.1:${good.port}`]]);
    assert.equal(proxy.hits.at(-1)!.authorization, `Basic ${Buffer.from(`u:${PROXY_PASSWORD}`).toString('base64')}`);

    const name = await post(base, 'wrongname');
    assert.deepEqual([name.status, name.code], [502, 'upstream_tls']);
    assert.match(name.message ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
    const old = await post(base, 'expired');
    assert.deepEqual([old.status, old.code], [502, 'upstream_tls']);
    assert.match(old.message ?? '', /CERT_HAS_EXPIRED/);
    assert.equal(wrongName.requests.length + expired.requests.length, 0, 'no request without verification');

    const secure = await post(base, 'secure');
    assert.equal(secure.status, 200);
    assert.deepEqual(mtls.requests.map((r) => r.clientCn), ['sidecar-client']);
    // TLS 1.3: the server checks the client certificate after the handshake and
    // closes the connection; the client sees a close, not a TLS alert.
    const without = await post(base, 'nocert');
    assert.deepEqual([without.status, without.code], [502, 'upstream_reset']);
    assert.equal(mtls.requests.length, 1, 'the server refused the request without a client certificate');

    const egress = sidecar.lines.find((l) => l.msg === 'egress')!;
    assert.deepEqual(egress.client_certificates, ['secure']);
    assert.equal((egress.targets as Record<string, string>)['upstream expired'], 'direct (NO_PROXY)');
    const printed = sidecar.lines.map((l) => JSON.stringify(l)).join('\n') + sidecar.stderr.join('');
    assert.ok(!printed.includes(PROXY_PASSWORD), 'the proxy password is never logged');
    assert.ok(!printed.includes('PRIVATE KEY'));
    sidecar.child.kill('SIGTERM');
    assert.equal((await sidecar.exit()).code, 0);
    sidecar = undefined;

    const check = runSidecar(['check'], env);
    assert.equal((await check.exit()).code, 0, check.stderr.join(''));
    const text = check.lines.map((l) => (l.unparsed ? l.msg : JSON.stringify(l))).join('\n');
    assert.ok(!text.includes(PROXY_PASSWORD), 'check never echoes proxy credentials');
    const report = JSON.parse(text) as { config: { egress: Record<string, any> }; client_certificates: Record<string, { subject: string }> };
    assert.equal(report.config.egress.https_proxy, `http://***@127.0.0.1:${proxy.port}`);
    assert.equal(report.config.egress.targets[`upstream openai ${good.url}`], `via http://***@127.0.0.1:${proxy.port} (HTTPS_PROXY)`);
    assert.equal(report.config.egress.targets[`upstream expired ${expired.url}`], 'direct (NO_PROXY)');
    assert.equal(report.config.egress.targets['gateway https://api.firstops.dev'], `via http://***@127.0.0.1:${proxy.port} (HTTPS_PROXY)`);
    assert.match(report.client_certificates.secure!.subject, /CN=sidecar-client/);
  } finally {
    sidecar?.child.kill('SIGKILL');
  }
});

test('client certificate files are checked at start: a key of another certificate stops the sidecar with exit 2', async () => {
  const other = ca.issue('other-client', { purpose: 'clientAuth' });
  const sidecar = runSidecar([], {
    FIRSTOPS_PORT: '0', FIRSTOPS_ADMIN_PORT: '0', FIRSTOPS_ADMIN_HOST: '127.0.0.1', FIRSTOPS_IDENTITY_DIR: '/nonexistent/identity',
    FIRSTOPS_POLICY_FILE: POLICY,
    FIRSTOPS_UPSTREAM_SECURE: mtls.url,
    FIRSTOPS_TLS_CLIENT_CERT_SECURE: client.certFile,
    FIRSTOPS_TLS_CLIENT_KEY_SECURE: other.keyFile,
  });
  assert.equal((await sidecar.exit()).code, 2);
  assert.match(sidecar.stderr.join(''), /FIRSTOPS_TLS_CLIENT_KEY_SECURE=.*the key does not belong to the certificate/);
});
