import type { Agent, Dispatcher } from 'undici';
import * as undici from './undici.ts';
import { loadClientCertificates, type ClientCertFiles, type ClientCertificate } from './client-certs.ts';
import { anyProxy, describeRoute, proxyFor, type EgressConfig, type ProxyServer } from './proxies.ts';
import type { Logger } from '../log.ts';
import { createProxyAgent } from './proxy-agent.ts';

export interface DispatcherOptions {
  connectTimeoutMs: number;
  /** Time allowed for response headers; the body has no idle timeout (streams may idle for minutes). */
  headersTimeoutMs: number;
  /** Proxy variables as read; undefined or without a proxy: every connection is direct. */
  egress?: EgressConfig | undefined;
  /** mTLS client certificates by target origin (https://host[:port]). */
  clientCerts?: ReadonlyMap<string, ClientCertificate> | undefined;
}

function directAgent(options: DispatcherOptions, tls?: ClientCertificate): Agent {
  return new undici.Agent({
    connect: { timeout: options.connectTimeoutMs, ...(tls ? { cert: tls.cert, key: tls.key } : {}) },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  });
}

/**
 * ProxyAgent folds a flat header list into an object (repeated fields would
 * collapse to the last): a repeated name becomes an array instead, which
 * undici sends as separate lines, as the direct path does.
 */
function headerObject(headers: Dispatcher.DispatchOptions['headers']): Dispatcher.DispatchOptions['headers'] {
  if (!Array.isArray(headers)) return headers;
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const name = String(headers[i]);
    const value = headers[i + 1] as string | string[];
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else out[name] = ([] as string[]).concat(seen, value);
  }
  return out;
}

interface Route {
  readonly dispatcher: Dispatcher;
  readonly proxied: boolean;
}

const MAX_ROUTES = 256;

/**
 * Sends each request to the dispatcher its origin needs: the shared direct
 * pool, a proxy's ProxyAgent (one per proxy URL), or, for an upstream with a
 * client certificate, a dispatcher of its own. Routes are decided once per
 * origin; the request itself costs a Map lookup.
 */
class EgressDispatcher extends undici.Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #direct: Agent;
  readonly #proxies = new Map<string, Dispatcher>();
  readonly #dedicated: Dispatcher[] = [];
  readonly #routes = new Map<string, Route>();

  constructor(options: DispatcherOptions) {
    super();
    this.#options = options;
    this.#direct = directAgent(options);
    for (const [origin, tls] of options.clientCerts ?? []) {
      const proxy = proxyFor(options.egress, new URL(origin));
      const dispatcher = proxy ? createProxyAgent(proxy, options, tls) : directAgent(options, tls);
      this.#dedicated.push(dispatcher);
      this.#routes.set(origin, { dispatcher, proxied: proxy !== undefined });
    }
  }

  #proxyAgent(proxy: ProxyServer): Dispatcher {
    let agent = this.#proxies.get(proxy.url.href);
    if (!agent) {
      agent = createProxyAgent(proxy, this.#options);
      this.#proxies.set(proxy.url.href, agent);
    }
    return agent;
  }

  #route(origin: string): Route {
    let route = this.#routes.get(origin);
    if (route) return route;
    const proxy = proxyFor(this.#options.egress, new URL(origin));
    route = proxy ? { dispatcher: this.#proxyAgent(proxy), proxied: true } : { dispatcher: this.#direct, proxied: false };
    // Origins come from the configuration; the cap only guards against a caller that invents them.
    if (this.#routes.size < MAX_ROUTES) this.#routes.set(origin, route);
    return route;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = typeof options.origin === 'string' ? options.origin : String(options.origin?.origin);
    const route = this.#route(origin);
    if (!route.proxied) return route.dispatcher.dispatch(options, handler);
    return route.dispatcher.dispatch({ ...options, headers: headerObject(options.headers) }, handler);
  }

  #all(): Dispatcher[] {
    return [this.#direct, ...this.#proxies.values(), ...this.#dedicated];
  }

  override close(callback?: () => void): any {
    const done = Promise.all(this.#all().map((d) => d.close())).then(() => undefined);
    if (callback) void done.then(callback, callback);
    else return done;
  }

  override destroy(err?: Error | null | (() => void), callback?: () => void): any {
    const cb = typeof err === 'function' ? err : callback;
    const reason = typeof err === 'function' ? null : err ?? null;
    const done = Promise.all(this.#all().map((d) => d.destroy(reason))).then(() => undefined);
    if (cb) void done.then(cb, cb);
    else return done;
  }
}

/**
 * The connection pool for every outbound hop. `bodyTimeout: 0` because an
 * LLM generation or an MCP GET stream may stay silent for a long time; the
 * client's own disconnect aborts it instead. Without a proxy and without
 * client certificates this is one plain Agent, as fast as before egress
 * routing existed.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  if (!anyProxy(options.egress) && !options.clientCerts?.size) return directAgent(options);
  return new EgressDispatcher(options);
}

/** What openDispatcher reads of the configuration (src/config.ts builds it from the environment). */
export interface EgressSettings {
  readonly upstreams: ReadonlyMap<string, { readonly origin: string }>;
  readonly gatewayUrl: string | undefined;
  readonly egress: EgressConfig;
  readonly clientCerts: ReadonlyMap<string, ClientCertFiles>;
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
}

/**
 * The dispatcher `serve` uses, from the configuration: client certificate
 * files read and checked (a ClientCertificateError names every unusable
 * one), and one log line saying which target goes through which proxy.
 */
export async function openDispatcher(config: EgressSettings, logger: Logger): Promise<Dispatcher> {
  const certs = await loadClientCertificates(config.clientCerts);
  const byOrigin = new Map<string, ClientCertificate>();
  for (const [name, cert] of certs) byOrigin.set(config.upstreams.get(name)!.origin, cert);
  const targets: Record<string, string> = {};
  for (const [name, u] of config.upstreams) targets[`upstream ${name}`] = describeRoute(config.egress, u.origin);
  if (config.gatewayUrl) targets.gateway = describeRoute(config.egress, config.gatewayUrl);
  logger.info({ proxy_mode: config.egress.mode, targets, client_certificates: [...certs.keys()] }, 'egress');
  return createDispatcher({
    connectTimeoutMs: config.connectTimeoutMs,
    headersTimeoutMs: config.upstreamTimeoutMs,
    egress: config.egress,
    clientCerts: byOrigin,
  });
}
