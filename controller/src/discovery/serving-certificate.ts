// The discovery listener's TLS identity (--grpc-tls-cert, --grpc-tls-key): checked at start, then read
// again on an interval and swapped in for new connections when the files change (cert-manager rotation).

import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../runtime/index.ts';
import { ControllerError } from '../errors.ts';

export interface ServingCertificateFiles {
  /** PEM certificate chain, leaf first (tls.crt of a kubernetes.io/tls Secret). */
  certFile: string;
  /** Its unencrypted PEM private key (tls.key). */
  keyFile: string;
}

export interface ServingCertificateOptions {
  logger: Logger;
  /**
   * How often the files are read again. Polling, not fs.watch: a Secret volume changes by swapping a
   * symlink (..data), which a watch on the file path does not see. Default 10 s; the kubelet itself
   * takes up to a minute or so to project a rotated Secret.
   */
  reloadIntervalMs?: number;
}

interface KeyPair {
  cert: Buffer;
  key: Buffer;
  subject: string;
  notAfter: Date;
}

type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * A grpc-js CertificateProvider over two files. grpc-js calls setSecureContext() on its listener with
 * each update, so a rotated pair serves every new connection without a restart; connections already
 * open keep the pair they were made with (TLS cannot change it mid-connection).
 */
export class ServingCertificate implements grpc.experimental.CertificateProvider {
  readonly files: ServingCertificateFiles;
  readonly #logger: Logger;
  readonly #reloadIntervalMs: number;
  readonly #listeners = new Set<IdentityListener>();
  #current: KeyPair;
  #timer: NodeJS.Timeout | undefined;
  /** The last refusal (pair hash or read error), so files that stay broken are reported once, not every interval. */
  #lastRefused = '';

  /** Reads and checks the pair; FHIRMESH_TLS_UNUSABLE with the flag, the file and the fix when it cannot serve. */
  static load(files: ServingCertificateFiles, options: ServingCertificateOptions): ServingCertificate {
    return new ServingCertificate(files, options, usablePair(files, readPair(files)));
  }

  private constructor(files: ServingCertificateFiles, options: ServingCertificateOptions, pair: KeyPair) {
    this.files = files;
    this.#logger = options.logger;
    this.#reloadIntervalMs = options.reloadIntervalMs ?? 10_000;
    this.#current = pair;
    if (pair.notAfter.getTime() <= Date.now()) {
      this.#logger.log('warn', 'the gRPC serving certificate has expired: proxies will refuse the controller until it is renewed', this.describe());
    }
  }

  /** What is served now, for logs. */
  describe(): { certFile: string; subject: string; notAfter: string } {
    return { certFile: this.files.certFile, subject: this.#current.subject, notAfter: this.#current.notAfter.toISOString() };
  }

  /** Server credentials that follow this provider: TLS, no client certificates (proxies prove who they are with a token). */
  serverCredentials(): grpc.ServerCredentials {
    // grpc-js 1.14 declares the first parameter as caCertificateProvider but hands it to the
    // credentials as the identity provider (server-credentials.ts), and the second, nullable one as
    // the CA that client certificates are checked against. So: identity first, no client CA.
    // test/unit/controller/serves-discovery-over-tls-and-reloads-the-pair.test.ts fails if that changes.
    return grpc.experimental.createCertificateProviderServerCredentials(this, null, false);
  }

  /**
   * Reads the files again. A changed, usable pair is swapped in; a changed pair that is not usable
   * (half-rotated, mismatched) is refused and the pair in force stays, until the files change again.
   */
  reload(): 'unchanged' | 'reloaded' | 'refused' {
    let pair: KeyPair;
    // What was refused: the pair's hash, or the read error (a Secret volume gone), reported once each.
    let refusal = '';
    try {
      const read = readPair(this.files);
      if (read.cert.equals(this.#current.cert) && read.key.equals(this.#current.key)) return 'unchanged';
      refusal = crypto.createHash('sha256').update(read.cert).update(read.key).digest('hex');
      if (refusal === this.#lastRefused) return 'refused';
      pair = usablePair(this.files, read);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      refusal ||= error;
      if (refusal === this.#lastRefused) return 'refused';
      this.#lastRefused = refusal;
      this.#logger.log('warn', 'the gRPC serving certificate files changed but cannot be used; still serving the previous pair', { ...this.describe(), error });
      return 'refused';
    }
    this.#current = pair;
    this.#lastRefused = '';
    this.#logger.log('info', 'gRPC serving certificate reloaded; new connections use it', this.describe());
    for (const listener of this.#listeners) listener({ certificate: pair.cert, privateKey: pair.key });
    return 'reloaded';
  }

  /** Stops reading the files (controller shutdown). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.add(listener);
    // grpc-js waits for this first update before it accepts connections on the listener.
    const { cert, key } = this.#current;
    process.nextTick(listener, { certificate: cert, privateKey: key });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.reload(), this.#reloadIntervalMs);
      this.#timer.unref();
    }
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0) this.close();
  }

  // No client CA: serverCredentials() passes none, so grpc-js never asks for one.
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
}

function readPair(files: ServingCertificateFiles): { cert: Buffer; key: Buffer } {
  const read = (flag: string, file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ControllerError('FHIRMESH_TLS_UNUSABLE', `${flag} ${file} cannot be read (${code}): give ${what} in PEM (tls.crt / tls.key of the Secret grpc.tls.secretName)`, { cause: err });
    }
  };
  return { cert: read('--grpc-tls-cert', files.certFile, 'the certificate chain'), key: read('--grpc-tls-key', files.keyFile, 'its private key') };
}

/** The pair if TLS can serve it (parses, key matches certificate); FHIRMESH_TLS_UNUSABLE saying why not. */
function usablePair(files: ServingCertificateFiles, pair: { cert: Buffer; key: Buffer }): KeyPair {
  let leaf: crypto.X509Certificate;
  try {
    leaf = new crypto.X509Certificate(pair.cert);
    // Builds the context grpc-js will build: catches a key of another certificate, or an encrypted key.
    tls.createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '') : String(err);
    throw new ControllerError(
      'FHIRMESH_TLS_UNUSABLE',
      `--grpc-tls-cert ${files.certFile} and --grpc-tls-key ${files.keyFile} are not a usable pair (${why}): give a PEM certificate chain and its unencrypted private key`,
      { cause: err },
    );
  }
  return { ...pair, subject: leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', '), notAfter: leaf.validToDate };
}
