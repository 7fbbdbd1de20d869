import { BlockList, isIP } from 'node:net';

export interface NoProxy {
  /** The entries as written (for `check`). */
  readonly entries: readonly string[];
  /** True when NO_PROXY is `*` (or contains it): nothing is proxied. */
  readonly all: boolean;
  /** True when a request to `url` (an origin) must bypass the proxy. */
  matches(url: URL): boolean;
}

interface NameEntry {
  readonly scheme: string | undefined;
  readonly name: string;
  readonly port: number;
}

const DEFAULT_PORT: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const kind = isIP(address);
  return kind === 4 ? 'ipv4' : kind === 6 ? 'ipv6' : undefined;
}

/**
 * NO_PROXY as curl, Go and Python's httpx read it: entries separated by
 * commas or white space; `*` bypasses everything; a host name matches itself
 * and its subdomains (a leading `.` or `*.` changes nothing); an IP address or
 * CIDR range (`10.0.0.0/8`, `fd00::/8`) matches addresses in it; `host:port`
 * and `[v6]:port` only that port; `scheme://host` only that scheme. Names
 * are compared case-insensitively and never resolved.
 */
export function parseNoProxy(value: string): NoProxy {
  const entries = value.split(/[\s,]+/).map((e) => e.trim()).filter((e) => e !== '');
  const names: NameEntry[] = [];
  const addresses = new BlockList();
  let all = false;
  for (const raw of entries) {
    if (raw === '*') {
      all = true;
      continue;
    }
    let entry = raw.toLowerCase();
    let scheme: string | undefined;
    const schemeEnd = entry.indexOf('://');
    if (schemeEnd !== -1) {
      scheme = `${entry.slice(0, schemeEnd)}:`;
      entry = entry.slice(schemeEnd + 3).replace(/\/.*$/, '');
    }
    let port = 0;
    let host = entry;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      host = bracketed[1]!;
      port = bracketed[2] ? Number(bracketed[2]) : 0;
    } else if (entry.split(':').length === 2 && !entry.includes('/')) {
      const [h, p] = entry.split(':') as [string, string];
      if (/^\d+$/.test(p)) {
        host = h;
        port = Number(p);
      }
    }
    const slash = host.indexOf('/');
    const address = slash === -1 ? host : host.slice(0, slash);
    const kind = family(address);
    if (kind && scheme === undefined && port === 0) {
      const prefix = slash === -1 ? (kind === 'ipv4' ? 32 : 128) : Number(host.slice(slash + 1));
      if (Number.isInteger(prefix) && prefix >= 0 && prefix <= (kind === 'ipv4' ? 32 : 128)) {
        addresses.addSubnet(address, prefix, kind);
        continue;
      }
    }
    names.push({ scheme, name: host.replace(/^\*?\./, ''), port });
  }

  return {
    entries,
    all,
    matches(url: URL): boolean {
      if (all) return true;
      const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
      const kind = family(host);
      if (kind && addresses.check(host, kind)) return true;
      const port = url.port === '' ? (DEFAULT_PORT[url.protocol] ?? 0) : Number(url.port);
      for (const entry of names) {
        if (entry.scheme !== undefined && entry.scheme !== url.protocol) continue;
        if (entry.port !== 0 && entry.port !== port) continue;
        if (host === entry.name || host.endsWith(`.${entry.name}`)) return true;
      }
      return false;
    },
  };
}
