import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseBaseUrl } from '../src/config.ts';

test('defaults match the documented table', () => {
  const c = loadConfig({});
  assert.equal(c.gatewayUrl, 'https://api.firstops.dev');
  assert.equal(c.identityDir, '/var/run/secrets/firstops');
  assert.equal(c.listenHost, '127.0.0.1');
  assert.equal(c.port, 9322);
  assert.equal(c.adminHost, '0.0.0.0');
  assert.equal(c.adminPort, 9323);
  assert.equal(c.failMode, 'closed');
  assert.equal(c.policyTimeoutMs, 5000);
  assert.equal(c.maxBodyBytes, 104857600);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.policyFile, undefined);
  assert.deepEqual([...c.upstreams.keys()].sort(), ['anthropic', 'openai']);
  assert.deepEqual(c.upstreams.get('openai'), { name: 'openai', origin: 'https://api.openai.com', basePath: '' });
});

test('gateway URL keeps its spelling but loses trailing slashes', () => {
  assert.equal(loadConfig({ FIRSTOPS_GATEWAY_URL: 'https://gw.example.com/prefix//' }).gatewayUrl, 'https://gw.example.com/prefix');
});

test('upstreams: names lower-cased, base path kept, empty value removes a provider', () => {
  const c = loadConfig({
    FIRSTOPS_UPSTREAM_AZURE_OPENAI: 'https://my-gw.internal:8443/openai/',
    FIRSTOPS_UPSTREAM_ANTHROPIC: '',
  });
  assert.deepEqual(c.upstreams.get('azure_openai'), { name: 'azure_openai', origin: 'https://my-gw.internal:8443', basePath: '/openai' });
  assert.equal(c.upstreams.has('anthropic'), false);
  assert.equal(c.upstreams.has('openai'), true);
});

test('one error names every bad variable, its value and what was expected', () => {
  let error: unknown;
  try {
    loadConfig({
      FIRSTOPS_GATEWAY_URL: 'ftp://x',
      FIRSTOPS_PORT: 'eighty',
      FIRSTOPS_ADMIN_PORT: '70000',
      FIRSTOPS_FAIL_MODE: 'sometimes',
      FIRSTOPS_LOG_LEVEL: 'loud',
      FIRSTOPS_MAX_BODY_BYTES: '-1',
      FIRSTOPS_UPSTREAM_OPENAI: 'not a url',
      FIRSTOPS_UPSTREAM_BAD: 'https://user:pw@host',
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const text = error.message;
  for (const needle of [
    'FIRSTOPS_GATEWAY_URL="ftp://x"', 'FIRSTOPS_PORT="eighty"', 'FIRSTOPS_ADMIN_PORT="70000"', 'FIRSTOPS_FAIL_MODE="sometimes"',
    'one of closed, open', 'FIRSTOPS_LOG_LEVEL="loud"', 'FIRSTOPS_MAX_BODY_BYTES="-1"', 'FIRSTOPS_UPSTREAM_OPENAI="not a url"',
    'FIRSTOPS_UPSTREAM_BAD', 'without credentials',
  ]) assert.ok(text.includes(needle), `missing ${needle} in:\n${text}`);
  assert.equal(error.problems.length, 8);
  assert.ok(!text.includes('user:pw'), 'URL credentials are never echoed');
  assert.ok(text.includes('FIRSTOPS_UPSTREAM_BAD="<redacted: contains @>"'));
  assert.ok(!loadConfigError({ FIRSTOPS_UPSTREAM_X: 'https://user:p@ss@host' }).includes('ss@host'), 'no part of a password with @ is echoed');
});

test('parseBaseUrl refuses queries, fragments and non-http schemes', () => {
  assert.equal(typeof parseBaseUrl('https://a.b/?x=1'), 'string');
  assert.equal(typeof parseBaseUrl('https://a.b/#f'), 'string');
  assert.equal(typeof parseBaseUrl('file:///etc'), 'string');
  assert.deepEqual(parseBaseUrl('http://127.0.0.1:9/p/'), { base: 'http://127.0.0.1:9/p', origin: 'http://127.0.0.1:9', basePath: '/p' });
});

test('timeouts and other settings never collide with the FIRSTOPS_UPSTREAM_<NAME> namespace', () => {
  const c = loadConfig({ FIRSTOPS_RESPONSE_TIMEOUT_MS: '300', FIRSTOPS_CONNECT_TIMEOUT_MS: '50' });
  assert.equal(c.upstreamTimeoutMs, 300);
  assert.equal(c.connectTimeoutMs, 50);
  assert.deepEqual([...c.upstreams.keys()].sort(), ['anthropic', 'openai']);
});

function loadConfigError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

test('debug listener: loopback on 9324 by default, off, and a non-loopback host only with ALLOW_REMOTE', () => {
  const c = loadConfig({});
  assert.equal(c.debugHost, '127.0.0.1');
  assert.equal(c.debugPort, 9324);
  assert.equal(c.debugAllowRemote, false);
  assert.equal(c.debugHistory, 200);
  assert.equal(loadConfig({ FIRSTOPS_DEBUG_PORT: 'off' }).debugPort, undefined);
  assert.equal(loadConfig({ FIRSTOPS_DEBUG_PORT: 'OFF' }).debugPort, undefined);
  for (const host of ['::1', 'localhost', '127.0.0.2']) assert.equal(loadConfig({ FIRSTOPS_DEBUG_HOST: host }).debugHost, host);

  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
    assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_HOST: host }), (err: ConfigError) => {
      assert.match(err.problems.join('\n'), /FIRSTOPS_DEBUG_HOST=.*loopback.*FIRSTOPS_DEBUG_ALLOW_REMOTE=true/);
      return true;
    });
  }
  const remote = loadConfig({ FIRSTOPS_DEBUG_HOST: '0.0.0.0', FIRSTOPS_DEBUG_ALLOW_REMOTE: 'true' });
  assert.equal(remote.debugHost, '0.0.0.0');
  assert.equal(remote.debugAllowRemote, true);
  // Off: the host does not matter.
  assert.equal(loadConfig({ FIRSTOPS_DEBUG_HOST: '0.0.0.0', FIRSTOPS_DEBUG_PORT: 'off' }).debugPort, undefined);

  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_PORT: '9322' }), /FIRSTOPS_DEBUG_PORT="9322": expected a port different from FIRSTOPS_PORT and FIRSTOPS_ADMIN_PORT/);
  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_PORT: '9323' }), /FIRSTOPS_DEBUG_PORT/);
  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_PORT: 'on' }), /FIRSTOPS_DEBUG_PORT="on": expected an integer from 0 to 65535/);
  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_ALLOW_REMOTE: 'yes' }), /FIRSTOPS_DEBUG_ALLOW_REMOTE/);
  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_HISTORY: '0' }), /FIRSTOPS_DEBUG_HISTORY="0": expected an integer from 1 to 10000/);
  assert.throws(() => loadConfig({ FIRSTOPS_DEBUG_HISTORY: '100001' }), /FIRSTOPS_DEBUG_HISTORY/);
});
