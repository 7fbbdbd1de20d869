import { parseNoProxy, type NoProxy } from './no-proxy.ts';

export type ProxyMode = 'env' | 'off';
export const PROXY_MODES: readonly ProxyMode[] = ['env', 'off'];

export interface ProxyServer {
  /** The proxy URL, credentials included (used for Proxy-Authorization; never printed). */
  readonly url: URL;
  /** scheme://host:port, with `***@` when the URL carries credentials: safe to log and print. */
  readonly shown: string;
  /** The variable it came from, e.g. `https_proxy`. */
  readonly variable: string;
}

export interface EgressConfig {
  readonly mode: ProxyMode;
  /** For http:// targets (HTTP_PROXY). */
  readonly http: ProxyServer | undefined;
  /** For https:// targets (HTTPS_PROXY). */
  readonly https: ProxyServer | undefined;
  /** Fallback for both (ALL_PROXY). */
  readonly all: ProxyServer | undefined;
  readonly noProxy: NoProxy;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** A proxy variable as the tools agree: the lower-case spelling wins, even set empty ("no proxy"). */
function pick(env: Env, lower: string): { variable: string; value: string } | undefined {
  const upper = lower.toUpperCase();
  const variable = env[lower] !== undefined ? lower : env[upper] !== undefined ? upper : undefined;
  if (variable === undefined) return undefined;
  const value = (env[variable] ?? '').trim();
  return value === '' ? undefined : { variable, value };
}

/** The shown form of a proxy URL: never its user or password. */
export function redactProxyUrl(url: URL): string {
  return `${url.protocol}//${url.username || url.password ? '***@' : ''}${url.host}`;
}

/** Parses one proxy URL; a bare `host:port` means http:// as in curl and httpx. Returns a problem or the URL. */
export function parseProxyUrl(value: string): URL | string {
  const text = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'a proxy URL such as http://proxy.internal:3128';
  }
  if (url.protocol.startsWith('socks')) {
    return 'an http:// or https:// proxy (SOCKS is not supported; FIRSTOPS_PROXY_MODE=off ignores the proxy variables)';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'an http:// or https:// proxy URL';
  if (!url.hostname) return 'a proxy URL with a host';
  if (url.pathname !== '/' || url.search || url.hash) return 'a proxy URL without path, query or fragment';
  return url;
}

/**
 * HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY (either case, lower case
 * first), as the Python sidecar's httpx reads them: an https:// target uses
 * HTTPS_PROXY, else ALL_PROXY; an http:// target HTTP_PROXY, else ALL_PROXY.
 * `FIRSTOPS_PROXY_MODE=off` ignores all of them. `problem(variable, value,
 * expected)` collects what cannot be used.
 */
export function readEgress(env: Env, mode: ProxyMode, problem: (name: string, value: string, expected: string) => void): EgressConfig {
  if (mode === 'off') return { mode, http: undefined, https: undefined, all: undefined, noProxy: parseNoProxy('') };
  const server = (lower: string): ProxyServer | undefined => {
    const found = pick(env, lower);
    if (!found) return undefined;
    const url = parseProxyUrl(found.value);
    if (typeof url === 'string') {
      problem(found.variable, found.value, url);
      return undefined;
    }
    return { url, shown: redactProxyUrl(url), variable: found.variable };
  };
  return {
    mode,
    http: server('http_proxy'),
    https: server('https_proxy'),
    all: server('all_proxy'),
    noProxy: parseNoProxy(pick(env, 'no_proxy')?.value ?? ''),
  };
}

/** True when some target could go through a proxy (otherwise the plain connection pool is all there is). */
export function anyProxy(egress: EgressConfig | undefined): boolean {
  return egress !== undefined && egress.mode === 'env' && !egress.noProxy.all && (egress.http ?? egress.https ?? egress.all) !== undefined;
}

/** The proxy a request to `origin` goes through, or undefined for a direct connection. */
export function proxyFor(egress: EgressConfig | undefined, origin: URL): ProxyServer | undefined {
  if (!egress || egress.mode === 'off') return undefined;
  const proxy = origin.protocol === 'https:' ? (egress.https ?? egress.all) : (egress.http ?? egress.all);
  if (!proxy || egress.noProxy.matches(origin)) return undefined;
  return proxy;
}

/** How `check` and the startup log show a target's route: `via <proxy>` or `direct (<why>)`. */
export function describeRoute(egress: EgressConfig | undefined, origin: string): string {
  const url = new URL(origin);
  if (!egress || egress.mode === 'off') return 'direct (FIRSTOPS_PROXY_MODE=off)';
  const proxy = origin.startsWith('https:') ? (egress.https ?? egress.all) : (egress.http ?? egress.all);
  if (!proxy) return `direct (no ${url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY'} or ALL_PROXY)`;
  if (egress.noProxy.matches(url)) return 'direct (NO_PROXY)';
  return `via ${proxy.shown} (${proxy.variable})`;
}
