/**
 * The `firstops.dev/*` pod annotations: names, and parsing of the per-pod
 * overrides into a typed value. Problems are collected (one line each, naming
 * the annotation) so the rejection message lists them all at once.
 */
import { SIDECAR_ENV, checkSidecarEnvValue, upstreamEnvName } from './sidecar-env.ts';
import {

  FAIL_MODE_VALUES, LOG_LEVEL_VALUES, PROXY_MODE_VALUES, checkConfigMapKey, checkHttpUrl, checkObjectName, checkOneOf,
  checkQuantity, parseBoolean,
} from './validate.ts';

/** The container resources the injector sets (requests and limits). */
export const RESOURCE_NAMES = ['cpu', 'memory', 'ephemeral-storage'] as const;
export type ResourceName = (typeof RESOURCE_NAMES)[number];

export const ANNOTATION_PREFIX = 'firstops.dev/';

export const ANNOTATIONS = {
  /** "true" opts the pod in. */
  inject: 'firstops.dev/inject',
  /** Name of the Secret holding `agent-id` and `private-key.pem`. */
  agentSecret: 'firstops.dev/agent-secret',
  /** Written by the injector: `injected`, or `skipped-missing-secret` in warn mode. */
  status: 'firstops.dev/status',
  policyConfigMap: 'firstops.dev/policy-configmap',
  policyKey: 'firstops.dev/policy-key',
  failMode: 'firstops.dev/fail-mode',
  logLevel: 'firstops.dev/log-level',
  /** Port of the sidecar's loopback debug listener (kubectl port-forward), or `off`. */
  debugPort: 'firstops.dev/debug-port',
  cpuRequest: 'firstops.dev/cpu-request',
  cpuLimit: 'firstops.dev/cpu-limit',
  memoryRequest: 'firstops.dev/memory-request',
  memoryLimit: 'firstops.dev/memory-limit',
  /** "false" stops OPENAI_BASE_URL / ANTHROPIC_BASE_URL from being added. */
  baseUrlEnv: 'firstops.dev/base-url-env',
  /** `firstops.dev/upstream-<name>: <url>` → FIRSTOPS_UPSTREAM_<NAME>. */
  upstreamPrefix: 'firstops.dev/upstream-',
  /** Egress proxy for https:// targets (HTTPS_PROXY). */
  httpsProxy: 'firstops.dev/https-proxy',
  /** Egress proxy for http:// targets (HTTP_PROXY). */
  httpProxy: 'firstops.dev/http-proxy',
  /** Targets that bypass the proxy (NO_PROXY). */
  noProxy: 'firstops.dev/no-proxy',
  /** `env` or `off` (FIRSTOPS_PROXY_MODE). */
  proxyMode: 'firstops.dev/proxy-mode',
  /** ConfigMap with a PEM CA bundle, mounted and named in NODE_EXTRA_CA_CERTS. */
  caConfigMap: 'firstops.dev/ca-configmap',
  /** Secret with a PEM CA bundle (instead of a ConfigMap). */
  caSecret: 'firstops.dev/ca-secret',
  /** Key of the bundle in that ConfigMap or Secret. */
  caKey: 'firstops.dev/ca-key',
  /** `firstops.dev/client-cert-<name>: <tls Secret>` → mTLS client certificate for upstream <name>. */
  clientCertPrefix: 'firstops.dev/client-cert-',
} as const;

/** Label the injector adds to injected pods (selected by the chart's PodMonitor). */
export const INJECTED_LABEL = 'firstops.dev/sidecar';
export const INJECTED_LABEL_VALUE = 'injected';
/** Label carried by the injector's own pods; they are never mutated. */
export const INJECTOR_POD_LABEL = 'firstops.dev/injector';

export const STATUS_INJECTED = 'injected';
export const STATUS_SKIPPED_MISSING_SECRET = 'skipped-missing-secret';

const UPSTREAM_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** An upstream name that also fits in the volume name `firstops-tls-<name>` (a DNS-1123 label). */
export function checkClientCertName(name: string): string | undefined {
  if (!UPSTREAM_NAME.test(name) || name.length > 50) {
    return `: upstream name ${JSON.stringify(name)} must be lowercase letters, digits and '-' (at most 50)`;
  }
  return undefined;
}

const RESOURCE_ANNOTATIONS: ReadonlyArray<{ key: string; section: 'requests' | 'limits'; resource: ResourceName }> = [
  { key: ANNOTATIONS.cpuRequest, section: 'requests', resource: 'cpu' },
  { key: ANNOTATIONS.cpuLimit, section: 'limits', resource: 'cpu' },
  { key: ANNOTATIONS.memoryRequest, section: 'requests', resource: 'memory' },
  { key: ANNOTATIONS.memoryLimit, section: 'limits', resource: 'memory' },
];

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  ANNOTATIONS.inject, ANNOTATIONS.agentSecret, ANNOTATIONS.status, ANNOTATIONS.policyConfigMap,
  ANNOTATIONS.policyKey, ANNOTATIONS.failMode, ANNOTATIONS.logLevel, ANNOTATIONS.debugPort, ANNOTATIONS.baseUrlEnv,
  ANNOTATIONS.httpsProxy, ANNOTATIONS.httpProxy, ANNOTATIONS.noProxy, ANNOTATIONS.proxyMode,
  ANNOTATIONS.caConfigMap, ANNOTATIONS.caSecret, ANNOTATIONS.caKey,
  ...RESOURCE_ANNOTATIONS.map((r) => r.key),
]);

export interface PodOverrides {
  agentSecret: string | undefined;
  /** Sidecar env name → URL, from `firstops.dev/upstream-<name>`. */
  upstreams: ReadonlyMap<string, string>;
  /** Sidecar env name → the `firstops.dev/upstream-<name>` annotation that set it. */
  upstreamAnnotations: ReadonlyMap<string, string>;
  policyConfigMap: string | undefined;
  policyKey: string | undefined;
  failMode: string | undefined;
  logLevel: string | undefined;
  debugPort: string | undefined;
  resources: {
    requests: Partial<Record<ResourceName, string>>;
    limits: Partial<Record<ResourceName, string>>;
  };
  baseUrlEnv: boolean | undefined;
  /** Sidecar env name → value, from the proxy annotations (checked by the sidecar's loader later). */
  egressEnv: ReadonlyMap<string, { value: string; annotation: string }>;
  /** CA bundle source, from firstops.dev/ca-configmap or ca-secret. */
  caBundle: { source: 'configMap' | 'secret'; name: string } | undefined;
  caKey: string | undefined;
  /** Upstream name → kubernetes.io/tls Secret with its client certificate, from firstops.dev/client-cert-<name>. */
  clientCerts: ReadonlyMap<string, string>;
}

export interface ParsedAnnotations {
  overrides: PodOverrides;
  /** Invalid values: the pod is rejected. */
  problems: string[];
  /** Unknown firstops.dev/* keys (probably typos): reported as warnings. */
  unknown: string[];
}

export function wantsInjection(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return annotations?.[ANNOTATIONS.inject] === 'true';
}

export function parseAnnotations(annotations: Readonly<Record<string, string>>): ParsedAnnotations {
  const problems: string[] = [];
  const unknown: string[] = [];
  const get = (key: string): string | undefined => {
    const value = annotations[key];
    return value === undefined ? undefined : value.trim();
  };
  const checked = (key: string, check: (value: string) => string | undefined): string | undefined => {
    const value = get(key);
    if (value === undefined) return undefined;
    const problem = check(value);
    if (problem !== undefined) {
      problems.push(`${key} ${problem}`);
      return undefined;
    }
    return value;
  };

  let agentSecret = get(ANNOTATIONS.agentSecret);
  if (agentSecret === '') agentSecret = undefined;
  if (agentSecret !== undefined) {
    const problem = checkObjectName(agentSecret);
    if (problem !== undefined) problems.push(`${ANNOTATIONS.agentSecret} ${problem}`);
  }

  const upstreams = new Map<string, string>();
  const upstreamAnnotations = new Map<string, string>();
  const clientCerts = new Map<string, string>();
  for (const [key, raw] of Object.entries(annotations)) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    if (key.startsWith(ANNOTATIONS.clientCertPrefix)) {
      const name = key.slice(ANNOTATIONS.clientCertPrefix.length);
      const problem = checkClientCertName(name) ?? checkObjectName(raw.trim());
      if (problem !== undefined) problems.push(`${key} ${problem}`);
      else clientCerts.set(name, raw.trim());
    } else if (key.startsWith(ANNOTATIONS.upstreamPrefix)) {
      const name = key.slice(ANNOTATIONS.upstreamPrefix.length);
      if (!UPSTREAM_NAME.test(name)) {
        problems.push(`${key}: upstream name ${JSON.stringify(name)} must be lowercase letters, digits and '-'`);
        continue;
      }
      const problem = checkHttpUrl(raw.trim());
      if (problem !== undefined) problems.push(`${key} ${problem}`);
      else {
        upstreams.set(upstreamEnvName(name), raw.trim());
        upstreamAnnotations.set(upstreamEnvName(name), key);
      }
    } else if (!KNOWN_KEYS.has(key)) {
      unknown.push(key);
    }
  }

  const resources: PodOverrides['resources'] = { requests: {}, limits: {} };
  for (const { key, section, resource } of RESOURCE_ANNOTATIONS) {
    const value = checked(key, checkQuantity);
    if (value !== undefined) resources[section][resource] = value;
  }

  let baseUrlEnv: boolean | undefined;
  const baseUrlRaw = get(ANNOTATIONS.baseUrlEnv);
  if (baseUrlRaw !== undefined) {
    baseUrlEnv = parseBoolean(baseUrlRaw);
    if (baseUrlEnv === undefined) problems.push(`${ANNOTATIONS.baseUrlEnv} must be "true" or "false" (got ${JSON.stringify(baseUrlRaw)})`);
  }

  const egressEnv = new Map<string, { value: string; annotation: string }>();
  for (const [annotation, variable] of [
    [ANNOTATIONS.httpsProxy, SIDECAR_ENV.httpsProxy],
    [ANNOTATIONS.httpProxy, SIDECAR_ENV.httpProxy],
    [ANNOTATIONS.noProxy, SIDECAR_ENV.noProxy],
  ] as const) {
    const value = get(annotation);
    if (value !== undefined) egressEnv.set(variable, { value, annotation });
  }
  const proxyMode = checked(ANNOTATIONS.proxyMode, (v) => checkOneOf(v, PROXY_MODE_VALUES));
  if (proxyMode !== undefined) egressEnv.set(SIDECAR_ENV.proxyMode, { value: proxyMode, annotation: ANNOTATIONS.proxyMode });

  const caConfigMap = checked(ANNOTATIONS.caConfigMap, checkObjectName);
  const caSecret = checked(ANNOTATIONS.caSecret, checkObjectName);
  if (caConfigMap !== undefined && caSecret !== undefined) {
    problems.push(`${ANNOTATIONS.caConfigMap} and ${ANNOTATIONS.caSecret} are mutually exclusive: the CA bundle comes from one of them`);
  }
  const caBundle = caConfigMap !== undefined ? { source: 'configMap' as const, name: caConfigMap }
    : caSecret !== undefined ? { source: 'secret' as const, name: caSecret } : undefined;

  return {
    overrides: {
      agentSecret,
      upstreams,
      upstreamAnnotations,
      policyConfigMap: checked(ANNOTATIONS.policyConfigMap, checkObjectName),
      policyKey: checked(ANNOTATIONS.policyKey, checkConfigMapKey),
      failMode: checked(ANNOTATIONS.failMode, (v) => checkOneOf(v, FAIL_MODE_VALUES)),
      logLevel: checked(ANNOTATIONS.logLevel, (v) => checkOneOf(v, LOG_LEVEL_VALUES)),
      debugPort: checked(ANNOTATIONS.debugPort, (v) => checkSidecarEnvValue(SIDECAR_ENV.debugPort, v)),
      resources,
      baseUrlEnv,
      egressEnv,
      caBundle,
      caKey: checked(ANNOTATIONS.caKey, checkConfigMapKey),
      clientCerts,
    },
    problems,
    unknown: unknown.sort(),
  };
}
