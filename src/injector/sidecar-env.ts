/**
 * What the injector knows about the sidecar's own environment (the contract
 * with the proxy core): variable names, defaults, and how to validate values
 * the chart or an annotation puts there.
 */
import {
  FAIL_MODE_VALUES, LOG_LEVEL_VALUES, checkAbsolutePath, checkHttpUrl, checkOneOf, parseIntegerIn,
} from './validate.ts';

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
  upstreamPrefix: 'FIRSTOPS_UPSTREAM_',
} as const;

export const DEFAULT_IDENTITY_DIR = '/var/run/secrets/firstops';
export const DEFAULT_PROXY_PORT = 9322;
export const DEFAULT_ADMIN_PORT = 9323;
/** Where a policy ConfigMap is mounted inside the sidecar. */
export const POLICY_MOUNT_DIR = '/etc/firstops/policy';

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

/** Validates a value destined for a known sidecar variable; unknown names pass. */
export function checkSidecarEnvValue(name: string, value: string): string | undefined {
  switch (name) {
    case SIDECAR_ENV.gatewayUrl:
      return checkHttpUrl(value);
    case SIDECAR_ENV.identityDir:
    case SIDECAR_ENV.policyFile:
      return checkAbsolutePath(value);
    case SIDECAR_ENV.failMode:
      return checkOneOf(value, FAIL_MODE_VALUES);
    case SIDECAR_ENV.logLevel:
      return checkOneOf(value, LOG_LEVEL_VALUES);
    case SIDECAR_ENV.policyTimeoutMs:
    case SIDECAR_ENV.drainTimeoutMs:
    case SIDECAR_ENV.maxBodyBytes: {
      const parsed = parseIntegerIn(value, 1, Number.MAX_SAFE_INTEGER);
      return typeof parsed === 'string' ? parsed : undefined;
    }
    case SIDECAR_ENV.port:
    case SIDECAR_ENV.adminPort: {
      const parsed = parseIntegerIn(value, 1, 65535);
      return typeof parsed === 'string' ? parsed : undefined;
    }
    default:
      return name.startsWith(SIDECAR_ENV.upstreamPrefix) ? checkHttpUrl(value) : undefined;
  }
}

/** Port read from a sidecar env map, falling back to the sidecar's default. */
export function portFromEnv(env: ReadonlyMap<string, string>, name: string, fallback: number): number {
  const raw = env.get(name);
  if (raw === undefined) return fallback;
  const parsed = parseIntegerIn(raw, 1, 65535);
  return typeof parsed === 'number' ? parsed : fallback;
}
