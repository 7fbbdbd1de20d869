import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.ts';
import { describeRoute, proxyFor, readEgress } from '../../src/egress/proxies.ts';
import { parseNoProxy } from '../../src/egress/no-proxy.ts';
import { createDispatcher } from '../../src/egress/upstream.ts';
import { upstreamError, gatewayError } from '../../src/egress/failures.ts';
import { ProxyError } from '../../src/egress/proxy-error.ts';

const noProblems = (name: string, value: string, expected: string): never => {
  throw new Error(`unexpected problem ${name}=${value}: ${expected}`);
};

test('NO_PROXY: names with subdomains, ports, schemes, IPs and CIDR ranges; * bypasses all', () => {
  const np = parseNoProxy('.corp.example, internal.test:8443 ,10.0.0.0/8 fd00::/8\t127.0.0.1, [::1]:9000, http://plain.example, *.wild.example');
  const m = (url: string): boolean => np.matches(new URL(url));
  assert.equal(m('https://corp.example'), true, 'a leading dot still matches the domain itself');
  assert.equal(m('https://api.corp.example'), true);
  assert.equal(m('https://notcorp.example'), false, 'suffix match only on a label boundary');
  assert.equal(m('https://internal.test:8443'), true);
  assert.equal(m('https://internal.test'), false, 'the port must match (443 here)');
  assert.equal(m('https://10.2.3.4'), true);
  assert.equal(m('https://11.2.3.4'), false);
  assert.equal(m('https://[fd00::5]'), true);
  assert.equal(m('http://127.0.0.1:1234'), true);
  assert.equal(m('http://[::1]:9000'), true);
  assert.equal(m('http://[::1]:9001'), false);
  assert.equal(m('http://plain.example'), true);
  assert.equal(m('https://plain.example'), false, 'scheme-specific entry');
  assert.equal(m('https://a.wild.example'), true);
  assert.equal(m('https://API.CORP.EXAMPLE'), true, 'case-insensitive');
  assert.equal(m('https://localhost'), false, 'loopback is not special: list it to bypass');
  assert.equal(parseNoProxy('a, *').all, true);
  assert.equal(parseNoProxy('*').matches(new URL('https://anything')), true);
});

test('proxy variables: lower case wins (even empty), https falls back to ALL_PROXY, never to HTTP_PROXY', () => {
  const egress = readEgress({
    https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128',
    HTTP_PROXY: 'proxy.internal:8080',
    all_proxy: '', ALL_PROXY: 'http://all:1',
  }, 'env', noProblems);
  assert.equal(egress.https?.url.host, 'lower:3128');
  assert.equal(egress.https?.variable, 'https_proxy');
  assert.equal(egress.http?.url.href, 'http://proxy.internal:8080/', 'a bare host:port is http://');
  assert.equal(egress.all, undefined, 'an empty lower-case all_proxy overrides ALL_PROXY');

  const onlyHttp = readEgress({ HTTP_PROXY: 'http://p:1' }, 'env', noProblems);
  assert.equal(proxyFor(onlyHttp, new URL('https://api.openai.com')), undefined, 'HTTP_PROXY is not used for https targets (as httpx, curl, Go)');
  assert.equal(proxyFor(onlyHttp, new URL('http://x'))?.url.host, 'p:1');
  const all = readEgress({ ALL_PROXY: 'https://u:p@all.proxy:443', NO_PROXY: 'api.anthropic.com' }, 'env', noProblems);
  assert.equal(proxyFor(all, new URL('https://api.openai.com'))?.shown, 'https://***@all.proxy');
  assert.equal(describeRoute(all, 'https://api.anthropic.com'), 'direct (NO_PROXY)');
  assert.equal(describeRoute(readEgress({ HTTPS_PROXY: 'http://p:1' }, 'off', noProblems), 'https://x'), 'direct (FIRSTOPS_PROXY_MODE=off)');
});

test('bad proxy values are config problems naming the variable, without echoing credentials; off skips them', () => {
  let error: unknown;
  try {
    loadConfig({ HTTPS_PROXY: 'socks5://u:secret@127.0.0.1:1080', http_proxy: 'http://p:1/path', FIRSTOPS_PROXY_MODE: 'sometimes' });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  assert.equal(error.problems.length, 3, error.message);
  assert.match(error.message, /HTTPS_PROXY=.*SOCKS is not supported/);
  assert.match(error.message, /http_proxy="http:\/\/p:1\/path": expected a proxy URL without path/);
  assert.match(error.message, /FIRSTOPS_PROXY_MODE="sometimes": expected one of env, off/);
  assert.ok(!error.message.includes('secret'));
  assert.equal(loadConfig({ FIRSTOPS_PROXY_MODE: 'off', HTTPS_PROXY: 'socks5://x:1' }).egress.https, undefined);
});

test('client certificate variables: both halves, a known https upstream, one per origin', () => {
  let error: unknown;
  try {
    loadConfig({
      FIRSTOPS_UPSTREAM_LOCAL: 'http://127.0.0.1:1',
      FIRSTOPS_UPSTREAM_TWIN: 'https://api.openai.com/v2',
      FIRSTOPS_TLS_CLIENT_CERT_OPENAI: '/c.pem', FIRSTOPS_TLS_CLIENT_KEY_OPENAI: '/k.pem',
      FIRSTOPS_TLS_CLIENT_CERT_TWIN: '/c2.pem', FIRSTOPS_TLS_CLIENT_KEY_TWIN: '/k2.pem',
      FIRSTOPS_TLS_CLIENT_CERT_ANTHROPIC: '/c3.pem',
      FIRSTOPS_TLS_CLIENT_CERT_LOCAL: '/c4.pem', FIRSTOPS_TLS_CLIENT_KEY_LOCAL: '/k4.pem',
      FIRSTOPS_TLS_CLIENT_CERT_NOPE: '/c5.pem', FIRSTOPS_TLS_CLIENT_KEY_NOPE: '/k5.pem',
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.message;
  assert.match(text, /FIRSTOPS_TLS_CLIENT_KEY_ANTHROPIC="": expected the file path of the private key too/);
  assert.match(text, /FIRSTOPS_TLS_CLIENT_CERT_LOCAL=.*an https:\/\/ upstream/);
  assert.match(text, /FIRSTOPS_TLS_CLIENT_CERT_NOPE=.*the name of a configured upstream/);
  assert.match(text, /FIRSTOPS_TLS_CLIENT_CERT_TWIN=.*one client certificate per origin/);
  assert.equal(error.problems.length, 4, text);
  const ok = loadConfig({ FIRSTOPS_TLS_CLIENT_CERT_OPENAI: '/c.pem', FIRSTOPS_TLS_CLIENT_KEY_OPENAI: '/k.pem' });
  assert.deepEqual([...ok.clientCerts], [['openai', { certFile: '/c.pem', keyFile: '/k.pem' }]]);
  assert.equal(ok.upstreams.size, 2, 'FIRSTOPS_TLS_* never makes an upstream');
});

test('describeConfig shows routes and redacted proxies, never the proxy password', () => {
  const config = loadConfig({ HTTPS_PROXY: 'http://user:hunter2@proxy.corp:3128', NO_PROXY: 'api.anthropic.com' });
  const text = JSON.stringify(describeConfig(config));
  assert.ok(!text.includes('hunter2') && !text.includes('user:'), text);
  const egress = describeConfig(config).egress as Record<string, any>;
  assert.equal(egress.https_proxy, 'http://***@proxy.corp:3128');
  assert.deepEqual(egress.targets, {
    'upstream openai https://api.openai.com': 'via http://***@proxy.corp:3128 (HTTPS_PROXY)',
    'upstream anthropic https://api.anthropic.com': 'direct (NO_PROXY)',
    'gateway https://api.firstops.dev': 'via http://***@proxy.corp:3128 (HTTPS_PROXY)',
  });
});

test('without a proxy (or with NO_PROXY=*) the dispatcher is the plain Agent; with one it routes', async () => {
  const base = { connectTimeoutMs: 1000, headersTimeoutMs: 1000 };
  const plain = [
    createDispatcher(base),
    createDispatcher({ ...base, egress: loadConfig({}).egress }),
    createDispatcher({ ...base, egress: loadConfig({ HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }).egress }),
    createDispatcher({ ...base, egress: loadConfig({ HTTPS_PROXY: 'http://p:1', FIRSTOPS_PROXY_MODE: 'off' }).egress }),
  ];
  for (const d of plain) assert.equal(d.constructor, Agent);
  const routed = createDispatcher({ ...base, egress: loadConfig({ HTTPS_PROXY: 'http://p:1' }).egress });
  assert.notEqual(routed.constructor, Agent);
  await Promise.all([...plain, routed].map((d) => d.close()));
});

test('classification: TLS codes name TLS, proxy failures name the proxy, for both hops', () => {
  const tls = Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET', cause: Object.assign(new Error('y'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }) });
  assert.equal(upstreamError(tls).code, 'upstream_tls');
  assert.equal(upstreamError(tls).detail, 'SELF_SIGNED_CERT_IN_CHAIN');
  assert.equal(gatewayError(Object.assign(new Error('z'), { code: 'CERT_HAS_EXPIRED' })).code, 'gateway_tls');
  assert.equal(upstreamError(Object.assign(new Error('w'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })).code, 'upstream_tls');
  assert.equal(upstreamError(new ProxyError('refused', 'http://p:1', { status: 403 })).message, 'egress proxy refused to open a tunnel to the target: http://p:1 answered 403');
  assert.equal(gatewayError(new ProxyError('timeout', 'http://p:1')).code, 'proxy_timeout');
  assert.equal(gatewayError(new ProxyError('tls', 'https://p:1')).status, 502);
  assert.equal(upstreamError(Object.assign(new Error('c'), { code: 'ECONNREFUSED' })).code, 'upstream_unreachable', 'a direct refusal stays the upstream\'s');
});
