import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export const CLIENT_CERT_PREFIX = 'FIRSTOPS_TLS_CLIENT_CERT_';
export const CLIENT_KEY_PREFIX = 'FIRSTOPS_TLS_CLIENT_KEY_';

export interface ClientCertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ClientCertificate {
  /** PEM, possibly a chain (leaf first), handed to TLS as is. */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

/**
 * FIRSTOPS_TLS_CLIENT_CERT_<NAME> / FIRSTOPS_TLS_CLIENT_KEY_<NAME>: file
 * paths of a PEM client certificate and its key for upstream <name> (mTLS).
 * Not under FIRSTOPS_UPSTREAM_, where every suffix names a provider. Returns
 * the pairs by upstream name; `problem` gets each half-set or misnamed pair.
 */
export function readClientCertFiles(
  env: Readonly<Record<string, string | undefined>>,
  upstreams: ReadonlyMap<string, { origin: string }>,
  problem: (name: string, value: string, expected: string) => void,
): Map<string, ClientCertFiles> {
  const halves = new Map<string, { cert?: string; key?: string }>();
  for (const [variable, value] of Object.entries(env)) {
    const prefix = variable.startsWith(CLIENT_CERT_PREFIX) ? CLIENT_CERT_PREFIX : variable.startsWith(CLIENT_KEY_PREFIX) ? CLIENT_KEY_PREFIX : undefined;
    if (prefix === undefined || value === undefined || value.trim() === '') continue;
    const suffix = variable.slice(prefix.length);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(suffix)) {
      problem(variable, value, `an upstream name of letters, digits, '_' or '-' after ${prefix}`);
      continue;
    }
    const name = suffix.toLowerCase();
    const half = halves.get(name) ?? {};
    if (prefix === CLIENT_CERT_PREFIX) half.cert = value.trim();
    else half.key = value.trim();
    halves.set(name, half);
  }
  const pairs = new Map<string, ClientCertFiles>();
  const byOrigin = new Map<string, string>();
  for (const [name, half] of halves) {
    const NAME = name.toUpperCase();
    if (half.cert === undefined || half.key === undefined) {
      const missing = half.cert === undefined ? CLIENT_CERT_PREFIX + NAME : CLIENT_KEY_PREFIX + NAME;
      problem(missing, '', `the file path of the ${half.cert === undefined ? 'certificate' : 'private key'} too (a client certificate needs both)`);
      continue;
    }
    const upstream = upstreams.get(name);
    if (!upstream) {
      problem(CLIENT_CERT_PREFIX + NAME, half.cert, `the name of a configured upstream (known: ${[...upstreams.keys()].join(', ')})`);
      continue;
    }
    if (!upstream.origin.startsWith('https:')) {
      problem(CLIENT_CERT_PREFIX + NAME, half.cert, `an https:// upstream (FIRSTOPS_UPSTREAM_${NAME} is ${upstream.origin})`);
      continue;
    }
    const other = byOrigin.get(upstream.origin);
    if (other !== undefined) {
      problem(CLIENT_CERT_PREFIX + NAME, half.cert, `one client certificate per origin (${other} already has one for ${upstream.origin})`);
      continue;
    }
    byOrigin.set(upstream.origin, name);
    pairs.set(name, { certFile: half.cert, keyFile: half.key });
  }
  return pairs;
}

/** A pair that cannot be used, as one line naming the variable (never the key material). */
async function loadOne(name: string, files: ClientCertFiles, now: Date): Promise<ClientCertificate | string> {
  const NAME = name.toUpperCase();
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = await readFile(files.certFile);
  } catch (err) {
    return `${CLIENT_CERT_PREFIX}${NAME}=${JSON.stringify(files.certFile)}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  try {
    key = await readFile(files.keyFile);
  } catch (err) {
    return `${CLIENT_KEY_PREFIX}${NAME}=${JSON.stringify(files.keyFile)}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return `${CLIENT_CERT_PREFIX}${NAME}=${JSON.stringify(files.certFile)}: not a PEM certificate`;
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return `${CLIENT_KEY_PREFIX}${NAME}=${JSON.stringify(files.keyFile)}: not an unencrypted PEM private key`;
  }
  if (!x509.checkPrivateKey(privateKey)) {
    return `${CLIENT_KEY_PREFIX}${NAME}=${JSON.stringify(files.keyFile)}: the key does not belong to the certificate in ${CLIENT_CERT_PREFIX}${NAME}`;
  }
  if (new Date(x509.validTo) < now) return `${CLIENT_CERT_PREFIX}${NAME}=${JSON.stringify(files.certFile)}: the certificate expired ${x509.validTo}`;
  if (new Date(x509.validFrom) > now) return `${CLIENT_CERT_PREFIX}${NAME}=${JSON.stringify(files.certFile)}: the certificate is not valid before ${x509.validFrom}`;
  return { cert, key, subject: x509.subject.replaceAll('\n', ', '), validTo: x509.validTo, fingerprint256: x509.fingerprint256 };
}

/** Reads and checks every configured pair; throws one error listing every unusable one. */
export async function loadClientCertificates(pairs: ReadonlyMap<string, ClientCertFiles>, now = new Date()): Promise<Map<string, ClientCertificate>> {
  const loaded = new Map<string, ClientCertificate>();
  const problems: string[] = [];
  for (const [name, files] of pairs) {
    const result = await loadOne(name, files, now);
    if (typeof result === 'string') problems.push(result);
    else loaded.set(name, result);
  }
  if (problems.length > 0) throw new ClientCertificateError(problems);
  return loaded;
}

export class ClientCertificateError extends Error {
  readonly code = 'invalid_client_certificate';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`unusable TLS client certificate${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ClientCertificateError';
    this.problems = problems;
  }
}
