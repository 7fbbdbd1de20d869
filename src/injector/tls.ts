/**
 * Webhook serving certificate: loading, and reloading when the files change.
 * cert-manager (and kubelet's Secret volume updates) replace the files by an
 * atomic symlink swap, which file watchers see unreliably; polling the bytes
 * is cheap at this size and sees every kind of replacement. A half-rotated
 * pair (new cert, old key) fails to load and is retried on the next tick
 * while the server keeps the last good pair.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { InjectorError } from './errors.ts';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
  /** SHA-256 fingerprint of the leaf certificate, for logs. */
  fingerprint: string;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

function build(cert: Buffer, key: Buffer, files: TlsFiles): TlsMaterial {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
    // Throws when the key is unreadable or does not match the certificate.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new InjectorError(
      'INJECTOR_TLS_INVALID',
      `cannot use ${files.certFile} with ${files.keyFile}: ${(err as Error).message}`,
    );
  }
  return { cert, key, notAfter: new Date(leaf.validTo), fingerprint: leaf.fingerprint256 };
}

function readOrThrow(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InjectorError('INJECTOR_TLS_INVALID', `cannot read the webhook ${what} ${file}: ${(err as Error).message}`);
  }
}

/** Synchronous load for startup; throws INJECTOR_TLS_INVALID. */
export function loadTls(files: TlsFiles): TlsMaterial {
  return build(readOrThrow(files.certFile, 'certificate'), readOrThrow(files.keyFile, 'private key'), files);
}

export interface TlsWatcher {
  stop(): void;
}

export interface WatchOptions {
  files: TlsFiles;
  intervalMs: number;
  current: TlsMaterial;
  onChange(material: TlsMaterial): void;
  onError(error: InjectorError): void;
}

function digest(cert: Buffer, key: Buffer): string {
  return createHash('sha256').update(cert).update('\0').update(key).digest('hex');
}

export function watchTls(options: WatchOptions): TlsWatcher {
  let current = digest(options.current.cert, options.current.key);
  let lastFailed: string | undefined;
  let lastReadError: string | undefined;
  let running = false;

  const tick = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const [cert, key] = await Promise.all([readFile(options.files.certFile), readFile(options.files.keyFile)]);
      lastReadError = undefined;
      const seen = digest(cert, key);
      if (seen === current || seen === lastFailed) return;
      try {
        const material = build(cert, key, options.files);
        current = seen;
        lastFailed = undefined;
        options.onChange(material);
      } catch (err) {
        lastFailed = seen;
        options.onError(err as InjectorError);
      }
    } catch (err) {
      // Missing files during a swap: keep serving the last good pair, report once.
      const message = `cannot read webhook TLS files: ${(err as Error).message}`;
      if (message !== lastReadError) options.onError(new InjectorError('INJECTOR_TLS_INVALID', message));
      lastReadError = message;
    } finally {
      running = false;
    }
  };

  const timer = setInterval(() => void tick(), options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
