/**
 * A test CA made with the openssl CLI (node:crypto cannot issue X.509
 * certificates), issuing server and client certificates with chosen names,
 * purposes and validity (an expired one included).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly caCert: Buffer;
  issue(name: string, options?: { san?: string; purpose?: 'serverAuth' | 'clientAuth'; days?: number; commonName?: string }): Issued;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('the TLS tests need the openssl CLI on PATH (Debian: apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function createTestCa(label = 'firstops egress test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'firstops-test-pki-'));
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${label}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let serial = 2000;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    caCert: readFileSync(join(dir, 'ca.crt')),
    issue(name, options = {}) {
      const purpose = options.purpose ?? 'serverAuth';
      writeFileSync(join(dir, `${name}.ext`), [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        `extendedKeyUsage=${purpose}`,
        ...(purpose === 'serverAuth' ? [`subjectAltName=${options.san ?? 'DNS:localhost,IP:127.0.0.1'}`] : []),
        '',
      ].join('\n'));
      openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${options.commonName ?? name}`], dir);
      serial += 1;
      // A negative -days makes a certificate that expired yesterday.
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial),
        '-days', String(options.days ?? 1), '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
      const certFile = join(dir, `${name}.crt`);
      const keyFile = join(dir, `${name}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
