// The injected sidecar gets the controller's CA inline (FHIRMESH_CONTROLLER_CA_PEM), as linkerd
// passes its trust anchors; a gateway or a hand-written pod may mount it as a file.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { FlagError, parseProxyFlags, type ProxyConfig } from '../../../proxy/src/config/flags.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const base = ['--controller', 'ctl.fhirmesh-system.svc:15010', '--controller-server-name', 'ctl.fhirmesh-system.svc'];

function tlsOf(argv: string[], env: NodeJS.ProcessEnv): NonNullable<ProxyConfig['controller']>['tls'] {
  const config = parseProxyFlags(argv, env);
  if (config === 'help') throw new Error('unexpected help');
  return config.controller?.tls;
}

test('inline PEM from FHIRMESH_CONTROLLER_CA_PEM, with the server name', () => {
  expect(tlsOf(base, { FHIRMESH_CONTROLLER_CA_PEM: PEM })).toEqual({ caPem: PEM, serverName: 'ctl.fhirmesh-system.svc' });
});

test('a file from --controller-ca', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-ca-'));
  try {
    fs.writeFileSync(path.join(dir, 'ca.crt'), PEM);
    expect(tlsOf([...base, '--controller-ca', path.join(dir, 'ca.crt')], {})).toEqual({ caPem: PEM, serverName: 'ctl.fhirmesh-system.svc' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('both at once, or an inline value that is no PEM, are refused with what to do', () => {
  expect(() => tlsOf([...base, '--controller-ca', '/etc/ca.crt'], { FHIRMESH_CONTROLLER_CA_PEM: PEM })).toThrow(
    new FlagError('--controller-ca and FHIRMESH_CONTROLLER_CA_PEM exclude each other: give the CA as a file or inline, not both'),
  );
  expect(() => tlsOf(base, { FHIRMESH_CONTROLLER_CA_PEM: 'not a certificate' })).toThrow(
    new FlagError("FHIRMESH_CONTROLLER_CA_PEM holds no PEM certificate: give the CA that issued the controller's certificate"),
  );
});
