/**
 * What gets injected: the sidecar container and the volumes it needs, built
 * from the chart-level defaults with the pod's annotation overrides on top.
 */
import type { PodOverrides } from './annotations.ts';
import { ANNOTATIONS } from './annotations.ts';
import type { PullPolicy, ResourceRequirements, SidecarDefaults } from './config.ts';
import { RESOURCE_NAMES } from './annotations.ts';
import { checkResourceOrder } from './config.ts';
import {
  CA_MOUNT_DIR, CLIENT_CERT_MOUNT_DIR, clientCertEnvNames, DEFAULT_ADMIN_PORT, DEFAULT_IDENTITY_DIR, DEFAULT_PROXY_PORT, POLICY_MOUNT_DIR, SIDECAR_ENV, checkSidecarEnv,
  portFromEnv, problemVariable,
} from './sidecar-env.ts';

export const SIDECAR_CONTAINER_NAME = 'firstops-sidecar';
export const IDENTITY_VOLUME_NAME = 'firstops-identity';
export const POLICY_VOLUME_NAME = 'firstops-policy';
export const CA_VOLUME_NAME = 'firstops-ca';
/** `firstops-tls-<upstream name>`: one volume per client certificate Secret. */
export const CLIENT_CERT_VOLUME_PREFIX = 'firstops-tls-';
export const ADMIN_PORT_NAME = 'firstops-admin';
export const SIDECAR_UID = 65532;

export interface EnvVar {
  name: string;
  value: string;
}

interface HttpGetProbe {
  httpGet: { path: string; port: number; scheme: 'HTTP' };
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export interface SidecarContainer {
  name: string;
  image: string;
  imagePullPolicy: PullPolicy;
  /** Only set in native mode (init container that keeps running). */
  restartPolicy?: 'Always';
  ports: Array<{ name: string; containerPort: number; protocol: 'TCP' }>;
  env: EnvVar[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    runAsNonRoot: true;
    runAsUser: number;
    runAsGroup: number;
    readOnlyRootFilesystem: true;
    allowPrivilegeEscalation: false;
    capabilities: { drop: ['ALL'] };
    seccompProfile: { type: 'RuntimeDefault' };
  };
  startupProbe: HttpGetProbe;
  livenessProbe: HttpGetProbe;
  readinessProbe: HttpGetProbe;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly: true }>;
  terminationMessagePolicy: 'FallbackToLogsOnError';
}

export type Volume =
  | { name: string; secret: { secretName: string; defaultMode: number } }
  | { name: string; configMap: { name: string; defaultMode: number } };

export interface SidecarPlan {
  container: SidecarContainer;
  volumes: Volume[];
  /** Proxy port on 127.0.0.1, for the application containers' base URLs. */
  proxyPort: number;
  native: boolean;
  baseUrlEnv: boolean;
}

function probe(path: string, port: number, periodSeconds: number, failureThreshold: number): HttpGetProbe {
  return { httpGet: { path, port, scheme: 'HTTP' }, periodSeconds, timeoutSeconds: 2, failureThreshold };
}

function mergeResources(base: ResourceRequirements, override: PodOverrides['resources']): ResourceRequirements {
  return {
    requests: { ...base.requests, ...override.requests },
    limits: { ...base.limits, ...override.limits },
  };
}

function resourcesForPod(resources: ResourceRequirements): SidecarContainer['resources'] {
  const out: SidecarContainer['resources'] = {};
  for (const section of ['requests', 'limits'] as const) {
    const entries = RESOURCE_NAMES.flatMap((name) => {
      const value = resources[section][name];
      return value === undefined ? [] : [[name, value] as const];
    });
    if (entries.length > 0) out[section] = Object.fromEntries(entries);
  }
  return out;
}

/**
 * Builds the sidecar for one pod. Returns problems (each naming the annotation
 * to fix) when the overrides cannot be combined with the chart defaults.
 */
export function buildSidecar(
  defaults: SidecarDefaults,
  overrides: PodOverrides,
  secretName: string,
): SidecarPlan | { problems: string[] } {
  const problems: string[] = [];
  const env = new Map(defaults.env);
  const identityDir = env.get(SIDECAR_ENV.identityDir) ?? DEFAULT_IDENTITY_DIR;
  env.set(SIDECAR_ENV.identityDir, identityDir);

  const volumes: Volume[] = [{ name: IDENTITY_VOLUME_NAME, secret: { secretName, defaultMode: 0o444 } }];
  const volumeMounts: SidecarContainer['volumeMounts'] = [{ name: IDENTITY_VOLUME_NAME, mountPath: identityDir, readOnly: true }];

  // Which annotation set each env variable, to name it when the sidecar would refuse the value.
  const setBy = new Map<string, string>();
  const policyConfigMap = overrides.policyConfigMap ?? defaults.policyConfigMap;
  if (policyConfigMap !== undefined) {
    const key = overrides.policyKey ?? defaults.policyKey;
    volumes.push({ name: POLICY_VOLUME_NAME, configMap: { name: policyConfigMap, defaultMode: 0o444 } });
    volumeMounts.push({ name: POLICY_VOLUME_NAME, mountPath: POLICY_MOUNT_DIR, readOnly: true });
    env.set(SIDECAR_ENV.policyFile, `${POLICY_MOUNT_DIR}/${key}`);
    if (overrides.policyKey !== undefined) setBy.set(SIDECAR_ENV.policyFile, ANNOTATIONS.policyKey);
  } else if (overrides.policyKey !== undefined) {
    problems.push(`${ANNOTATIONS.policyKey} needs a policy ConfigMap: add ${ANNOTATIONS.policyConfigMap} or set sidecar.policy.configMap in the chart`);
  }

  for (const [name, url] of overrides.upstreams) {
    env.set(name, url);
    setBy.set(name, overrides.upstreamAnnotations.get(name) ?? `${ANNOTATIONS.upstreamPrefix}<name>`);
  }
  for (const [name, { value, annotation }] of overrides.egressEnv) {
    env.set(name, value);
    setBy.set(name, annotation);
  }
  // A private CA bundle: mounted whole, NODE_EXTRA_CA_CERTS naming the key (read by node at start).
  const caBundle = overrides.caBundle ?? defaults.caBundle;
  if (caBundle !== undefined) {
    volumes.push(caBundle.source === 'configMap'
      ? { name: CA_VOLUME_NAME, configMap: { name: caBundle.name, defaultMode: 0o444 } }
      : { name: CA_VOLUME_NAME, secret: { secretName: caBundle.name, defaultMode: 0o444 } });
    volumeMounts.push({ name: CA_VOLUME_NAME, mountPath: CA_MOUNT_DIR, readOnly: true });
    env.set(SIDECAR_ENV.extraCaCerts, `${CA_MOUNT_DIR}/${overrides.caKey ?? defaults.caKey}`);
  } else if (overrides.caKey !== undefined) {
    problems.push(`${ANNOTATIONS.caKey} needs a CA bundle: add ${ANNOTATIONS.caConfigMap} or ${ANNOTATIONS.caSecret}, or set sidecar.egress.caBundle in the chart`);
  }
  // mTLS client certificates: each tls Secret mounted apart, the sidecar told where its two files are.
  const clientCerts = new Map([...defaults.clientCerts, ...overrides.clientCerts]);
  for (const [name, secret] of clientCerts) {
    const dir = `${CLIENT_CERT_MOUNT_DIR}/${name}`;
    const volume = `${CLIENT_CERT_VOLUME_PREFIX}${name}`;
    volumes.push({ name: volume, secret: { secretName: secret, defaultMode: 0o444 } });
    volumeMounts.push({ name: volume, mountPath: dir, readOnly: true });
    const names = clientCertEnvNames(name);
    env.set(names.cert, `${dir}/tls.crt`);
    env.set(names.key, `${dir}/tls.key`);
    if (overrides.clientCerts.has(name)) {
      setBy.set(names.cert, `${ANNOTATIONS.clientCertPrefix}${name}`);
      setBy.set(names.key, `${ANNOTATIONS.clientCertPrefix}${name}`);
    }
  }
  if (overrides.failMode !== undefined) {
    env.set(SIDECAR_ENV.failMode, overrides.failMode);
    setBy.set(SIDECAR_ENV.failMode, ANNOTATIONS.failMode);
  }
  if (overrides.logLevel !== undefined) {
    env.set(SIDECAR_ENV.logLevel, overrides.logLevel);
    setBy.set(SIDECAR_ENV.logLevel, ANNOTATIONS.logLevel);
  }
  if (overrides.debugPort !== undefined) {
    env.set(SIDECAR_ENV.debugPort, overrides.debugPort);
    setBy.set(SIDECAR_ENV.debugPort, ANNOTATIONS.debugPort);
  }

  // The final env through the sidecar's own loader: a value it would refuse
  // would make the sidecar exit at start (and a native sidecar block the app).
  for (const problem of checkSidecarEnv(env)) {
    const annotation = setBy.get(problemVariable(problem));
    problems.push(annotation !== undefined
      ? `annotation ${annotation}: the sidecar would refuse ${problem}`
      : `sidecar env (chart values): the sidecar would refuse ${problem}`);
  }

  const resources = mergeResources(defaults.resources, overrides.resources);
  for (const problem of checkResourceOrder(resources)) {
    problems.push(`sidecar resources (chart values plus firstops.dev/*-request/-limit annotations): ${problem}`);
  }
  if (problems.length > 0) return { problems };

  const adminPort = portFromEnv(env, SIDECAR_ENV.adminPort, DEFAULT_ADMIN_PORT);
  const container: SidecarContainer = {
    name: SIDECAR_CONTAINER_NAME,
    image: defaults.image,
    imagePullPolicy: defaults.imagePullPolicy,
    ...(defaults.native ? { restartPolicy: 'Always' as const } : {}),
    // The admin port only: the debug port (FIRSTOPS_DEBUG_PORT, loopback) is
    // reached with kubectl port-forward and must never be a port a Service selects.
    ports: [{ name: ADMIN_PORT_NAME, containerPort: adminPort, protocol: 'TCP' }],
    env: [...env].map(([name, value]) => ({ name, value })),
    resources: resourcesForPod(resources),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // Generous startup window (60 s); in native mode it also holds the
    // application containers back until the proxy is ready.
    startupProbe: probe('/readyz', adminPort, 1, 60),
    livenessProbe: probe('/healthz', adminPort, 10, 3),
    readinessProbe: probe('/readyz', adminPort, 5, 2),
    volumeMounts,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  return {
    container,
    volumes,
    proxyPort: portFromEnv(env, SIDECAR_ENV.port, DEFAULT_PROXY_PORT),
    native: defaults.native,
    baseUrlEnv: overrides.baseUrlEnv ?? defaults.baseUrlEnv,
  };
}
