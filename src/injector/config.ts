/**
 * The injector's own configuration, read from its environment. Every variable
 * is validated up front and all problems are reported together, each naming
 * the variable at fault, so a bad Helm value fails the pod at start with one
 * readable message instead of at the first admission request.
 */
import { RESOURCE_NAMES, checkClientCertName, type ResourceName } from './annotations.ts';
import { InjectorError } from './errors.ts';
import { SIDECAR_ENV, checkSidecarEnv } from './sidecar-env.ts';
import {
  checkConfigMapKey, checkEnvName, checkObjectName, checkOneOf, checkQuantity, isDns1123Label,
  isOneOf, parseBoolean, parseIntegerIn, quantityValue,
} from './validate.ts';

export const INJECTOR_ENV = {
  host: 'FIRSTOPS_INJECTOR_HOST',
  port: 'FIRSTOPS_INJECTOR_PORT',
  metricsPort: 'FIRSTOPS_INJECTOR_METRICS_PORT',
  tlsCert: 'FIRSTOPS_INJECTOR_TLS_CERT',
  tlsKey: 'FIRSTOPS_INJECTOR_TLS_KEY',
  tlsReloadIntervalMs: 'FIRSTOPS_INJECTOR_TLS_RELOAD_INTERVAL_MS',
  maxRequestBytes: 'FIRSTOPS_INJECTOR_MAX_REQUEST_BYTES',
  drainTimeoutMs: 'FIRSTOPS_INJECTOR_DRAIN_TIMEOUT_MS',
  shutdownDelayMs: 'FIRSTOPS_INJECTOR_SHUTDOWN_DELAY_MS',
  sidecarImage: 'FIRSTOPS_INJECTOR_SIDECAR_IMAGE',
  sidecarImagePullPolicy: 'FIRSTOPS_INJECTOR_SIDECAR_IMAGE_PULL_POLICY',
  nativeSidecar: 'FIRSTOPS_INJECTOR_NATIVE_SIDECAR',
  sidecarEnv: 'FIRSTOPS_INJECTOR_SIDECAR_ENV',
  sidecarResources: 'FIRSTOPS_INJECTOR_SIDECAR_RESOURCES',
  policyConfigMap: 'FIRSTOPS_INJECTOR_POLICY_CONFIGMAP',
  policyKey: 'FIRSTOPS_INJECTOR_POLICY_KEY',
  baseUrlEnv: 'FIRSTOPS_INJECTOR_BASE_URL_ENV',
  missingSecret: 'FIRSTOPS_INJECTOR_MISSING_SECRET',
  excludedNamespaces: 'FIRSTOPS_INJECTOR_EXCLUDED_NAMESPACES',
  caConfigMap: 'FIRSTOPS_INJECTOR_CA_CONFIGMAP',
  caSecret: 'FIRSTOPS_INJECTOR_CA_SECRET',
  caKey: 'FIRSTOPS_INJECTOR_CA_KEY',
  clientCerts: 'FIRSTOPS_INJECTOR_CLIENT_CERTS',
} as const;

export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];
export const MISSING_SECRET_ACTIONS = ['reject', 'warn'] as const;
export type MissingSecretAction = (typeof MISSING_SECRET_ACTIONS)[number];

export interface ResourceRequirements {
  requests: Partial<Record<ResourceName, string>>;
  limits: Partial<Record<ResourceName, string>>;
}

export const DEFAULT_SIDECAR_RESOURCES: ResourceRequirements = {
  requests: { cpu: '50m', memory: '96Mi' },
  limits: { memory: '256Mi' },
};

/** Namespaces the injector never mutates, whatever the webhook selectors say. */
export const ALWAYS_EXCLUDED_NAMESPACES = ['kube-system'] as const;

export interface SidecarDefaults {
  image: string;
  imagePullPolicy: PullPolicy;
  /** Native sidecar (init container, restartPolicy Always) vs regular container. */
  native: boolean;
  /** Environment for the sidecar, in a stable order (chart values). */
  env: ReadonlyMap<string, string>;
  resources: ResourceRequirements;
  policyConfigMap: string | undefined;
  policyKey: string;
  /** Whether application containers get OPENAI_BASE_URL / ANTHROPIC_BASE_URL. */
  baseUrlEnv: boolean;
  /** A PEM CA bundle to mount and name in NODE_EXTRA_CA_CERTS (private CAs), if any. */
  caBundle: { source: 'configMap' | 'secret'; name: string } | undefined;
  caKey: string;
  /** Upstream name → kubernetes.io/tls Secret holding its mTLS client certificate. */
  clientCerts: ReadonlyMap<string, string>;
}

export interface InjectorConfig {
  host: string;
  port: number;
  /** Plain-HTTP listener for /metrics and /healthz; undefined disables it. */
  metricsPort: number | undefined;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** How often the TLS files are re-read; 0 disables reloading. */
  tlsReloadIntervalMs: number;
  maxRequestBytes: number;
  drainTimeoutMs: number;
  /**
   * On shutdown, how long /healthz answers 503 while admission requests are
   * still served, so endpoints drop the pod before it stops listening.
   */
  shutdownDelayMs: number;
  missingSecretAction: MissingSecretAction;
  excludedNamespaces: ReadonlySet<string>;
  sidecar: SidecarDefaults;
}

type Env = Record<string, string | undefined>;

/** Reads and validates the injector env; throws INJECTOR_CONFIG_INVALID listing every problem. */
export function loadInjectorConfig(env: Env): InjectorConfig {
  const issues: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const parsed = parseIntegerIn(raw, min, max);
    if (typeof parsed === 'string') {
      issues.push(`${name} ${parsed}`);
      return fallback;
    }
    return parsed;
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const parsed = parseBoolean(raw);
    if (parsed === undefined) issues.push(`${name} must be "true" or "false" (got ${JSON.stringify(raw)})`);
    return parsed ?? fallback;
  };
  const required = (name: string, what: string): string => {
    const raw = read(name);
    if (raw === undefined) issues.push(`${name} is required (${what})`);
    return raw ?? '';
  };

  const host = read(INJECTOR_ENV.host) ?? '0.0.0.0';
  const port = integer(INJECTOR_ENV.port, 8443, 0, 65535);
  const metricsPortRaw = read(INJECTOR_ENV.metricsPort);
  const metricsPort = metricsPortRaw === undefined ? undefined : integer(INJECTOR_ENV.metricsPort, 0, 0, 65535);
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port) {
    issues.push(`${INJECTOR_ENV.metricsPort} must differ from ${INJECTOR_ENV.port} (both ${port})`);
  }
  const tlsCertFile = required(INJECTOR_ENV.tlsCert, 'path to the PEM webhook serving certificate');
  const tlsKeyFile = required(INJECTOR_ENV.tlsKey, 'path to the PEM private key of that certificate');
  const tlsReloadIntervalMs = integer(INJECTOR_ENV.tlsReloadIntervalMs, 10_000, 0, 86_400_000);
  const maxRequestBytes = integer(INJECTOR_ENV.maxRequestBytes, 8 * 1024 * 1024, 1024, 64 * 1024 * 1024);
  const drainTimeoutMs = integer(INJECTOR_ENV.drainTimeoutMs, 10_000, 0, 600_000);
  const shutdownDelayMs = integer(INJECTOR_ENV.shutdownDelayMs, 5_000, 0, 600_000);

  const image = required(INJECTOR_ENV.sidecarImage, 'image reference of the injected sidecar');
  if (/\s/.test(image)) issues.push(`${INJECTOR_ENV.sidecarImage} must not contain whitespace`);

  const pullPolicyRaw = read(INJECTOR_ENV.sidecarImagePullPolicy) ?? 'IfNotPresent';
  const pullPolicyProblem = checkOneOf(pullPolicyRaw, PULL_POLICIES);
  if (pullPolicyProblem !== undefined) issues.push(`${INJECTOR_ENV.sidecarImagePullPolicy} ${pullPolicyProblem}`);
  const imagePullPolicy: PullPolicy = isOneOf(pullPolicyRaw, PULL_POLICIES) ? pullPolicyRaw : 'IfNotPresent';

  const missingRaw = read(INJECTOR_ENV.missingSecret) ?? 'reject';
  const missingProblem = checkOneOf(missingRaw, MISSING_SECRET_ACTIONS);
  if (missingProblem !== undefined) issues.push(`${INJECTOR_ENV.missingSecret} ${missingProblem}`);
  const missingSecretAction: MissingSecretAction = isOneOf(missingRaw, MISSING_SECRET_ACTIONS) ? missingRaw : 'reject';

  const excludedNamespaces = new Set<string>(ALWAYS_EXCLUDED_NAMESPACES);
  for (const ns of (read(INJECTOR_ENV.excludedNamespaces) ?? '').split(',')) {
    const name = ns.trim();
    if (name === '') continue;
    if (!isDns1123Label(name)) issues.push(`${INJECTOR_ENV.excludedNamespaces} entry ${JSON.stringify(name)} is not a namespace name`);
    excludedNamespaces.add(name);
  }

  const sidecarEnv = parseSidecarEnv(read(INJECTOR_ENV.sidecarEnv), issues);
  const resources = parseResources(read(INJECTOR_ENV.sidecarResources), issues);

  const policyConfigMap = read(INJECTOR_ENV.policyConfigMap);
  if (policyConfigMap !== undefined) {
    const problem = checkObjectName(policyConfigMap);
    if (problem !== undefined) issues.push(`${INJECTOR_ENV.policyConfigMap} ${problem}`);
    if (sidecarEnv.has(SIDECAR_ENV.policyFile)) {
      issues.push(`${INJECTOR_ENV.policyConfigMap} and ${SIDECAR_ENV.policyFile} in ${INJECTOR_ENV.sidecarEnv} are mutually exclusive`);
    }
  }
  const policyKey = read(INJECTOR_ENV.policyKey) ?? 'policy.yaml';
  const keyProblem = checkConfigMapKey(policyKey);
  if (keyProblem !== undefined) issues.push(`${INJECTOR_ENV.policyKey} ${keyProblem}`);

  const caConfigMap = read(INJECTOR_ENV.caConfigMap);
  const caSecret = read(INJECTOR_ENV.caSecret);
  for (const [variable, name] of [[INJECTOR_ENV.caConfigMap, caConfigMap], [INJECTOR_ENV.caSecret, caSecret]] as const) {
    const problem = name === undefined ? undefined : checkObjectName(name);
    if (problem !== undefined) issues.push(`${variable} ${problem}`);
  }
  if (caConfigMap !== undefined && caSecret !== undefined) {
    issues.push(`${INJECTOR_ENV.caConfigMap} and ${INJECTOR_ENV.caSecret} are mutually exclusive`);
  }
  const caBundle = caConfigMap !== undefined ? { source: 'configMap' as const, name: caConfigMap }
    : caSecret !== undefined ? { source: 'secret' as const, name: caSecret } : undefined;
  if (caBundle !== undefined && sidecarEnv.has(SIDECAR_ENV.extraCaCerts)) {
    issues.push(`${caBundle.source === 'configMap' ? INJECTOR_ENV.caConfigMap : INJECTOR_ENV.caSecret} and ${SIDECAR_ENV.extraCaCerts} in ${INJECTOR_ENV.sidecarEnv} are mutually exclusive`);
  }
  const caKey = read(INJECTOR_ENV.caKey) ?? 'ca.crt';
  const caKeyProblem = checkConfigMapKey(caKey);
  if (caKeyProblem !== undefined) issues.push(`${INJECTOR_ENV.caKey} ${caKeyProblem}`);

  const clientCerts = new Map<string, string>();
  const clientCertsRaw = read(INJECTOR_ENV.clientCerts);
  const clientCertsObject = clientCertsRaw === undefined ? undefined : parseJsonObject(INJECTOR_ENV.clientCerts, clientCertsRaw, issues);
  for (const [name, secret] of Object.entries(clientCertsObject ?? {})) {
    const problem = checkClientCertName(name) ?? (typeof secret === 'string' ? checkObjectName(secret) : 'must be a Secret name');
    if (problem !== undefined) issues.push(`${INJECTOR_ENV.clientCerts}: ${name} ${problem}`);
    else clientCerts.set(name, secret as string);
  }

  const native = boolean(INJECTOR_ENV.nativeSidecar, true);
  const baseUrlEnv = boolean(INJECTOR_ENV.baseUrlEnv, true);

  if (issues.length > 0) {
    throw new InjectorError('INJECTOR_CONFIG_INVALID', 'invalid injector configuration', issues);
  }
  return {
    host, port, metricsPort, tlsCertFile, tlsKeyFile, tlsReloadIntervalMs, maxRequestBytes, drainTimeoutMs,
    shutdownDelayMs, missingSecretAction, excludedNamespaces,
    sidecar: { image, imagePullPolicy, native, env: sidecarEnv, resources, policyConfigMap, policyKey, baseUrlEnv, caBundle, caKey, clientCerts },
  };
}

function parseJsonObject(name: string, raw: string, issues: string[]): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    issues.push(`${name} is not valid JSON (${(err as Error).message})`);
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    issues.push(`${name} must be a JSON object`);
    return undefined;
  }
  return parsed as Record<string, unknown>;
}

function parseSidecarEnv(raw: string | undefined, issues: string[]): Map<string, string> {
  const env = new Map<string, string>();
  if (raw === undefined) return env;
  const name = INJECTOR_ENV.sidecarEnv;
  const object = parseJsonObject(name, raw, issues);
  if (object === undefined) return env;
  for (const [key, value] of Object.entries(object)) {
    const nameProblem = checkEnvName(key);
    if (nameProblem !== undefined) {
      issues.push(`${name}: key ${nameProblem}`);
      continue;
    }
    if (typeof value !== 'string') {
      issues.push(`${name}: ${key} must be a string (got ${typeof value})`);
      continue;
    }
    env.set(key, value);
  }
  // The sidecar's own loader, on the chart-level env: what it would refuse
  // in every injected pod is refused here, at the injector's start.
  for (const problem of checkSidecarEnv(env)) issues.push(`${name}: ${problem}`);
  return env;
}

export function checkResourceOrder(resources: ResourceRequirements): string[] {
  const problems: string[] = [];
  for (const resource of RESOURCE_NAMES) {
    const request = resources.requests[resource];
    const limit = resources.limits[resource];
    if (request !== undefined && limit !== undefined && quantityValue(request) > quantityValue(limit)) {
      problems.push(`${resource} request ${request} exceeds its limit ${limit}`);
    }
  }
  return problems;
}

function parseResources(raw: string | undefined, issues: string[]): ResourceRequirements {
  if (raw === undefined) return DEFAULT_SIDECAR_RESOURCES;
  const name = INJECTOR_ENV.sidecarResources;
  const object = parseJsonObject(name, raw, issues);
  const result: ResourceRequirements = { requests: {}, limits: {} };
  if (object === undefined) return result;
  for (const [section, values] of Object.entries(object)) {
    if (section !== 'requests' && section !== 'limits') {
      issues.push(`${name}: unknown key ${JSON.stringify(section)} (expected requests, limits)`);
      continue;
    }
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      issues.push(`${name}: ${section} must be an object`);
      continue;
    }
    for (const [resource, quantity] of Object.entries(values as Record<string, unknown>)) {
      if (!isOneOf(resource, RESOURCE_NAMES)) {
        issues.push(`${name}: ${section}.${resource} is not supported (expected ${RESOURCE_NAMES.join(', ')})`);
        continue;
      }
      const text = typeof quantity === 'number' ? String(quantity) : quantity;
      if (typeof text !== 'string') {
        issues.push(`${name}: ${section}.${resource} must be a string quantity`);
        continue;
      }
      const problem = checkQuantity(text);
      if (problem !== undefined) issues.push(`${name}: ${section}.${resource} ${problem}`);
      else result[section][resource] = text;
    }
  }
  for (const problem of checkResourceOrder(result)) issues.push(`${name}: ${problem}`);
  return result;
}
