// The e2e cluster's certificates, made with the openssl CLI: one CA that signs the apiserver's serving
// certificate (pods trust it through kube-root-ca.crt) and the apiserver's client certificate for the
// kubelet; the service-account key pair. Tokens (static, in a CSV) authenticate everyone else.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface ClusterPki {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
  caPem: string;
}

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`, { cause: err });
  }
}

/** A CA valid for a day and a leaf it signs; `ext` is the leaf's extension lines. */
export function makeCa(dir: string, name: string, commonName: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '2', '-subj', `/CN=${commonName}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

export function makeLeaf(dir: string, name: string, ca: string, subject: string, ext: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makeClusterPki(dir: string, nodeIp: string, serviceIp: string): ClusterPki {
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'ca', 'fhirmesh-e2e-ca');
  const sans = ['DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local', 'DNS:localhost', `IP:${serviceIp}`, `IP:${nodeIp}`, 'IP:127.0.0.1'];
  makeLeaf(dir, 'apiserver', 'ca', '/CN=kube-apiserver', `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  // The kubelet authenticates the apiserver (logs, exec, port-forward) by this certificate.
  makeLeaf(dir, 'kubelet-client', 'ca', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const file = (name: string): string => path.join(dir, name);
  fs.writeFileSync(file('sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  fs.writeFileSync(file('sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    apiserverCert: file('apiserver.crt'),
    apiserverKey: file('apiserver.key'),
    kubeletClientCert: file('kubelet-client.crt'),
    kubeletClientKey: file('kubelet-client.key'),
    serviceAccountPublicKey: file('sa.pub'),
    serviceAccountPrivateKey: file('sa.key'),
    caPem: fs.readFileSync(file('ca.crt'), 'utf8'),
  };
}
