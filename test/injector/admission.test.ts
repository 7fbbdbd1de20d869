import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IContainer, IPod } from 'kubernetes-models/v1';
import { parseAdmissionReview, review } from '../../src/injector/admission.ts';
import { InjectorError } from '../../src/injector/errors.ts';
import { parseAnnotations } from '../../src/injector/annotations.ts';
import { escapePointerSegment } from '../../src/injector/patch.ts';
import { buildSidecar } from '../../src/injector/sidecar.ts';
import {
  TEST_IMAGE, applyAndValidate, barePodReview, decodePatch, deploymentPodReview, testConfig,
} from './helpers/reviews.ts';
import type { Review } from './helpers/reviews.ts';

const SIDECAR = 'firstops-sidecar';

function inject(input: Review, config = testConfig()): { pod: IPod; ops: ReturnType<typeof decodePatch>; body: ReturnType<typeof review>['body'] } {
  const result = review(input, config);
  assert.equal(result.body.response.uid, input.request.uid, 'uid must be echoed');
  assert.equal(result.body.response.allowed, true, JSON.stringify(result.body.response.status));
  const ops = decodePatch(result.body);
  return { pod: applyAndValidate(input.request.object, ops), ops, body: result.body };
}

function envOf(container: IContainer | undefined): Map<string, string | undefined> {
  return new Map((container?.env ?? []).map((e) => [e.name, e.value]));
}

function sidecarOf(pod: IPod): IContainer {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const found = all.filter((c) => c.name === SIDECAR);
  assert.equal(found.length, 1, 'exactly one sidecar');
  return found[0]!;
}

function rejection(input: Review, config = testConfig()): string {
  const result = review(input, config);
  assert.equal(result.body.response.uid, input.request.uid);
  assert.equal(result.body.response.allowed, false);
  assert.equal(result.body.response.patch, undefined);
  assert.equal(result.body.response.status?.code, 403);
  return result.body.response.status?.message ?? '';
}

function skipped(input: Review, config = testConfig()): string {
  const result = review(input, config);
  assert.equal(result.body.response.allowed, true);
  assert.equal(result.body.response.patch, undefined, 'a skipped pod gets no patch');
  assert.equal(result.decision.outcome, 'skipped');
  return result.decision.outcome === 'skipped' ? result.decision.reason : '';
}

describe('injection into a Deployment-created pod (generateName, no name)', () => {
  const input = deploymentPodReview();
  let pod: IPod;
  let ops: ReturnType<typeof decodePatch>;
  before(() => {
    ({ pod, ops } = inject(input));
  });

  it('adds the sidecar as a native sidecar, creating spec.initContainers', () => {
    assert.equal(input.request.object.metadata?.name, undefined);
    assert.ok(ops.some((op) => op.op === 'add' && op.path === '/spec/initContainers'));
    assert.deepEqual(pod.spec?.initContainers?.map((c) => c.name), [SIDECAR]);
    const sidecar = sidecarOf(pod);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(sidecar.image, TEST_IMAGE);
    assert.deepEqual(pod.spec?.containers.map((c) => c.name), ['agent', 'tool-runner']);
  });

  it('mounts the identity Secret read-only at the identity dir and appends to existing volumes', () => {
    assert.ok(ops.some((op) => op.path === '/spec/volumes/-'));
    assert.deepEqual(pod.spec?.volumes?.map((v) => v.name), ['kube-api-access-x7k2p', 'firstops-identity']);
    const volume = pod.spec?.volumes?.find((v) => v.name === 'firstops-identity');
    assert.equal(volume?.secret?.secretName, 'support-agent-identity');
    const sidecar = sidecarOf(pod);
    assert.deepEqual(sidecar.volumeMounts, [{ name: 'firstops-identity', mountPath: '/var/run/secrets/firstops', readOnly: true }]);
    assert.equal(envOf(sidecar).get('FIRSTOPS_IDENTITY_DIR'), '/var/run/secrets/firstops');
  });

  it('passes the chart env to the sidecar', () => {
    const env = envOf(sidecarOf(pod));
    assert.equal(env.get('FIRSTOPS_GATEWAY_URL'), 'https://api.firstops.dev');
    assert.equal(env.get('FIRSTOPS_FAIL_MODE'), 'closed');
    assert.equal(env.get('FIRSTOPS_UPSTREAM_OPENAI'), 'https://api.openai.com');
    assert.equal(env.has('FIRSTOPS_POLICY_FILE'), false);
  });

  it('has probes on the admin port, resources and a restricted security context', () => {
    const sidecar = sidecarOf(pod);
    assert.deepEqual(sidecar.ports, [{ name: 'firstops-admin', containerPort: 9323, protocol: 'TCP' }]);
    assert.equal(sidecar.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(sidecar.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(sidecar.startupProbe?.httpGet?.path, '/readyz');
    for (const probe of [sidecar.livenessProbe, sidecar.readinessProbe, sidecar.startupProbe]) {
      assert.equal(probe?.httpGet?.port, 9323);
    }
    assert.deepEqual(sidecar.resources, { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    assert.deepEqual(sidecar.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('adds base URLs to application containers, keeping values a container already sets', () => {
    const [agent, runner] = pod.spec?.containers ?? [];
    const agentEnv = envOf(agent);
    assert.equal(agentEnv.get('OPENAI_BASE_URL'), 'http://my-own-gateway:8080/v1', 'existing value kept');
    assert.equal(agentEnv.get('ANTHROPIC_BASE_URL'), 'http://127.0.0.1:9322/llm/anthropic');
    assert.equal(agent?.env?.filter((e) => e.name === 'OPENAI_BASE_URL').length, 1, 'no duplicate entry');
    assert.deepEqual(agent?.env?.slice(0, 3).map((e) => e.name), ['LOG_FORMAT', 'OPENAI_BASE_URL', 'POD_NAME'], 'existing entries untouched');
    assert.ok(ops.some((op) => op.path === '/spec/containers/0/env/-'), 'present env array is appended to');
    assert.ok(ops.some((op) => op.path === '/spec/containers/1/env'), 'absent env array is created');
    assert.deepEqual(runner?.env, [
      { name: 'OPENAI_BASE_URL', value: 'http://127.0.0.1:9322/llm/openai/v1' },
      { name: 'ANTHROPIC_BASE_URL', value: 'http://127.0.0.1:9322/llm/anthropic' },
    ]);
    assert.equal(envOf(sidecarOf(pod)).has('OPENAI_BASE_URL'), false, 'the sidecar itself gets no base URL');
  });

  it('marks the pod with an escaped annotation path and the injected label', () => {
    assert.ok(ops.some((op) => op.op === 'add' && op.path === '/metadata/annotations/firstops.dev~1status'));
    assert.ok(ops.some((op) => op.op === 'add' && op.path === '/metadata/labels/firstops.dev~1sidecar'));
    assert.equal(pod.metadata?.annotations?.['firstops.dev/status'], 'injected');
    assert.equal(pod.metadata?.labels?.['firstops.dev/sidecar'], 'injected');
    assert.equal(pod.metadata?.labels?.app, 'support-agent', 'existing labels kept');
  });

  it('is idempotent: the injected pod, reviewed again, is left alone', () => {
    const again = deploymentPodReview();
    again.request.object = pod;
    assert.equal(skipped(again), 'already-injected');
  });
});

describe('other pod shapes and modes', () => {
  it('bare pod without labels, env or volumes: arrays and maps are created whole', () => {
    const { pod, ops } = inject(barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' }));
    const paths = ops.map((op) => op.path);
    for (const path of ['/metadata/labels', '/spec/volumes', '/spec/containers/0/env', '/spec/initContainers']) {
      assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`);
    }
    assert.equal(pod.metadata?.name, 'solo-agent');
  });

  it('existing init containers: the sidecar is appended after them with /-', () => {
    const input = deploymentPodReview();
    input.request.object.spec!.initContainers = [{ name: 'migrate', image: 'registry.example.com/migrate:1' }];
    const { pod, ops } = inject(input);
    assert.ok(ops.some((op) => op.path === '/spec/initContainers/-'));
    assert.deepEqual(pod.spec?.initContainers?.map((c) => c.name), ['migrate', SIDECAR]);
  });

  it('classic mode: a regular container without restartPolicy', () => {
    const input = deploymentPodReview();
    const { pod, ops } = inject(input, testConfig({ FIRSTOPS_INJECTOR_NATIVE_SIDECAR: 'false' }));
    assert.ok(ops.some((op) => op.path === '/spec/containers/-'));
    assert.equal(pod.spec?.initContainers, undefined);
    assert.deepEqual(pod.spec?.containers.map((c) => c.name), ['agent', 'tool-runner', SIDECAR]);
    assert.equal(sidecarOf(pod).restartPolicy, undefined);
    assert.equal(envOf(pod.spec?.containers[2]).has('OPENAI_BASE_URL'), false, 'the sidecar gets no base URL');
    assert.equal(envOf(pod.spec?.containers[1]).get('OPENAI_BASE_URL'), 'http://127.0.0.1:9322/llm/openai/v1');
  });

  it('classic mode is also idempotent', () => {
    const config = testConfig({ FIRSTOPS_INJECTOR_NATIVE_SIDECAR: 'false' });
    const { pod } = inject(deploymentPodReview(), config);
    const again = deploymentPodReview();
    again.request.object = pod;
    delete again.request.object.metadata!.annotations!['firstops.dev/status'];
    assert.equal(skipped(again, config), 'already-injected', 'a pod carrying the container is left alone even without the annotation');
  });

  it('a pod without metadata is simply not opted in', () => {
    const input = barePodReview({});
    input.request.object.metadata = undefined;
    assert.equal(skipped(input), 'not-requested');
  });
});

describe('per-pod annotations', () => {
  it('override upstreams, policy, fail mode, log level, resources and base URL env', () => {
    const input = barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/upstream-openai': 'https://openai-proxy.internal:8443',
      'firstops.dev/upstream-azure-openai': 'https://example.openai.azure.com',
      'firstops.dev/policy-configmap': 'agent-policy',
      'firstops.dev/policy-key': 'rules.yaml',
      'firstops.dev/fail-mode': 'open',
      'firstops.dev/log-level': 'debug',
      'firstops.dev/cpu-request': '100m',
      'firstops.dev/cpu-limit': '1',
      'firstops.dev/memory-request': '128Mi',
      'firstops.dev/memory-limit': '512Mi',
      'firstops.dev/base-url-env': 'false',
    });
    const { pod } = inject(input);
    const sidecar = sidecarOf(pod);
    const env = envOf(sidecar);
    assert.equal(env.get('FIRSTOPS_UPSTREAM_OPENAI'), 'https://openai-proxy.internal:8443');
    assert.equal(env.get('FIRSTOPS_UPSTREAM_AZURE_OPENAI'), 'https://example.openai.azure.com');
    assert.equal(env.get('FIRSTOPS_POLICY_FILE'), '/etc/firstops/policy/rules.yaml');
    assert.equal(env.get('FIRSTOPS_FAIL_MODE'), 'open');
    assert.equal(env.get('FIRSTOPS_LOG_LEVEL'), 'debug');
    assert.deepEqual(sidecar.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } });
    assert.deepEqual(sidecar.volumeMounts?.map((m) => m.mountPath), ['/var/run/secrets/firstops', '/etc/firstops/policy']);
    assert.equal(pod.spec?.volumes?.find((v) => v.name === 'firstops-policy')?.configMap?.name, 'agent-policy');
    assert.equal(pod.spec?.containers[0]?.env, undefined, 'base URL env opted out');
  });

  it('firstops.dev/debug-port sets the debug listener port, or off; it is never a container port', () => {
    const base = { 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' };
    const plain = sidecarOf(inject(barePodReview(base)).pod);
    assert.equal(envOf(plain).has('FIRSTOPS_DEBUG_PORT'), false, 'the sidecar default (9324) applies');
    assert.deepEqual(plain.ports?.map((p) => p.containerPort), [9323], 'only the admin port is declared');
    const moved = sidecarOf(inject(barePodReview({ ...base, 'firstops.dev/debug-port': '19324' })).pod);
    assert.equal(envOf(moved).get('FIRSTOPS_DEBUG_PORT'), '19324');
    assert.deepEqual(moved.ports?.map((p) => p.containerPort), [9323]);
    const off = sidecarOf(inject(barePodReview({ ...base, 'firstops.dev/debug-port': 'off' })).pod);
    assert.equal(envOf(off).get('FIRSTOPS_DEBUG_PORT'), 'off');

    assert.match(rejection(barePodReview({ ...base, 'firstops.dev/debug-port': '0' })), /firstops\.dev\/debug-port must be off or an integer between 1 and 65535/);
    assert.match(rejection(barePodReview({ ...base, 'firstops.dev/debug-port': 'yes' })), /firstops\.dev\/debug-port must be off or an integer/);
    assert.match(rejection(barePodReview({ ...base, 'firstops.dev/debug-port': '9323' })),
      /annotation firstops\.dev\/debug-port: the sidecar would refuse FIRSTOPS_DEBUG_PORT="9323": expected a port different from FIRSTOPS_PORT and FIRSTOPS_ADMIN_PORT/);
  });

  it('chart-level policy ConfigMap is mounted with the chart key', () => {
    const { pod } = inject(barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' }),
      testConfig({ FIRSTOPS_INJECTOR_POLICY_CONFIGMAP: 'org-policy' }));
    assert.equal(envOf(sidecarOf(pod)).get('FIRSTOPS_POLICY_FILE'), '/etc/firstops/policy/policy.yaml');
  });

  it('invalid values are rejected, every bad annotation named', () => {
    const message = rejection(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'Not_A_Name',
      'firstops.dev/fail-mode': 'sometimes',
      'firstops.dev/upstream-openai': 'ftp://nope',
      'firstops.dev/memory-limit': 'lots',
      'firstops.dev/base-url-env': 'no',
    }));
    assert.match(message, /^firstops-sidecar \[POD_ANNOTATION_INVALID\]/);
    for (const key of ['agent-secret', 'fail-mode', 'upstream-openai', 'memory-limit', 'base-url-env']) {
      assert.ok(message.includes(`firstops.dev/${key}`), `${key} named in: ${message}`);
    }
  });

  it('upstream URLs the sidecar would refuse (credentials, query, fragment) are rejected, credentials masked', () => {
    const message = rejection(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/upstream-openai': 'https://user:s3cret@openai.internal',
      'firstops.dev/upstream-anthropic': 'https://anthropic.internal/?x=1',
      'firstops.dev/upstream-mistral': 'https://mistral.internal/#f',
    }));
    assert.match(message, /firstops\.dev\/upstream-openai must be a URL without credentials/);
    assert.match(message, /firstops\.dev\/upstream-anthropic must be a URL without query or fragment/);
    assert.match(message, /firstops\.dev\/upstream-mistral must be a URL without query or fragment/);
    assert.ok(!message.includes('s3cret'));
  });

  it('the final per-pod env goes through the sidecar\'s own loader, naming the annotation or chart value at fault', () => {
    const config = testConfig();
    const overrides = parseAnnotations({ 'firstops.dev/agent-secret': 'solo' }).overrides;
    // Values that bypassed the annotation and startup checks still cannot reach a pod.
    const plan = buildSidecar(
      { ...config.sidecar, env: new Map([['FIRSTOPS_MAX_BODY_BYTES', '2147483648']]) },
      {
        ...overrides,
        upstreams: new Map([['FIRSTOPS_UPSTREAM_OPENAI', 'https://h/?q']]),
        upstreamAnnotations: new Map([['FIRSTOPS_UPSTREAM_OPENAI', 'firstops.dev/upstream-openai']]),
        logLevel: 'loud',
      },
      'solo',
    );
    assert.ok('problems' in plan);
    const text = plan.problems.join('\n');
    assert.match(text, /annotation firstops\.dev\/upstream-openai: the sidecar would refuse FIRSTOPS_UPSTREAM_OPENAI=/);
    assert.match(text, /annotation firstops\.dev\/log-level: the sidecar would refuse FIRSTOPS_LOG_LEVEL="loud"/);
    assert.match(text, /sidecar env \(chart values\): the sidecar would refuse FIRSTOPS_MAX_BODY_BYTES="2147483648": expected an integer from 1 to 2147483647/);
  });

  it('egress: proxy annotations become the sidecar\'s proxy env; a CA bundle is mounted and named in NODE_EXTRA_CA_CERTS', () => {
    const { pod } = inject(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/https-proxy': 'http://proxy.corp:3128',
      'firstops.dev/http-proxy': 'http://proxy.corp:3128',
      'firstops.dev/no-proxy': '.svc,.cluster.local,10.0.0.0/8',
      'firstops.dev/proxy-mode': 'env',
      'firstops.dev/ca-secret': 'corp-ca',
      'firstops.dev/ca-key': 'bundle.pem',
    }), testConfig({ FIRSTOPS_INJECTOR_CA_CONFIGMAP: 'org-ca' }));
    const sidecar = sidecarOf(pod);
    const env = envOf(sidecar);
    assert.equal(env.get('HTTPS_PROXY'), 'http://proxy.corp:3128');
    assert.equal(env.get('HTTP_PROXY'), 'http://proxy.corp:3128');
    assert.equal(env.get('NO_PROXY'), '.svc,.cluster.local,10.0.0.0/8');
    assert.equal(env.get('FIRSTOPS_PROXY_MODE'), 'env');
    assert.equal(env.get('NODE_EXTRA_CA_CERTS'), '/etc/firstops/ca/bundle.pem');
    assert.ok(sidecar.volumeMounts?.some((m) => m.name === 'firstops-ca' && m.mountPath === '/etc/firstops/ca' && m.readOnly));
    const volume = pod.spec?.volumes?.find((v) => v.name === 'firstops-ca');
    assert.equal(volume?.secret?.secretName, 'corp-ca', 'the annotation overrides the chart\'s ConfigMap');
    assert.equal(pod.spec?.containers[0]?.env?.some((e) => e.name === 'HTTPS_PROXY'), false, 'application containers keep their own egress settings');

    const chart = inject(barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' }), testConfig({ FIRSTOPS_INJECTOR_CA_CONFIGMAP: 'org-ca' })).pod;
    assert.equal(chart.spec?.volumes?.find((v) => v.name === 'firstops-ca')?.configMap?.name, 'org-ca');
    assert.equal(envOf(sidecarOf(chart)).get('NODE_EXTRA_CA_CERTS'), '/etc/firstops/ca/ca.crt');
  });

  it('egress annotations the sidecar would refuse are rejected, naming the annotation, credentials masked', () => {
    const message = rejection(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/proxy-mode': 'sometimes',
      'firstops.dev/ca-configmap': 'a',
      'firstops.dev/ca-secret': 'b',
    }));
    assert.match(message, /firstops\.dev\/proxy-mode/);
    assert.match(message, /mutually exclusive/);
    const socks = rejection(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/https-proxy': 'socks5://user:hunter2@proxy:1080',
    }));
    assert.match(socks, /annotation firstops\.dev\/https-proxy: the sidecar would refuse HTTPS_PROXY=.*SOCKS is not supported/);
    assert.ok(!socks.includes('hunter2'));
    assert.match(rejection(barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo', 'firstops.dev/ca-key': 'x.pem' })), /ca-key needs a CA bundle/);
  });

  it('mTLS: a client certificate Secret per upstream is mounted and named in FIRSTOPS_TLS_CLIENT_CERT_/KEY_<NAME>', () => {
    const { pod } = inject(barePodReview({
      'firstops.dev/inject': 'true',
      'firstops.dev/agent-secret': 'solo',
      'firstops.dev/upstream-azure-openai': 'https://example.openai.azure.com',
      'firstops.dev/client-cert-azure-openai': 'azure-client-tls',
    }), testConfig({ FIRSTOPS_INJECTOR_CLIENT_CERTS: JSON.stringify({ openai: 'org-client-tls' }) }));
    const sidecar = sidecarOf(pod);
    const env = envOf(sidecar);
    assert.equal(env.get('FIRSTOPS_TLS_CLIENT_CERT_AZURE_OPENAI'), '/etc/firstops/client-certs/azure-openai/tls.crt');
    assert.equal(env.get('FIRSTOPS_TLS_CLIENT_KEY_AZURE_OPENAI'), '/etc/firstops/client-certs/azure-openai/tls.key');
    assert.equal(env.get('FIRSTOPS_TLS_CLIENT_CERT_OPENAI'), '/etc/firstops/client-certs/openai/tls.crt');
    assert.equal(pod.spec?.volumes?.find((v) => v.name === 'firstops-tls-azure-openai')?.secret?.secretName, 'azure-client-tls');
    assert.equal(pod.spec?.volumes?.find((v) => v.name === 'firstops-tls-openai')?.secret?.secretName, 'org-client-tls');
    assert.ok(sidecar.volumeMounts?.some((m) => m.mountPath === '/etc/firstops/client-certs/azure-openai' && m.readOnly));

    const unknown = rejection(barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo', 'firstops.dev/client-cert-nope': 'x-tls' }));
    assert.match(unknown, /annotation firstops\.dev\/client-cert-nope: the sidecar would refuse FIRSTOPS_TLS_CLIENT_CERT_NOPE=.*configured upstream/);
  });

  it('a request above the chart limit is rejected before the API server would', () => {
    const message = rejection(barePodReview({
      'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo', 'firstops.dev/memory-request': '1Gi',
    }));
    assert.match(message, /memory request 1Gi exceeds its limit 256Mi/);
  });

  it('policy-key without any policy ConfigMap is rejected', () => {
    const message = rejection(barePodReview({
      'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo', 'firstops.dev/policy-key': 'x.yaml',
    }));
    assert.match(message, /firstops\.dev\/policy-configmap/);
  });

  it('unknown firstops.dev annotations are injected with a warning', () => {
    const { body } = inject(barePodReview({
      'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo', 'firstops.dev/failmode': 'open',
    }));
    assert.deepEqual(body.response.warnings, ['unknown annotation firstops.dev/failmode ignored by the FirstOps injector']);
  });

  it('a hostNetwork pod is rejected: the sidecar ports would bind on the node', () => {
    const input = barePodReview({ 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' });
    input.request.object.spec!.hostNetwork = true;
    const message = rejection(input);
    assert.match(message, /^firstops-sidecar \[POD_HOST_NETWORK\]: the pod uses hostNetwork: true, so the sidecar's ports 9322 \(proxy\) and 9323 \(admin/);
    assert.match(message, /remove firstops\.dev\/inject/);
    input.request.object.spec!.hostNetwork = false;
    inject(input);
  });

  it('a volume name the injector needs is a conflict', () => {
    const input = deploymentPodReview();
    input.request.object.spec!.volumes!.push({ name: 'firstops-identity', emptyDir: {} });
    assert.match(rejection(input), /\[POD_NAME_CONFLICT\].*firstops-identity/);
  });
});

describe('pods that are not injected', () => {
  it('missing Secret annotation is rejected by default with what to add', () => {
    const input = deploymentPodReview();
    delete input.request.object.metadata!.annotations!['firstops.dev/agent-secret'];
    const message = rejection(input);
    assert.match(message, /\[POD_AGENT_SECRET_MISSING\]/);
    assert.match(message, /add the annotation firstops\.dev\/agent-secret: <name of a Secret in namespace team-a with keys agent-id and private-key\.pem>/);
  });

  it('missing Secret in warn mode: admitted without sidecar, status annotation and a warning', () => {
    const input = deploymentPodReview();
    delete input.request.object.metadata!.annotations!['firstops.dev/agent-secret'];
    const config = testConfig({ FIRSTOPS_INJECTOR_MISSING_SECRET: 'warn' });
    const result = review(input, config);
    assert.equal(result.body.response.allowed, true);
    assert.match(result.body.response.warnings?.[0] ?? '', /POD_AGENT_SECRET_MISSING/);
    const pod = applyAndValidate(input.request.object, decodePatch(result.body));
    assert.equal(pod.metadata?.annotations?.['firstops.dev/status'], 'skipped-missing-secret');
    assert.equal(pod.spec?.initContainers, undefined);
    assert.equal(pod.spec?.containers.length, 2);
  });

  it('kube-system is never injected, even when asked', () => {
    const input = deploymentPodReview();
    input.request.namespace = 'kube-system';
    input.request.object.metadata!.namespace = 'kube-system';
    assert.equal(skipped(input), 'excluded-namespace');
    assert.equal(skipped(input, testConfig({ FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES: 'other' })), 'excluded-namespace');
  });

  it('configured excluded namespaces are skipped', () => {
    const input = deploymentPodReview();
    assert.equal(skipped(input, testConfig({ FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES: 'firstops-system, team-a' })), 'excluded-namespace');
  });

  it("the injector's own pods are never injected", () => {
    const input = deploymentPodReview();
    input.request.object.metadata!.labels!['firstops.dev/injector'] = 'true';
    assert.equal(skipped(input), 'injector-pod');
  });

  it('pods that do not opt in, or opt out, are left alone', () => {
    assert.equal(skipped(barePodReview({})), 'not-requested');
    assert.equal(skipped(barePodReview({ 'firstops.dev/inject': 'false', 'firstops.dev/agent-secret': 'x' })), 'not-requested');
  });

  it('operations other than CREATE and other kinds are left alone', () => {
    const update = deploymentPodReview();
    update.request.operation = 'UPDATE';
    assert.equal(skipped(update), 'not-create');
    const other = deploymentPodReview();
    other.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    assert.equal(skipped(other), 'not-a-pod');
  });
});

describe('AdmissionReview envelope', () => {
  const cases: Array<[string, unknown]> = [
    ['not an object', 'hello'],
    ['wrong apiVersion', { ...deploymentPodReview(), apiVersion: 'admission.k8s.io/v1beta1' }],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['no uid', { ...deploymentPodReview(), request: { ...deploymentPodReview().request, uid: '' } }],
  ];
  for (const [name, body] of cases) {
    it(`rejects ${name} with ADMISSION_REVIEW_INVALID`, () => {
      assert.throws(() => review(body, testConfig()), (err: unknown) => err instanceof InjectorError && err.code === 'ADMISSION_REVIEW_INVALID');
    });
  }

  it('an opted-in pod of an unexpected shape is admitted unchanged with a warning (API validation reports it), not an HTTP error', () => {
    const optedIn = { 'firstops.dev/inject': 'true', 'firstops.dev/agent-secret': 'solo' };
    for (const object of [
      { metadata: { annotations: optedIn }, spec: {} },
      { metadata: { annotations: optedIn }, spec: { containers: 'agent' } },
      { metadata: { annotations: optedIn, labels: { app: 3 } }, spec: { containers: [{ name: 'a' }] } },
      { metadata: { annotations: { ...optedIn, 'firstops.dev/fail-mode': 7 } }, spec: { containers: [{ name: 'a' }] } },
    ]) {
      const input = deploymentPodReview();
      (input.request as { object: unknown }).object = object;
      const result = review(input, testConfig());
      assert.equal(result.body.response.uid, input.request.uid);
      assert.equal(result.body.response.allowed, true);
      assert.equal(result.body.response.patch, undefined);
      assert.deepEqual(result.decision, { outcome: 'skipped', reason: 'invalid-pod', warnings: result.body.response.warnings });
      assert.match(result.body.response.warnings?.[0] ?? '', /^FirstOps sidecar not injected: the pod could not be read \(.+\)$/);
    }
  });

  it('exclusion and opt-in are decided before the pod is read: a malformed pod not concerned is skipped silently', () => {
    const malformed = (annotations: Record<string, unknown>, labels: Record<string, unknown> = {}, namespace = 'team-a') => {
      const input = deploymentPodReview();
      input.request.namespace = namespace;
      (input.request as { object: unknown }).object = { metadata: { annotations, labels }, spec: { containers: 'x' } };
      return input;
    };
    const reasonOf = (input: Review) => {
      const result = review(input, testConfig());
      assert.equal(result.body.response.allowed, true);
      assert.equal(result.body.response.warnings, undefined);
      return result.decision.outcome === 'skipped' ? result.decision.reason : result.decision.outcome;
    };
    assert.equal(reasonOf(malformed({ 'firstops.dev/inject': 'true' }, {}, 'kube-system')), 'excluded-namespace');
    assert.equal(reasonOf(malformed({ 'firstops.dev/inject': 'true' }, { 'firstops.dev/injector': 'true' })), 'injector-pod');
    assert.equal(reasonOf(malformed({ other: 1 })), 'not-requested');
    assert.equal(reasonOf(malformed({ 'firstops.dev/inject': true })), 'not-requested');
  });

  it('takes the namespace from the object when the request has none', () => {
    const input = deploymentPodReview();
    input.request.namespace = '';
    assert.equal(parseAdmissionReview(input).namespace, 'team-a');
  });

  it('escapes JSON pointer segments (RFC 6901)', () => {
    assert.equal(escapePointerSegment('firstops.dev/status'), 'firstops.dev~1status');
    assert.equal(escapePointerSegment('a~b/c'), 'a~0b~1c');
  });
});
