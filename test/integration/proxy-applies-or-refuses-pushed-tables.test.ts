// The proxy's side of route discovery against a scripted controller (real gRPC on loopback):
// it applies full snapshots and deltas atomically and ACKs, NACKs what it cannot run (keeping the
// table in force), and saves the last good table to its state dir.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  discoveryProto,
  encodeRoute,
  type DiscoveryRequest__Output,
  type DiscoveryResponse,
} from '../../api/discovery/index.ts';
import type { CompiledRoute } from '../../api/index.ts';
import { silentLogger, startProxy, type RunningProxy } from '../../proxy/src/index.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

let upstream: TestUpstream;
let server: grpc.Server;
let proxy: RunningProxy;
let stateDir: string;
const received: DiscoveryRequest__Output[] = [];
let push: (response: DiscoveryResponse) => void = () => undefined;
let waiters: (() => void)[] = [];

function compiled(destinationId: string, baseUrl: string): CompiledRoute {
  return {
    source: { namespace: 'payers', name: destinationId, generation: 1 },
    destinationId,
    addressing: { header: true, pathSegment: true, hosts: [], queryParameter: false },
    backend: { baseUrl },
    rules: [],
    allowedMethods: ['GET'],
    maxRequestBodyBytes: 1024,
    allowEncodedPathSeparators: false,
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 5000,
    idleTimeoutMs: 5000,
    retryAttempts: 0,
    retryOn: [],
    rewriteResponseUrls: false,
    exportTo: [],
  };
}

/** Resolves with the proxy's next message (its answer to what was just pushed). */
function nextRequest(): Promise<DiscoveryRequest__Output> {
  const count = received.length;
  return new Promise((resolve) => {
    const check = (): void => {
      if (received.length > count) resolve(received[count] as DiscoveryRequest__Output);
      else waiters.push(check);
    };
    check();
  });
}

async function status(destination: string): Promise<number> {
  return (await fetch(`${proxy.url}/${destination}/Patient`)).status;
}

beforeAll(async () => {
  upstream = await startUpstream();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-state-'));
  server = new grpc.Server();
  server.addService(discoveryProto().fhirmesh.v1.RouteDiscovery.service, {
    StreamRoutes: (call: grpc.ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>) => {
      push = (response) => call.write(response);
      call.on('data', (request: DiscoveryRequest__Output) => {
        received.push(request);
        const pending = waiters;
        waiters = [];
        for (const wake of pending) wake();
      });
    },
    GetProxyStatus: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, {}),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const hello = nextRequest();
  proxy = await startProxy(
    {
      controller: { address: `127.0.0.1:${port}`, identity: { nodeId: 'p1', namespace: 'payers', labels: {}, proxyVersion: 'test' }, stateDir },
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      intermediaryId: 'gw-test',
      shutdownGraceMs: 500,
      logLevel: 'error',
      accessLog: false,
    },
    { logger: silentLogger() },
  );
  expect((await hello).identity?.nodeId).toBe('p1');
});

afterAll(async () => {
  await proxy.shutdown(200);
  server.forceShutdown();
  await upstream.close();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('proxy route discovery client', () => {
  it('opens with its identity and no version, and is not ready before a table', async () => {
    expect(received[0]?.identity).toMatchObject({ nodeId: 'p1', namespace: 'payers', proxyVersion: 'test' });
    expect(received[0]?.versionInfo).toBe('');
    expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(503);
  });

  it('applies a full snapshot, ACKs it and saves it', async () => {
    const answer = nextRequest();
    push({ versionInfo: 'v1', nonce: 'n1', fullSnapshot: true, upserted: [encodeRoute(compiled('acme', upstream.url))] });
    expect(await answer).toMatchObject({ versionInfo: 'v1', responseNonce: 'n1', errorDetail: null });
    expect(await status('acme')).toBe(200);
    expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(200);
    const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'route-table.json'), 'utf8')) as { version: string };
    expect(saved.version).toBe('v1');
    expect(fs.statSync(path.join(stateDir, 'route-table.json')).mode & 0o777).toBe(0o600);
  });

  it('applies a delta on its version', async () => {
    const answer = nextRequest();
    push({ versionInfo: 'v2', nonce: 'n2', baseVersion: 'v1', upserted: [encodeRoute(compiled('labs', upstream.url))] });
    expect(await answer).toMatchObject({ versionInfo: 'v2', responseNonce: 'n2', errorDetail: null });
    expect([await status('acme'), await status('labs')]).toEqual([200, 200]);
  });

  it('NACKs a route it cannot run and keeps the table in force', async () => {
    const answer = nextRequest();
    push({ versionInfo: 'v3', nonce: 'n3', baseVersion: 'v2', upserted: [{ ...encodeRoute(compiled('bad', upstream.url)), retryOn: ['teapot'] }], removed: ['acme'] });
    const nack = await answer;
    expect(nack.versionInfo).toBe('v2');
    expect(nack.responseNonce).toBe('n3');
    expect(nack.errorDetail?.message).toContain("retry condition 'teapot' is not one this proxy knows");
    // Atomic: the removal that came with the bad route did not happen either.
    expect([await status('acme'), await status('labs'), await status('bad')]).toEqual([200, 200, 404]);
  });

  it('NACKs a delta that is not based on the version it runs', async () => {
    const answer = nextRequest();
    push({ versionInfo: 'v9', nonce: 'n4', baseVersion: 'v7', removed: ['labs'] });
    const nack = await answer;
    expect(nack).toMatchObject({ versionInfo: 'v2', responseNonce: 'n4' });
    expect(nack.errorDetail?.message).toBe('delta is based on v7 but this proxy runs v2');
    expect(await status('labs')).toBe(200);
  });

  it('NACKs two routes claiming one host, and ACKs "current" for the version it runs', async () => {
    const twin = (id: string): ReturnType<typeof encodeRoute> => ({ ...encodeRoute(compiled(id, upstream.url)), addressing: { header: true, pathSegment: false, hosts: ['fhir.example'], queryParameter: false } });
    const nack = nextRequest();
    push({ versionInfo: 'v5', nonce: 'n5', fullSnapshot: true, upserted: [twin('one'), twin('two')] });
    expect((await nack).errorDetail?.message).toBe('route table has host fhir.example twice');
    const ack = nextRequest();
    push({ versionInfo: 'v2', nonce: 'n6', current: true });
    expect(await ack).toMatchObject({ versionInfo: 'v2', responseNonce: 'n6', errorDetail: null });
  });
});
