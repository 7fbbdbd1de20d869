// Deep imports (./undici.ts): undici's index would load all of undici (and Node's bundled copy through it).
import type { Dispatcher, Pool as UndiciPool, buildConnector } from 'undici';
import { Pool, ProxyAgent } from './undici.ts';
import type { ProxyServer } from './proxies.ts';
import { ProxyError, tlsCode } from './proxy-error.ts';

export interface PoolOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
}

type Connector = buildConnector.connector;
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);

/** An error met on the way to the proxy, as the proxy's failure; an abort stays what it is. */
function asProxyError(err: unknown, proxy: string): unknown {
  if (err instanceof ProxyError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const name = (err as { name?: unknown } | undefined)?.name;
  if (code === 'UND_ERR_ABORTED' || name === 'AbortError' || name === 'TimeoutError') return err;
  const kind = tlsCode(err) ? 'tls' : typeof code === 'string' && TIMEOUTS.has(code) ? 'timeout' : 'unreachable';
  return new ProxyError(kind, proxy, { cause: err });
}

function tagged(connect: Connector, proxy: string): Connector {
  return ((opts, callback) =>
    connect(opts, (err, socket) => (err ? callback(asProxyError(err, proxy) as Error, null) : callback(null, socket!)))) as Connector;
}

/**
 * The connection to the proxy that CONNECT requests go over. A CONNECT the
 * proxy answers with anything but 200 (407, 403, 502 for a target it cannot
 * reach) becomes a ProxyError carrying the status, as does any failure to
 * reach the proxy, so neither is mistaken for the target's.
 */
class TunnelPool extends Pool {
  readonly #proxy: string;
  constructor(url: URL, options: UndiciPool.Options, proxy: string) {
    super(url, options);
    this.#proxy = proxy;
  }

  // ProxyAgent calls the promise form only.
  override connect(options: Dispatcher.ConnectOptions, callback?: (err: Error | null, data: Dispatcher.ConnectData) => void): any {
    if (callback) return super.connect(options, callback);
    return super.connect(options).then(
      (data) => {
        if (data.statusCode === 200) return data;
        data.socket.on('error', () => undefined).destroy();
        throw new ProxyError('refused', this.#proxy, { status: data.statusCode });
      },
      (err: unknown) => {
        throw asProxyError(err, this.#proxy);
      },
    );
  }
}

/**
 * undici's ProxyAgent for one proxy: https:// targets through a CONNECT
 * tunnel (TLS to the target end to end, verified as without a proxy), http://
 * targets forwarded in absolute form as httpx and curl do (many proxies refuse
 * CONNECT to port 80). Credentials in the proxy URL become
 * Proxy-Authorization. Same timeouts as the direct pool; `tls` adds a client
 * certificate for the target.
 */
export function createProxyAgent(proxy: ProxyServer, options: PoolOptions, tls?: { cert: Buffer; key: Buffer }): Dispatcher {
  const href = proxy.url.href;
  const pool = {
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: 0,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
  };
  return new ProxyAgent({
    uri: href,
    proxyTunnel: false,
    ...pool,
    proxyTls: { timeout: options.connectTimeoutMs },
    requestTls: { timeout: options.connectTimeoutMs, ...(tls ? { cert: tls.cert, key: tls.key } : {}) },
    // CONNECT gets the connect timeout for its answer: a proxy that accepts and says nothing is down.
    clientFactory: (url, opts) => {
      const { connect } = opts as { connect: Connector };
      return new TunnelPool(url, { connect: tagged(connect, proxy.shown), headersTimeout: options.connectTimeoutMs }, proxy.shown);
    },
    // Called with the proxy's own URL for a forward-proxied (http://) target, with the target's origin for a tunnel.
    factory: (origin, opts) => {
      const forward = String(origin) === href;
      const connect = (opts as { connect?: Connector }).connect;
      return new Pool(origin, {
        ...pool,
        ...opts,
        ...(forward && connect ? { connect: tagged(connect, proxy.shown) } : {}),
      });
    },
  });
}
