// A throw-away private PKI for TLS tests, made with the `openssl` CLI (no npm dependency): a server
// CA and a server certificate for one DNS name, a client CA and a client certificate; plus an HTTPS upstream.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface TestPki {
  dir: string;
  /** File names inside `dir`. */
  files: { ca: string; serverCert: string; serverKey: string; clientCa: string; clientCert: string; clientKey: string };
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCaPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('the openssl CLI is needed for TLS tests: install openssl (apt-get install openssl)', { cause: err });
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`, { cause: err });
  }
}

/** A self-signed CA valid for a day: `<name>.pem` and `<name>.key`. */
function makeCa(dir: string, name: string, commonName: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf certificate signed by CA `<ca>`, with the given extensions. */
function makeLeaf(dir: string, name: string, ca: string, commonName: string, extensions: string): void {
  openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`,
  ]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`,
  ]);
}

/** Writes the PKI into `dir` (created if needed): a server certificate for `serverName`, a client one for `clientName`. */
export function makeTestPki(dir: string, serverName: string, clientName = 'gw-client'): TestPki {
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'ca', 'fhirmesh test server CA');
  makeCa(dir, 'client-ca', 'fhirmesh test client CA');
  makeLeaf(dir, 'server', 'ca', serverName, `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  makeLeaf(dir, 'client', 'client-ca', clientName, 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  const files = {
    ca: 'ca.pem',
    serverCert: 'server.pem',
    serverKey: 'server.key',
    clientCa: 'client-ca.pem',
    clientCert: 'client.pem',
    clientKey: 'client.key',
  };
  const read = (file: string): string => fs.readFileSync(path.join(dir, file), 'utf8');
  return {
    dir,
    files,
    caPem: read(files.ca),
    serverCertPem: read(files.serverCert),
    serverKeyPem: read(files.serverKey),
    clientCaPem: read(files.clientCa),
    clientCertPem: read(files.clientCert),
    clientKeyPem: read(files.clientKey),
  };
}

export interface HttpsUpstream {
  url: string;
  port: number;
  /** Client certificate subject CN of each request that arrived ('' when none was presented). */
  clientNames: string[];
  close(): Promise<void>;
}

/**
 * An HTTPS FHIR server on 127.0.0.1:0 answering 200 with a small Patient. With `clientCaPem` it
 * requires a client certificate signed by that CA and refuses the handshake without one.
 */
export async function startHttpsUpstream(pki: TestPki, options: { requireClientCert?: boolean } = {}): Promise<HttpsUpstream> {
  const clientNames: string[] = [];
  const server = https.createServer(
    {
      key: pki.serverKeyPem,
      cert: pki.serverCertPem,
      ...(options.requireClientCert === true ? { requestCert: true, rejectUnauthorized: true, ca: pki.clientCaPem } : {}),
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const commonName = peer.subject?.CN;
      clientNames.push(typeof commonName === 'string' ? commonName : '');
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ resourceType: 'Patient', id: 'p1' });
        res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
    },
  );
  // Failed handshakes are the point of some tests; they must not surface as unhandled errors.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    clientNames,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
