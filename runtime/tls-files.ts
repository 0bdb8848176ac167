// A TLS listener's certificate and key from two files (a kubernetes.io/tls Secret's tls.crt and
// tls.key), read again on an interval and swapped in for new connections when they change, as
// cert-manager rotates them. node:tls is loaded only here, and only by a listener that uses TLS.

import type * as Tls from 'node:tls';
import type { Logger } from './logger.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** Of both files' bytes: an unchanged pair is not swapped again. */
  hash: string;
}

/** Reads both files; the error names the file that cannot be read. */
export function readKeyPair(files: TlsFiles): KeyPair {
  const fs = process.getBuiltinModule('node:fs');
  const read = (file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`the TLS ${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  };
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'key');
  const hash = process.getBuiltinModule('node:crypto').createHash('sha256').update(cert).update(key).digest('hex');
  return { cert, key, hash };
}

/** Throws with what is wrong when the pair cannot serve (not PEM, key not the certificate's). */
export function checkKeyPair(pair: KeyPair, files: TlsFiles): void {
  const tls: typeof Tls = process.getBuiltinModule('node:tls');
  try {
    tls.createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    throw new Error(`the TLS pair ${files.certFile} / ${files.keyFile} cannot serve: ${(err as Error).message}; give a PEM certificate chain and its unencrypted PEM key`, { cause: err });
  }
}

/**
 * Polls the files (a Secret volume changes by swapping a symlink, which fs.watch on the path does
 * not see) and hands every new pair that can serve to `apply`; a pair that cannot is reported once
 * and the one in force stays.
 */
export function watchKeyPair(
  files: TlsFiles,
  current: KeyPair,
  options: { logger: Logger; what: string; intervalMs?: number; apply(pair: KeyPair): void },
): { close(): void } {
  let inForce = current.hash;
  let lastRefused = '';
  const timer = setInterval(() => {
    let next: KeyPair;
    try {
      next = readKeyPair(files);
      if (next.hash === inForce) return;
      checkKeyPair(next, files);
      options.apply(next);
    } catch (err) {
      const message = (err as Error).message;
      if (message !== lastRefused) options.logger.log('warn', `${options.what} certificate not reloaded; still serving the previous pair`, { error: message });
      lastRefused = message;
      return;
    }
    inForce = next.hash;
    lastRefused = '';
    options.logger.log('info', `${options.what} certificate reloaded`, { certFile: files.certFile });
  }, options.intervalMs ?? 10_000);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
