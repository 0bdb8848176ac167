// The controller's gRPC listener with --grpc-tls-cert/--grpc-tls-key, on loopback with real clients:
// TLS only, an unusable pair refused at start, and a rotated pair served to new connections at once.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ControllerMetrics, createMode, startController, type ControllerConfig, type RunningController } from '../../../controller/src/index.ts';
import { createLogger } from '../../../runtime/index.ts';
import { connectFakeProxy, getProxyStatus, type ControllerTls, type FakeProxy } from '../../support/fake-proxy.ts';
import { makeTestPki, type TestPki } from '../../support/tls.ts';

const SERVER_NAME = 'fhirmesh-controller.fhirmesh-system.svc';

function routeYaml(destination: string, methods: string[] = ['GET', 'POST']): string {
  return [
    'apiVersion: fhirmesh.io/v1alpha1',
    'kind: FhirRoute',
    `metadata: { name: ${destination}, namespace: payers }`,
    'spec:',
    `  destination: ${destination}`,
    '  addressing: { header: true }',
    `  backend: { url: https://${destination}.example.org/fhir }`,
    `  allow: { methods: [${methods.join(', ')}] }`,
    '',
  ].join('\n');
}

/** Replaces a file the way a Secret volume does: the new content appears whole. */
function replace(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

describe('the discovery listener with --grpc-tls-cert and --grpc-tls-key', () => {
  let dir: string;
  let first: TestPki;
  let second: TestPki;
  let routesDir: string;
  let certFile: string;
  let keyFile: string;
  let controller: RunningController;
  const logs: Record<string, unknown>[] = [];
  const proxies: FakeProxy[] = [];

  const config = (grpcTls: ControllerConfig['grpcTls']): ControllerConfig => ({
    source: { kind: 'directory', routesDir },
    grpcListen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    ...(grpcTls === undefined ? {} : { grpcTls }),
    batchWindowMs: 10,
    ackTimeoutMs: 5_000,
    logLevel: 'debug',
  });
  const logger = createLogger({ level: 'debug', component: 'controller', write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const proxy = (tls: ControllerTls | undefined): FakeProxy => {
    const connected = connectFakeProxy({ address: controller.grpcAddress, nodeId: `gw-${proxies.length}`, mode: 'auto', ...(tls === undefined ? {} : { tls }) });
    proxies.push(connected);
    return connected;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-grpc-tls-'));
    first = makeTestPki(path.join(dir, 'first'), SERVER_NAME);
    second = makeTestPki(path.join(dir, 'second'), SERVER_NAME);
    routesDir = path.join(dir, 'routes');
    fs.mkdirSync(routesDir);
    fs.writeFileSync(path.join(routesDir, 'acme.yaml'), routeYaml('acme'));
    // The mounted Secret: starts as the first pair.
    certFile = path.join(dir, 'tls.crt');
    keyFile = path.join(dir, 'tls.key');
    fs.writeFileSync(certFile, first.serverCertPem);
    fs.writeFileSync(keyFile, first.serverKeyPem);
    const tlsConfig = config({ certFile, keyFile });
    const mode = await createMode(tlsConfig, { logger, metrics: new ControllerMetrics({ defaultMetrics: false }), directoryWatch: { debounceMs: 10, pollMs: 100 } });
    controller = await startController(tlsConfig, mode, { tlsReloadIntervalMs: 50 });
    await controller.ready;
  });

  afterAll(async () => {
    for (const connected of proxies) connected.close();
    await controller?.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client that trusts its CA and checks its name, and says so at start', async () => {
    const trusted = proxy({ caPem: first.caPem, serverName: SERVER_NAME });
    const response = await trusted.next();
    expect(response.fullSnapshot).toBe(true);
    expect(response.upserted.map((route) => route.destinationId)).toEqual(['acme']);
    const listening = logs.find((line) => line['msg'] === 'controller listening');
    expect(listening?.['grpcTls']).toMatchObject({ certFile, subject: `DNS:${SERVER_NAME}` });
    expect(logs.find((line) => line['level'] === 'warn' && String(line['msg']).startsWith('discovery streams are unauthenticated:'))).toBeDefined();
    expect((await getProxyStatus(controller.grpcAddress, { caPem: first.caPem, serverName: SERVER_NAME })).proxies).toHaveLength(1);
  });

  it('answers `fhirmesh status --ca --server-name` over TLS, and refuses it without --ca', async () => {
    const caFile = path.join(dir, 'status-ca.pem');
    fs.writeFileSync(caFile, first.caPem);
    const cli = path.resolve(import.meta.dirname, '../../../cli/src/main.ts');
    const node = path.resolve(import.meta.dirname, '../../../node_modules/.bin/node');
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(node, [cli, 'status', '--controller', controller.grpcAddress, '--timeout', '2', ...args], (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr }),
        );
      });
    const ok = await run(['--ca', caFile, '--server-name', SERVER_NAME]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^NODE ID\s+NAMESPACE/);
    expect(ok.stdout).toMatch(/^gw-0\s+payers\s+\S+\s+\S+\s+SYNCED/m);
    const plaintext = await run([]);
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toMatch(/cannot reach the controller/);
  });

  it.each<[string, () => ControllerTls | undefined]>([
    ['a plaintext client', () => undefined],
    ['a client that trusts another CA', () => ({ caPem: second.caPem, serverName: SERVER_NAME })],
    ['a client that expects another name', () => ({ caPem: first.caPem, serverName: 'someone-else.example' })],
  ])('refuses %s: UNAVAILABLE, no response', async (_who, tls) => {
    const refused = proxy(tls());
    const end = await refused.ended;
    expect(grpc.status[end.code]).toBe('UNAVAILABLE');
    expect(refused.responses).toEqual([]);
  });

  it('keeps the pair in force while a rotation is half done, and serves the new pair once it is whole', async () => {
    const before = proxy({ caPem: first.caPem, serverName: SERVER_NAME });
    await before.next();

    // The certificate of the second pair beside the key of the first: refused, the first pair stays.
    const certReads = vi.spyOn(fs, 'readFileSync');
    const readsOfCert = (): number => certReads.mock.calls.filter(([file]) => file === certFile).length;
    try {
      replace(certFile, second.serverCertPem);
      await expect.poll(() => logs.some((line) => String(line['msg']).startsWith('the gRPC serving certificate files changed but cannot be used')), { timeout: 5_000 }).toBe(true);
      const during = proxy({ caPem: first.caPem, serverName: SERVER_NAME });
      expect((await during.next()).fullSnapshot).toBe(true);
      // Said once, not on every 50 ms reload while the files stay as they are: let a few reloads read them.
      const readsAtRefusal = readsOfCert();
      await expect.poll(readsOfCert, { timeout: 5_000 }).toBeGreaterThanOrEqual(readsAtRefusal + 3);
      expect(logs.filter((line) => String(line['msg']).startsWith('the gRPC serving certificate files changed but cannot be used'))).toHaveLength(1);
    } finally {
      certReads.mockRestore();
    }

    replace(keyFile, second.serverKeyPem);
    await expect.poll(() => logs.some((line) => line['msg'] === 'gRPC serving certificate reloaded; new connections use it'), { timeout: 5_000 }).toBe(true);
    const after = proxy({ caPem: second.caPem, serverName: SERVER_NAME });
    expect((await after.next()).upserted.map((route) => route.destinationId)).toEqual(['acme']);
    const stale = proxy({ caPem: first.caPem, serverName: SERVER_NAME });
    expect(grpc.status[(await stale.ended).code]).toBe('UNAVAILABLE');

    // A stream opened under the first pair keeps its connection, and its updates.
    replace(path.join(routesDir, 'acme.yaml'), routeYaml('acme', ['GET']));
    const update = await before.next(5_000);
    expect(update.upserted.find((route) => route.destinationId === 'acme')?.allowedMethods).toEqual(['GET']);
  });

  it.each<[string, () => ControllerConfig['grpcTls'], RegExp]>([
    ['a missing certificate', () => ({ certFile: path.join(dir, 'missing.crt'), keyFile }), /^--grpc-tls-cert \S+missing\.crt cannot be read \(ENOENT\): give the certificate chain in PEM/],
    [
      'a key of another certificate',
      () => ({ certFile: path.join(first.dir, first.files.serverCert), keyFile: path.join(second.dir, second.files.serverKey) }),
      /^--grpc-tls-cert \S+ and --grpc-tls-key \S+ are not a usable pair \(.*key values mismatch.*\): give a PEM certificate chain and its unencrypted private key$/,
    ],
    ['a certificate that is no PEM', () => ({ certFile: path.join(routesDir, 'acme.yaml'), keyFile }), /are not a usable pair/],
  ])('refuses to start with %s, in one line (FHIRMESH_TLS_UNUSABLE)', async (_what, grpcTls, message) => {
    const unusable = config(grpcTls());
    const failure = await startController(unusable, await createMode(unusable, { logger, metrics: new ControllerMetrics({ defaultMetrics: false }) })).then(
      async (started) => {
        await started.shutdown();
        return undefined;
      },
      (err: unknown) => err as { code?: string; message: string },
    );
    expect(failure?.code).toBe('FHIRMESH_TLS_UNUSABLE');
    expect(failure?.message).toMatch(message);
    expect(failure?.message).not.toContain('\n');
  });
});
