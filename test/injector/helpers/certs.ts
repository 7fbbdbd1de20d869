/**
 * The injector's test PKI: a CA and server certificates for 127.0.0.1 /
 * localhost, from the shared openssl-based test CA (test/helpers/pki.ts).
 */
import { createTestCa } from '../../helpers/pki.ts';

export interface TestPki {
  dir: string;
  caCert: Buffer;
  /** Issues a new server cert+key signed by the CA; returns their paths. */
  issue(name: string, commonName?: string): { certFile: string; keyFile: string; cert: Buffer; key: Buffer };
  cleanup(): void;
}

export function createTestPki(): TestPki {
  const ca = createTestCa('firstops injector test CA');
  return {
    dir: ca.dir,
    caCert: ca.caCert,
    issue: (name, commonName = 'localhost') => ca.issue(name, { commonName }),
    cleanup: () => ca.cleanup(),
  };
}
