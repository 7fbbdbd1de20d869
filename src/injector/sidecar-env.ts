/**
 * What the injector knows about the sidecar's own environment (the contract
 * with the proxy core): variable names, defaults, and how to validate values
 * the chart or an annotation puts there.
 */
import { ConfigError, VARIABLES, loadConfig } from '../config.ts';
import { checkAbsolutePath, parseIntegerIn } from './validate.ts';

export const SIDECAR_ENV = {
  gatewayUrl: 'FIRSTOPS_GATEWAY_URL',
  identityDir: 'FIRSTOPS_IDENTITY_DIR',
  policyFile: 'FIRSTOPS_POLICY_FILE',
  failMode: 'FIRSTOPS_FAIL_MODE',
  logLevel: 'FIRSTOPS_LOG_LEVEL',
  policyTimeoutMs: 'FIRSTOPS_POLICY_TIMEOUT_MS',
  maxBodyBytes: 'FIRSTOPS_MAX_BODY_BYTES',
  drainTimeoutMs: 'FIRSTOPS_DRAIN_TIMEOUT_MS',
  listenHost: 'FIRSTOPS_LISTEN_HOST',
  port: 'FIRSTOPS_PORT',
  adminHost: 'FIRSTOPS_ADMIN_HOST',
  adminPort: 'FIRSTOPS_ADMIN_PORT',
  debugPort: 'FIRSTOPS_DEBUG_PORT',
  upstreamPrefix: 'FIRSTOPS_UPSTREAM_',
  proxyMode: 'FIRSTOPS_PROXY_MODE',
  httpsProxy: 'HTTPS_PROXY',
  httpProxy: 'HTTP_PROXY',
  noProxy: 'NO_PROXY',
  extraCaCerts: 'NODE_EXTRA_CA_CERTS',
} as const;

/** Prefixes of the per-upstream client certificate variables (FIRSTOPS_TLS_CLIENT_CERT_<NAME>). */
const CLIENT_CERT_PREFIXES = ['FIRSTOPS_TLS_CLIENT_CERT_', 'FIRSTOPS_TLS_CLIENT_KEY_'] as const;

export const DEFAULT_IDENTITY_DIR = '/var/run/secrets/firstops';
export const DEFAULT_PROXY_PORT = 9322;
export const DEFAULT_ADMIN_PORT = 9323;
/** Where a policy ConfigMap is mounted inside the sidecar. */
export const POLICY_MOUNT_DIR = '/etc/firstops/policy';
/** Where a CA bundle ConfigMap or Secret is mounted inside the sidecar (NODE_EXTRA_CA_CERTS points into it). */
export const CA_MOUNT_DIR = '/etc/firstops/ca';
/** Where upstream <name>'s client certificate Secret (kubernetes.io/tls) is mounted. */
export const CLIENT_CERT_MOUNT_DIR = '/etc/firstops/client-certs';

/** The FIRSTOPS_TLS_CLIENT_CERT_/KEY_<NAME> pair for an upstream name as written in annotations. */
export function clientCertEnvNames(name: string): { cert: string; key: string } {
  const suffix = name.toUpperCase().replace(/[-.]/g, '_');
  return { cert: CLIENT_CERT_PREFIXES[0] + suffix, key: CLIENT_CERT_PREFIXES[1] + suffix };
}

/** Env names that application containers receive, pointing SDKs at the proxy. */
export const BASE_URL_ENV = {
  openai: 'OPENAI_BASE_URL',
  anthropic: 'ANTHROPIC_BASE_URL',
} as const;

export function baseUrlEnv(proxyPort: number): Array<{ name: string; value: string }> {
  return [
    { name: BASE_URL_ENV.openai, value: `http://127.0.0.1:${proxyPort}/llm/openai/v1` },
    { name: BASE_URL_ENV.anthropic, value: `http://127.0.0.1:${proxyPort}/llm/anthropic` },
  ];
}

/** Upstream name as used in `firstops.dev/upstream-<name>` → sidecar env name. */
export function upstreamEnvName(name: string): string {
  return SIDECAR_ENV.upstreamPrefix + name.toUpperCase().replace(/[-.]/g, '_');
}

const UPSTREAM_SUFFIX = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/**
 * FIRSTOPS_* names must be variables the sidecar reads (a typo would be
 * silently ignored by the sidecar); other names are the application's business.
 */
export function checkSidecarEnvName(name: string): string | undefined {
  if (!name.startsWith('FIRSTOPS_')) return undefined;
  if (Object.hasOwn(VARIABLES, name)) return undefined;
  if (name.startsWith(SIDECAR_ENV.upstreamPrefix) && UPSTREAM_SUFFIX.test(name.slice(SIDECAR_ENV.upstreamPrefix.length))) {
    return undefined;
  }
  for (const prefix of CLIENT_CERT_PREFIXES) {
    if (name.startsWith(prefix) && UPSTREAM_SUFFIX.test(name.slice(prefix.length))) return undefined;
  }
  return `${name} is not a variable the sidecar reads (known: ${Object.keys(VARIABLES).join(', ')}, ${SIDECAR_ENV.upstreamPrefix}<NAME>, ${CLIENT_CERT_PREFIXES.map((p) => `${p}<NAME>`).join(', ')})`;
}

/**
 * Injector-side constraints on top of the sidecar's own: the identity dir is
 * a volume mountPath, and the ports are probed and declared in the pod spec,
 * so they must be fixed (not 0) and distinct. The debug port is never
 * declared (no Service may select it), but `kubectl port-forward` needs a
 * fixed number too: a port, or `off`.
 */
export function checkSidecarEnvValue(name: string, value: string): string | undefined {
  switch (name) {
    case SIDECAR_ENV.identityDir:
      return checkAbsolutePath(value);
    case SIDECAR_ENV.port:
    case SIDECAR_ENV.adminPort: {
      const parsed = parseIntegerIn(value, 1, 65535);
      return typeof parsed === 'string' ? parsed : undefined;
    }
    case SIDECAR_ENV.debugPort: {
      if (value.trim().toLowerCase() === 'off') return undefined;
      const parsed = parseIntegerIn(value, 1, 65535);
      return typeof parsed === 'string' ? `${parsed.replace(/^must be/, 'must be off or')}` : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Runs the sidecar's own configuration loader on the env the sidecar will
 * receive, so anything the sidecar would refuse at startup (exit 2, and a
 * native sidecar blocking the application) is refused here instead. Returns
 * the loader's problems, each starting with the variable name, plus the
 * injector-side checks; empty when the sidecar will start.
 */
export function checkSidecarEnv(env: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, value] of env) {
    const nameProblem = checkSidecarEnvName(name);
    if (nameProblem !== undefined) {
      problems.push(nameProblem);
      continue;
    }
    const problem = checkSidecarEnvValue(name, value);
    if (problem !== undefined) problems.push(`${name} ${problem}`);
  }
  const proxyPort = env.get(SIDECAR_ENV.port) ?? String(DEFAULT_PROXY_PORT);
  const adminPort = env.get(SIDECAR_ENV.adminPort) ?? String(DEFAULT_ADMIN_PORT);
  if (proxyPort.trim() === adminPort.trim()) {
    problems.push(`${SIDECAR_ENV.adminPort} must differ from ${SIDECAR_ENV.port} (both ${proxyPort.trim()} in the same pod)`);
  }
  try {
    loadConfig(Object.fromEntries(env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  return problems;
}

/** The variable a loadConfig/checkSidecarEnv problem is about (its first word). */
export function problemVariable(problem: string): string {
  return /^[A-Z0-9_]+/.exec(problem)?.[0] ?? '';
}

/** Port read from a sidecar env map, falling back to the sidecar's default. */
export function portFromEnv(env: ReadonlyMap<string, string>, name: string, fallback: number): number {
  const raw = env.get(name);
  if (raw === undefined) return fallback;
  const parsed = parseIntegerIn(raw, 1, 65535);
  return typeof parsed === 'number' ? parsed : fallback;
}
