// The inbound gateway holds the destination's public certificate: with --tls-cert/--tls-key the
// originator-facing listener speaks HTTPS (HTTP/1.1 by ALPN), routes as over plain HTTP, and serves
// a rotated pair to new connections without a restart; a pair that cannot serve refuses the start.

import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProxy, silentLogger, type RunningProxy } from '../../proxy/src/index.ts';
import { routeYaml } from '../support/proxy-fixture.ts';
import { makeTestPki, type TestPki } from '../support/tls.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let dir: string;
let pki: TestPki;
let rotated: TestPki;
let upstream: TestUpstream;
let proxy: RunningProxy;
const certFile = (): string => path.join(dir, 'tls.crt');
const keyFile = (): string => path.join(dir, 'tls.key');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-listener-tls-'));
  pki = makeTestPki(path.join(dir, 'pki-a'), 'fhir.acme.example');
  rotated = makeTestPki(path.join(dir, 'pki-b'), 'fhir.acme.example');
  fs.writeFileSync(certFile(), pki.serverCertPem);
  fs.writeFileSync(keyFile(), pki.serverKeyPem);
  upstream = await startUpstream();
  const routes = path.join(dir, 'routes.yaml');
  fs.writeFileSync(routes, routeYaml('acme', `destination: acme\naddressing: { header: true, hosts: [fhir.acme.example] }\nbackend: { url: ${upstream.url}/r4 }`));
  proxy = await startProxy(
    {
      routesFile: routes,
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      intermediaryId: 'gw-tls',
      shutdownGraceMs: 1_000,
      logLevel: 'error',
      accessLog: false,
      listenTls: { certFile: certFile(), keyFile: keyFile(), reloadIntervalMs: 200 },
    },
    { logger: silentLogger() },
  );
});

afterAll(async () => {
  await proxy.shutdown(0);
  await upstream.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One request on a fresh TLS connection, trusting `ca`; resolves with status, body and the peer certificate. */
function get(ca: string): Promise<{ status: number; body: string; alpn: string | false | null; issuer: unknown }> {
  const url = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: url.port, path: '/Patient/p1', servername: 'fhir.acme.example', ca, agent: new https.Agent({ ALPNProtocols: ['http/1.1'], keepAlive: false }), headers: { Host: 'fhir.acme.example' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const socket = res.socket as tls.TLSSocket;
          resolve({ status: res.statusCode ?? 0, body, alpn: socket.alpnProtocol, issuer: socket.getPeerCertificate().issuer.CN });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

it('serves HTTPS on the listener, routes by the Host it was sent, and says http/1.1 by ALPN', async () => {
  expect(proxy.url).toMatch(/^https:\/\//);
  const answer = await get(pki.caPem);
  expect([answer.status, answer.alpn]).toEqual([200, 'http/1.1']);
  expect(answer.body).toContain('"Patient"');
  expect(upstream.received.at(-1)?.headers.forwarded).toContain('proto=https');
});

it('serves a rotated pair to new connections without a restart', async () => {
  fs.writeFileSync(certFile(), rotated.serverCertPem);
  fs.writeFileSync(keyFile(), rotated.serverKeyPem);
  // New connections get the new pair once the poll (200 ms here, 10 s by default) has read it.
  await expect.poll(() => get(rotated.caPem).then((a) => a.status, () => 0), { timeout: 10_000, interval: 100 }).toBe(200);
  await expect(get(pki.caPem)).rejects.toThrow();
});

it('refuses to start with a pair that cannot serve, naming the files', async () => {
  const broken = path.join(dir, 'broken.crt');
  fs.writeFileSync(broken, 'not a certificate');
  await expect(
    startProxy(
      {
        routesFile: path.join(dir, 'routes.yaml'),
        listen: { host: '127.0.0.1', port: 0 },
        adminListen: { host: '127.0.0.1', port: 0 },
        intermediaryId: 'gw-tls',
        shutdownGraceMs: 1_000,
        logLevel: 'error',
        accessLog: false,
        listenTls: { certFile: broken, keyFile: keyFile() },
      },
      { logger: silentLogger() },
    ),
  ).rejects.toThrow(/broken\.crt.*cannot serve/);
});
