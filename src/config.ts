import { isIP } from 'node:net';
import { LOG_LEVELS } from './log.ts';
import { readClientCertFiles, type ClientCertFiles } from './egress/client-certs.ts';
import { PROXY_MODES, describeRoute, readEgress, type EgressConfig } from './egress/proxies.ts';
import type { LevelWithSilent } from 'pino';
import { readMemoryLimit, type MemoryLimit } from './memory/limit.ts';
import { describeMemory, planMemory, type MemoryPlan } from './memory/plan.ts';

export type FailMode = 'closed' | 'open';
export type RemotePolicyMode = 'auto' | 'off';
/** Whether answers are also evaluated by EvaluateHook (post_tool_use): one more gateway call per governed response. */
export type ResponseRemoteMode = 'off' | 'on';

export interface UpstreamConfig {
  /** Provider name as it appears in the route, lower-cased. */
  readonly name: string;
  /** scheme://host[:port], the undici origin. */
  readonly origin: string;
  /** Path prefix of the base URL without trailing slash ('' when none). */
  readonly basePath: string;
}

export interface Config {
  readonly gatewayUrl: string;
  readonly identityDir: string;
  readonly listenHost: string;
  readonly port: number;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly policyFile: string | undefined;
  readonly remotePolicy: RemotePolicyMode;
  readonly failMode: FailMode;
  /** FIRSTOPS_RESPONSE_REMOTE: `on` asks the gateway about each governed answer (issue 22), `off` (the default) keeps response rules local. */
  readonly responseRemote: ResponseRemoteMode;
  readonly policyTimeoutMs: number;
  readonly policyBudgetMs: number;
  readonly policyWorkers: number;
  readonly policyOffloadBytes: number;
  /** The effective body cap: FIRSTOPS_MAX_BODY_BYTES, or derived from the memory budget (memory.maxBodyBytes). */
  readonly maxBodyBytes: number;
  /** The in-flight body budget, the limit it came from, and the cap (src/memory/plan.ts). */
  readonly memory: MemoryPlan;
  readonly logLevel: LevelWithSilent;
  readonly drainTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reloadIntervalMs: number;
  /** HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY as read (credentials inside: see describeConfig). */
  readonly egress: EgressConfig;
  /** mTLS client certificate files by upstream name (FIRSTOPS_TLS_CLIENT_CERT_<NAME>/_KEY_<NAME>). */
  readonly clientCerts: ReadonlyMap<string, ClientCertFiles>;
  /** The debug listener (kubectl port-forward); port undefined when `off`. */
  readonly debugHost: string;
  readonly debugPort: number | undefined;
  readonly debugAllowRemote: boolean;
  readonly debugHistory: number;
  /** Read token usage from LLM responses into the gen_ai_* metrics and the request log (FIRSTOPS_USAGE_METRICS). */
  readonly usageMetrics: boolean;
}

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_UPSTREAMS: Readonly<Record<string, string>> = {
  openai: 'https://api.openai.com',
  anthropic: 'https://api.anthropic.com',
};

const UPSTREAM_PREFIX = 'FIRSTOPS_UPSTREAM_';

/** Every variable the sidecar reads, with its default and meaning: the README table mirrors this. */
export const VARIABLES = {
  FIRSTOPS_GATEWAY_URL: 'https://api.firstops.dev',
  FIRSTOPS_IDENTITY_DIR: '/var/run/secrets/firstops',
  FIRSTOPS_LISTEN_HOST: '127.0.0.1',
  FIRSTOPS_PORT: '9322',
  FIRSTOPS_ADMIN_HOST: '0.0.0.0',
  FIRSTOPS_ADMIN_PORT: '9323',
  FIRSTOPS_POLICY_FILE: undefined,
  FIRSTOPS_REMOTE_POLICY: 'auto',
  FIRSTOPS_FAIL_MODE: 'closed',
  FIRSTOPS_RESPONSE_REMOTE: 'off',
  FIRSTOPS_POLICY_TIMEOUT_MS: '5000',
  FIRSTOPS_POLICY_BUDGET_MS: '10000',
  FIRSTOPS_POLICY_WORKERS: '1',
  FIRSTOPS_POLICY_OFFLOAD_BYTES: '65536',
  FIRSTOPS_MAX_BODY_BYTES: 'auto',
  FIRSTOPS_MEMORY_BUDGET_BYTES: 'auto',
  FIRSTOPS_LOG_LEVEL: 'info',
  FIRSTOPS_DRAIN_TIMEOUT_MS: '25000',
  FIRSTOPS_RESPONSE_TIMEOUT_MS: '600000',
  FIRSTOPS_CONNECT_TIMEOUT_MS: '10000',
  FIRSTOPS_RELOAD_INTERVAL_MS: '2000',
  FIRSTOPS_PROXY_MODE: 'env',
  FIRSTOPS_DEBUG_HOST: '127.0.0.1',
  FIRSTOPS_DEBUG_PORT: '9324',
  FIRSTOPS_DEBUG_ALLOW_REMOTE: 'false',
  FIRSTOPS_DEBUG_HISTORY: '200',
  FIRSTOPS_USAGE_METRICS: 'on',
} as const satisfies Record<string, string | undefined>;

type Variable = keyof typeof VARIABLES;

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Collects problems instead of stopping at the first, so one start names them all. */
class Reader {
  readonly problems: string[] = [];
  readonly #env: Env;
  constructor(env: Env) {
    this.#env = env;
  }

  raw(name: Variable): string | undefined {
    const value = this.#env[name];
    return value === undefined || value === '' ? VARIABLES[name] : value;
  }

  problem(name: string, value: string | undefined, expected: string): void {
    // A URL's user:password is a secret: a value with an `@` is never echoed.
    const shown = (value ?? '').includes('@') ? '<redacted: contains @>' : (value ?? '');
    this.problems.push(`${name}=${JSON.stringify(shown)}: expected ${expected}`);
  }

  string(name: Variable): string {
    const value = this.raw(name)?.trim();
    if (!value) this.problem(name, value, 'a non-empty value');
    return value ?? '';
  }

  /** An integer, or undefined for `auto`. */
  integerOrAuto(name: Variable, min: number, max: number): number | undefined {
    return (this.raw(name) ?? '').trim().toLowerCase() === 'auto' ? undefined : this.integer(name, min, max);
  }

  integer(name: Variable, min: number, max: number): number {
    const value = this.raw(name) ?? '';
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.problem(name, value, `an integer from ${min} to ${max}`);
      return min;
    }
    return n;
  }

  oneOf<T extends string>(name: Variable, allowed: readonly T[]): T {
    const value = (this.raw(name) ?? '').trim().toLowerCase();
    if (!(allowed as readonly string[]).includes(value)) {
      this.problem(name, value, `one of ${allowed.join(', ')}`);
      return allowed[0] as T;
    }
    return value as T;
  }
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: addresses only the pod itself (and kubectl port-forward) reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  // The URL parser normalises IPv6 (0:0::1 is [::1], ::ffff:127.0.0.1 is [::ffff:7f00:1]).
  if (isIP(h) === 6) {
    const normal = new URL(`http://[${h}]/`).hostname;
    return normal === '[::1]' || normal.startsWith('[::ffff:7f');
  }
  return false;
}

function readDebugPort(r: Reader): number | undefined {
  const value = (r.raw('FIRSTOPS_DEBUG_PORT') ?? '').trim().toLowerCase();
  if (value === 'off') return undefined;
  return r.integer('FIRSTOPS_DEBUG_PORT', 0, 65535);
}

/**
 * Parses an http(s) base URL. Returns a problem description or the parts.
 * The string is kept as written (minus trailing slashes) because the gateway
 * compares DPoP `htu` byte for byte with what it was sent.
 */
export function parseBaseUrl(value: string): { base: string; origin: string; basePath: string } | string {
  const base = value.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return 'an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'an http:// or https:// URL';
  if (!url.hostname) return 'a URL with a host';
  if (url.username || url.password) return 'a URL without credentials (user:password@ would leak into logs)';
  if (url.search || url.hash || base.includes('?') || base.includes('#')) return 'a URL without query or fragment';
  const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  return { base, origin: url.origin, basePath };
}

function readUpstreams(env: Env, reader: Reader): Map<string, UpstreamConfig> {
  const entries = new Map<string, string>(Object.entries(DEFAULT_UPSTREAMS));
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(UPSTREAM_PREFIX) || value === undefined) continue;
    const suffix = key.slice(UPSTREAM_PREFIX.length);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(suffix)) {
      reader.problem(key, value, `a provider name of letters, digits, '_' or '-' after ${UPSTREAM_PREFIX}`);
      continue;
    }
    const name = suffix.toLowerCase();
    // An empty value removes a provider, including a default one.
    if (value.trim() === '') entries.delete(name);
    else entries.set(name, value);
  }
  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, value] of entries) {
    const parsed = parseBaseUrl(value);
    if (typeof parsed === 'string') {
      reader.problem(`${UPSTREAM_PREFIX}${name.toUpperCase()}`, value, parsed);
      continue;
    }
    upstreams.set(name, { name, origin: parsed.origin, basePath: parsed.basePath });
  }
  return upstreams;
}

/** What the memory plan is measured from; tests pass their own. */
export interface MemoryProbe {
  readonly limit: MemoryLimit;
  readonly rssBytes: number;
}

const probeMemory = (): MemoryProbe => ({ limit: readMemoryLimit(), rssBytes: process.memoryUsage.rss() });

/** Reads and validates the whole configuration; throws one ConfigError naming every problem. */
export function loadConfig(env: Env, probe: MemoryProbe = probeMemory()): Config {
  const r = new Reader(env);
  const memory = planMemory({
    ...probe,
    budgetBytes: r.integerOrAuto('FIRSTOPS_MEMORY_BUDGET_BYTES', 0, Number.MAX_SAFE_INTEGER),
    maxBodyBytes: r.integerOrAuto('FIRSTOPS_MAX_BODY_BYTES', 1, 2 ** 31 - 1),
  });
  const gatewayRaw = r.string('FIRSTOPS_GATEWAY_URL');
  const gateway = parseBaseUrl(gatewayRaw);
  if (typeof gateway === 'string') r.problem('FIRSTOPS_GATEWAY_URL', gatewayRaw, gateway);

  const policyFile = r.raw('FIRSTOPS_POLICY_FILE')?.trim() || undefined;
  const upstreams = readUpstreams(env, r);
  const problem = (name: string, value: string, expected: string): void => r.problem(name, value, expected);
  const config: Config = {
    gatewayUrl: typeof gateway === 'string' ? '' : gateway.base,
    identityDir: r.string('FIRSTOPS_IDENTITY_DIR'),
    listenHost: r.string('FIRSTOPS_LISTEN_HOST'),
    port: r.integer('FIRSTOPS_PORT', 0, 65535),
    adminHost: r.string('FIRSTOPS_ADMIN_HOST'),
    adminPort: r.integer('FIRSTOPS_ADMIN_PORT', 0, 65535),
    upstreams,
    policyFile,
    remotePolicy: r.oneOf('FIRSTOPS_REMOTE_POLICY', ['auto', 'off'] as const),
    failMode: r.oneOf('FIRSTOPS_FAIL_MODE', ['closed', 'open'] as const),
    responseRemote: r.oneOf('FIRSTOPS_RESPONSE_REMOTE', ['off', 'on'] as const),
    policyTimeoutMs: r.integer('FIRSTOPS_POLICY_TIMEOUT_MS', 1, 600_000),
    policyBudgetMs: r.integer('FIRSTOPS_POLICY_BUDGET_MS', 1, 600_000),
    policyWorkers: r.integer('FIRSTOPS_POLICY_WORKERS', 1, 64),
    policyOffloadBytes: r.integer('FIRSTOPS_POLICY_OFFLOAD_BYTES', 0, 2 ** 31 - 1),
    maxBodyBytes: memory.maxBodyBytes,
    memory,
    logLevel: r.oneOf('FIRSTOPS_LOG_LEVEL', LOG_LEVELS),
    drainTimeoutMs: r.integer('FIRSTOPS_DRAIN_TIMEOUT_MS', 0, 3_600_000),
    upstreamTimeoutMs: r.integer('FIRSTOPS_RESPONSE_TIMEOUT_MS', 1, 3_600_000),
    connectTimeoutMs: r.integer('FIRSTOPS_CONNECT_TIMEOUT_MS', 1, 600_000),
    reloadIntervalMs: r.integer('FIRSTOPS_RELOAD_INTERVAL_MS', 100, 3_600_000),
    egress: readEgress(env, r.oneOf('FIRSTOPS_PROXY_MODE', PROXY_MODES), problem),
    clientCerts: readClientCertFiles(env, upstreams, problem),
    debugHost: r.string('FIRSTOPS_DEBUG_HOST'),
    debugPort: readDebugPort(r),
    debugAllowRemote: r.oneOf('FIRSTOPS_DEBUG_ALLOW_REMOTE', ['false', 'true'] as const) === 'true',
    debugHistory: r.integer('FIRSTOPS_DEBUG_HISTORY', 1, 10_000),
    usageMetrics: r.oneOf('FIRSTOPS_USAGE_METRICS', ['on', 'off'] as const) === 'on',
  };
  if (config.debugPort !== undefined && config.debugHost && !config.debugAllowRemote && !isLoopbackHost(config.debugHost)) {
    r.problem('FIRSTOPS_DEBUG_HOST', config.debugHost, 'a loopback address (127.0.0.1, ::1, localhost); the debug listener shows request history and changes log levels, so a non-loopback host also needs FIRSTOPS_DEBUG_ALLOW_REMOTE=true (unsafe: anyone who reaches the port can use it)');
  }
  if (config.debugPort !== undefined && config.debugPort !== 0 && (config.debugPort === config.port || config.debugPort === config.adminPort)) {
    r.problem('FIRSTOPS_DEBUG_PORT', String(config.debugPort), 'a port different from FIRSTOPS_PORT and FIRSTOPS_ADMIN_PORT (or off)');
  }
  if (config.port !== 0 && config.port === config.adminPort && config.listenHost === config.adminHost) {
    r.problem('FIRSTOPS_ADMIN_PORT', String(config.adminPort), 'a port different from FIRSTOPS_PORT');
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/**
 * The configuration as `check` prints it: upstream URLs as parsed, and for
 * egress which target goes through which proxy, proxy credentials redacted.
 */
export function describeConfig(config: Config): Record<string, unknown> {
  const { egress, clientCerts, memory, ...rest } = config;
  const targets: Record<string, string> = {};
  for (const [name, u] of config.upstreams) targets[`upstream ${name} ${u.origin}`] = describeRoute(egress, u.origin);
  if (config.gatewayUrl) targets[`gateway ${new URL(config.gatewayUrl).origin}`] = describeRoute(egress, config.gatewayUrl);
  return {
    ...rest,
    upstreams: Object.fromEntries([...config.upstreams].map(([name, u]) => [name, u.origin + u.basePath])),
    egress: {
      mode: egress.mode,
      https_proxy: egress.https?.shown ?? null,
      http_proxy: egress.http?.shown ?? null,
      all_proxy: egress.all?.shown ?? null,
      no_proxy: egress.noProxy.entries,
      targets,
    },
    tls_client_certificates: Object.fromEntries([...clientCerts].map(([name, files]) => [name, files])),
    memory: { ...describeMemory(memory), warning: memory.warning ?? null },
  };
}
