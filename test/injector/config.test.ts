import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadInjectorConfig } from '../../src/injector/config.ts';
import { InjectorError } from '../../src/injector/errors.ts';

const MINIMAL = {
  FIRSTOPS_INJECTOR_TLS_CERT: '/tls/tls.crt',
  FIRSTOPS_INJECTOR_TLS_KEY: '/tls/tls.key',
  FIRSTOPS_INJECTOR_SIDECAR_IMAGE: 'ghcr.io/firstops-dev/firstops-sidecar:0.1.0',
};

function issuesOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadInjectorConfig(env);
  } catch (err) {
    assert.ok(err instanceof InjectorError);
    assert.equal(err.code, 'INJECTOR_CONFIG_INVALID');
    return err.issues;
  }
  assert.fail('expected INJECTOR_CONFIG_INVALID');
}

describe('injector config', () => {
  it('applies documented defaults', () => {
    const config = loadInjectorConfig(MINIMAL);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8443);
    assert.equal(config.metricsPort, undefined);
    assert.equal(config.tlsReloadIntervalMs, 10_000);
    assert.equal(config.missingSecretAction, 'reject');
    assert.deepEqual([...config.excludedNamespaces], ['kube-system']);
    assert.equal(config.sidecar.native, true);
    assert.equal(config.sidecar.imagePullPolicy, 'IfNotPresent');
    assert.equal(config.sidecar.baseUrlEnv, true);
    assert.equal(config.sidecar.policyKey, 'policy.yaml');
    assert.equal(config.sidecar.policyConfigMap, undefined);
    assert.deepEqual(config.sidecar.resources, { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    assert.equal(config.sidecar.env.size, 0);
  });

  it('reads every variable', () => {
    const config = loadInjectorConfig({
      ...MINIMAL,
      FIRSTOPS_INJECTOR_HOST: '127.0.0.1',
      FIRSTOPS_INJECTOR_PORT: '9443',
      FIRSTOPS_INJECTOR_METRICS_PORT: '9324',
      FIRSTOPS_INJECTOR_TLS_RELOAD_INTERVAL_MS: '0',
      FIRSTOPS_INJECTOR_MAX_REQUEST_BYTES: '2048',
      FIRSTOPS_INJECTOR_DRAIN_TIMEOUT_MS: '100',
      FIRSTOPS_INJECTOR_SIDECAR_IMAGE_PULL_POLICY: 'Always',
      FIRSTOPS_INJECTOR_NATIVE_SIDECAR: 'false',
      FIRSTOPS_INJECTOR_SIDECAR_ENV: '{"FIRSTOPS_FAIL_MODE":"open","FIRSTOPS_UPSTREAM_OPENAI":"https://api.openai.com","CUSTOM":"x"}',
      FIRSTOPS_INJECTOR_SIDECAR_RESOURCES: '{"requests":{"cpu":"10m"},"limits":{"cpu":"1","memory":"1Gi"}}',
      FIRSTOPS_INJECTOR_POLICY_CONFIGMAP: 'org-policy',
      FIRSTOPS_INJECTOR_POLICY_KEY: 'rules.json',
      FIRSTOPS_INJECTOR_BASE_URL_ENV: 'false',
      FIRSTOPS_INJECTOR_MISSING_SECRET: 'warn',
      FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES: 'firstops-system,monitoring',
    });
    assert.equal(config.port, 9443);
    assert.equal(config.metricsPort, 9324);
    assert.equal(config.tlsReloadIntervalMs, 0);
    assert.equal(config.sidecar.native, false);
    assert.deepEqual([...config.sidecar.env.keys()], ['FIRSTOPS_FAIL_MODE', 'FIRSTOPS_UPSTREAM_OPENAI', 'CUSTOM']);
    assert.deepEqual(config.sidecar.resources, { requests: { cpu: '10m' }, limits: { cpu: '1', memory: '1Gi' } });
    assert.equal(config.missingSecretAction, 'warn');
    assert.deepEqual([...config.excludedNamespaces].sort(), ['firstops-system', 'kube-system', 'monitoring']);
  });

  it('reports every bad variable at once, each by name', () => {
    const issues = issuesOf({
      FIRSTOPS_INJECTOR_PORT: '70000',
      FIRSTOPS_INJECTOR_NATIVE_SIDECAR: 'yes',
      FIRSTOPS_INJECTOR_SIDECAR_IMAGE_PULL_POLICY: 'Sometimes',
      FIRSTOPS_INJECTOR_MISSING_SECRET: 'ignore',
      FIRSTOPS_INJECTOR_SIDECAR_ENV: '{"FIRSTOPS_FAIL_MODE":"maybe","FIRSTOPS_GATEWAY_URL":"not a url","1BAD":"x","N":3,"FIRSTOPS_POLICY_BUDGET_MS":"0","FIRSTOPS_POLICY_WORKERS":"many"}',
      FIRSTOPS_INJECTOR_SIDECAR_RESOURCES: '{"requests":{"memory":"2Gi","gpu":"1"},"limits":{"memory":"1Gi"}}',
      FIRSTOPS_INJECTOR_POLICY_CONFIGMAP: 'Bad_Name',
      FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES: 'ok,Not OK',
    });
    const text = issues.join('\n');
    for (const expected of [
      'FIRSTOPS_INJECTOR_TLS_CERT is required',
      'FIRSTOPS_INJECTOR_TLS_KEY is required',
      'FIRSTOPS_INJECTOR_SIDECAR_IMAGE is required',
      'FIRSTOPS_INJECTOR_PORT must be an integer between 0 and 65535',
      'FIRSTOPS_INJECTOR_NATIVE_SIDECAR must be "true" or "false"',
      'FIRSTOPS_INJECTOR_SIDECAR_IMAGE_PULL_POLICY must be one of Always, IfNotPresent, Never',
      'FIRSTOPS_INJECTOR_MISSING_SECRET must be one of reject, warn',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: FIRSTOPS_FAIL_MODE="maybe": expected one of closed, open',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: FIRSTOPS_GATEWAY_URL="not a url": expected an absolute http:// or https:// URL',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: key is not a valid environment variable name ("1BAD")',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: N must be a string',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: FIRSTOPS_POLICY_BUDGET_MS="0": expected an integer from 1 to 600000',
      'FIRSTOPS_INJECTOR_SIDECAR_ENV: FIRSTOPS_POLICY_WORKERS="many": expected an integer from 1 to 64',
      'FIRSTOPS_INJECTOR_SIDECAR_RESOURCES: requests.gpu is not supported',
      'FIRSTOPS_INJECTOR_SIDECAR_RESOURCES: memory request 2Gi exceeds its limit 1Gi',
      'FIRSTOPS_INJECTOR_POLICY_CONFIGMAP must be a Kubernetes object name',
      'FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES entry "Not OK" is not a namespace name',
    ]) {
      assert.ok(text.includes(expected), `missing issue ${JSON.stringify(expected)} in:\n${text}`);
    }
    assert.equal(issues.length, 17);
  });

  it('refuses at start every sidecar env value the sidecar itself would refuse (its own loadConfig)', () => {
    const issues = issuesOf({
      ...MINIMAL,
      FIRSTOPS_INJECTOR_SIDECAR_ENV: JSON.stringify({
        FIRSTOPS_MAX_BODY_BYTES: '3000000000',
        FIRSTOPS_POLICY_TIMEOUT_MS: '600001',
        FIRSTOPS_DRAIN_TIMEOUT_MS: '3600001',
        FIRSTOPS_RESPONSE_TIMEOUT_MS: '0',
        FIRSTOPS_REMOTE_POLICY: 'sometimes',
        FIRSTOPS_GATEWAY_URL: 'https://user:s3cret@gw.example.com',
        FIRSTOPS_UPSTREAM_OPENAI: 'https://api.openai.com/v1?key=x',
        FIRSTOPS_UPSTREAM_ANTHROPIC: 'https://api.anthropic.com/#frag',
        FIRSTOPS_FAILMODE: 'open',
        FIRSTOPS_PORT: '9323',
        HTTPS_PROXY: 'http://proxy:3128',
      }),
    });
    const text = issues.join('\n');
    for (const expected of [
      'FIRSTOPS_MAX_BODY_BYTES="3000000000": expected an integer from 1 to 2147483647',
      'FIRSTOPS_POLICY_TIMEOUT_MS="600001": expected an integer from 1 to 600000',
      'FIRSTOPS_DRAIN_TIMEOUT_MS="3600001": expected an integer from 0 to 3600000',
      'FIRSTOPS_RESPONSE_TIMEOUT_MS="0"',
      'FIRSTOPS_REMOTE_POLICY="sometimes"',
      'FIRSTOPS_GATEWAY_URL=',
      'expected a URL without credentials',
      'FIRSTOPS_UPSTREAM_OPENAI="https://api.openai.com/v1?key=x": expected a URL without query or fragment',
      'FIRSTOPS_UPSTREAM_ANTHROPIC="https://api.anthropic.com/#frag": expected a URL without query or fragment',
      'FIRSTOPS_FAILMODE is not a variable the sidecar reads',
      'FIRSTOPS_ADMIN_PORT must differ from FIRSTOPS_PORT',
    ]) {
      assert.ok(text.includes(expected), `missing issue ${JSON.stringify(expected)} in:\n${text}`);
    }
    assert.ok(issues.every((i) => i.startsWith('FIRSTOPS_INJECTOR_SIDECAR_ENV: ')), text);
    assert.ok(!text.includes('s3cret'), 'credentials are never echoed');
    assert.ok(!text.includes('HTTPS_PROXY'), 'non-FIRSTOPS names are the application\'s business');
    assert.equal(issues.length, 10, text);
  });

  it('accepts the bounds the sidecar accepts', () => {
    const config = loadInjectorConfig({
      ...MINIMAL,
      FIRSTOPS_INJECTOR_SIDECAR_ENV: JSON.stringify({
        FIRSTOPS_MAX_BODY_BYTES: '2147483647',
        FIRSTOPS_POLICY_TIMEOUT_MS: '600000',
        FIRSTOPS_DRAIN_TIMEOUT_MS: '0',
        FIRSTOPS_REMOTE_POLICY: 'off',
        FIRSTOPS_UPSTREAM_AZURE_OPENAI: 'https://x.openai.azure.com/openai',
      }),
    });
    assert.equal(config.sidecar.env.get('FIRSTOPS_DRAIN_TIMEOUT_MS'), '0');
  });

  it('rejects malformed JSON and conflicting policy settings', () => {
    const issues = issuesOf({
      ...MINIMAL,
      FIRSTOPS_INJECTOR_SIDECAR_RESOURCES: '{requests:',
      FIRSTOPS_INJECTOR_SIDECAR_ENV: '{"FIRSTOPS_POLICY_FILE":"/etc/p.yaml"}',
      FIRSTOPS_INJECTOR_POLICY_CONFIGMAP: 'org-policy',
    });
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(issues[0] ?? '', /^FIRSTOPS_INJECTOR_SIDECAR_RESOURCES is not valid JSON/);
    assert.match(issues[1] ?? '', /FIRSTOPS_INJECTOR_POLICY_CONFIGMAP and FIRSTOPS_POLICY_FILE .* are mutually exclusive/);
  });

  it('treats empty strings as unset', () => {
    const config = loadInjectorConfig({ ...MINIMAL, FIRSTOPS_INJECTOR_METRICS_PORT: '', FIRSTOPS_INJECTOR_POLICY_CONFIGMAP: ' ' });
    assert.equal(config.metricsPort, undefined);
    assert.equal(config.sidecar.policyConfigMap, undefined);
  });
});
