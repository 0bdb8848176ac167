// fhirmesh-controller as a process with the chart RBAC, serving TLS, against the real apiserver's
// TokenReview: real proxies with a projected-style token get their own namespace's routes only.

import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectFakeProxy, getProxyStatus, type FakeProxy } from '../support/fake-proxy.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { spawnProxy, type SpawnedProxy } from '../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import {
  applyRoute,
  chartIdentity,
  CONTROLLER_SERVER_NAME,
  controllerTls,
  createNamespace,
  ensureCrd,
  fhirRoute,
  kubeconfigFor,
  proxyToken,
  routesPath,
  tokenFile,
  waitForCondition,
} from './controller-fixtures.ts';
import type { KubeHttp } from './kube-http.ts';
import { claimsOf, createServiceAccountToken, expiredCopyOf } from './service-account-tokens.ts';

/** An upstream that names itself in its answer, so a test sees which namespace's backend served. */
async function namedUpstream(name: string): Promise<TestUpstream> {
  return startUpstream((_req, res) => {
    const body = JSON.stringify({ resourceType: 'Patient', id: 'p1', meta: { source: name } });
    res.writeHead(200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
}

interface DebugRoutes {
  loaded: boolean;
  routes: { destinationId: string }[];
}

async function destinationsOf(proxy: SpawnedProxy): Promise<string[]> {
  const body = (await (await fetch(`${proxy.adminUrl}/debug/routes`)).json()) as DebugRoutes;
  return body.routes.map((route) => route.destinationId).sort();
}

/** A FHIR read through the proxy, addressed by X-Destination. */
async function readThrough(proxy: SpawnedProxy, destination: string): Promise<{ status: number; error: string | null; body: string }> {
  const response = await fetch(`${proxy.url}/Patient/p1`, { headers: { 'X-Destination': destination, Accept: 'application/fhir+json' } });
  return { status: response.status, error: response.headers.get('fhirmesh-error'), body: await response.text() };
}

describe('fhirmesh-controller authenticates proxies by TokenReview over TLS', () => {
  const cluster = clusterContext();
  const release = uniqueName('fhirmesh-system');
  const payers = uniqueName('payers');
  const labs = uniqueName('labs');
  // Destination ids are unique among all routes, and other files' controllers watch every namespace.
  const acme = uniqueName('acme');
  const lab = uniqueName('lab');
  const grpcTls = controllerTls();
  let kube: KubeHttp;
  let controller: SpawnedController;
  let payersUpstream: TestUpstream;
  let labsUpstream: TestUpstream;
  let payersToken: string;
  const proxies: SpawnedProxy[] = [];
  const fakes: FakeProxy[] = [];

  /** The real proxy binary, streaming from the controller over TLS as a pod would. */
  const startProxy = async (nodeId: string, claimedNamespace: string, token: string | undefined): Promise<SpawnedProxy> => {
    const proxy = await spawnProxy({
      intermediaryId: nodeId,
      args: [
        '--controller',
        controller.grpcAddress,
        '--controller-ca',
        grpcTls.caFile,
        '--controller-server-name',
        CONTROLLER_SERVER_NAME,
        ...(token === undefined ? [] : ['--token-file', tokenFile(token)]),
        '--namespace',
        claimedNamespace,
        '--node-id',
        nodeId,
      ],
    });
    proxies.push(proxy);
    return proxy;
  };
  const fake = (options: { token?: string; tls?: boolean; nodeId: string }): FakeProxy => {
    const connected = connectFakeProxy({
      address: controller.grpcAddress,
      nodeId: options.nodeId,
      namespace: payers,
      mode: 'auto',
      ...(options.tls === false ? {} : { tls: grpcTls.tls }),
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    fakes.push(connected);
    return connected;
  };

  beforeAll(async () => {
    kube = adminClient();
    await ensureCrd(kube);
    for (const ns of [release, payers, labs]) await createNamespace(kube, ns);
    const controllerToken = await chartIdentity(kube, release);
    [payersUpstream, labsUpstream] = await Promise.all([namedUpstream('payers-backend'), namedUpstream('labs-backend')]);
    await applyRoute(kube, fhirRoute(payers, 'acme', { destination: acme, backend: { url: payersUpstream.url } }));
    await applyRoute(kube, fhirRoute(labs, 'lab', { destination: lab, backend: { url: labsUpstream.url } }));
    controller = await spawnController([
      '--kubeconfig',
      kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token: controllerToken }),
      ...grpcTls.args,
      '--replica-id',
      'ctrl-auth',
      '--log-level',
      'debug',
    ]);
    await waitForCondition(kube, payers, 'acme', { type: 'Accepted', status: 'True' });
    await waitForCondition(kube, labs, 'lab', { type: 'Accepted', status: 'True' });
    payersToken = await proxyToken(kube, payers);
  });

  afterAll(async () => {
    for (const connected of fakes) connected.close();
    for (const proxy of proxies) await proxy.kill();
    expect((await controller?.stop())?.code).toBe(0);
    for (const [namespace, name] of [[payers, 'acme'], [labs, 'lab']] as const) await kube?.request('DELETE', routesPath(namespace, name));
    await Promise.all([payersUpstream?.close(), labsUpstream?.close()]);
    await kube?.close();
  });

  it('says at start that it serves TLS and authenticates proxies by token', () => {
    const listening = controller.logs.find((line) => line['msg'] === 'controller listening');
    expect(listening?.['grpcTls']).toMatchObject({ subject: `DNS:${CONTROLLER_SERVER_NAME}` });
    expect(listening?.['proxyAuthentication']).toBe('service-account token (TokenReview), namespace from the token');
    expect(controller.logs.filter((line) => line['level'] === 'warn' && /unauthenticated|INSECURE/.test(String(line['msg'])))).toEqual([]);
  });

  it("serves a proxy with its namespace's token (audience fhirmesh) that namespace's routes only, and traffic flows", async () => {
    expect(claimsOf(payersToken)['aud']).toEqual(['fhirmesh']);
    const proxy = await startProxy('gw-payers', payers, payersToken);
    await proxy.waitForLog((line) => line.msg === 'route table applied', 15_000);
    expect(await destinationsOf(proxy)).toEqual([acme]);

    const served = await readThrough(proxy, acme);
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body)).toMatchObject({ meta: { source: 'payers-backend' } });
    expect(payersUpstream.received.map((request) => request.url)).toEqual(['/Patient/p1']);
    const other = await readThrough(proxy, lab);
    expect([other.status, other.error]).toEqual([404, 'FHIRMESH_DESTINATION_UNKNOWN']);
    expect(labsUpstream.received).toEqual([]);

    // The controller counts it where the token says, and so does the route's status.
    const status = await getProxyStatus(controller.grpcAddress, grpcTls.tls);
    expect(status.proxies.map((p) => [p.identity?.nodeId, p.identity?.namespace])).toContainEqual(['gw-payers', payers]);
    const acmeRoute = await waitForCondition(kube, payers, 'acme', { type: 'Programmed', status: 'True' });
    expect(acmeRoute.status?.proxies).toEqual({ total: 1, programmed: 1 });
  });

  it("serves a proxy that claims another namespace its own token's routes, never the claimed ones", async () => {
    const proxy = await startProxy('gw-claims-labs', labs, payersToken);
    await proxy.waitForLog((line) => line.msg === 'route table applied', 15_000);
    expect(await destinationsOf(proxy)).toEqual([acme]);
    expect((await readThrough(proxy, lab)).error).toBe('FHIRMESH_DESTINATION_UNKNOWN');
    expect((await readThrough(proxy, acme)).status).toBe(200);
    expect(labsUpstream.received).toEqual([]);

    const warning = controller.logs.find((line) => line['msg'] === 'proxy claims another namespace than its token proves; it is served its own');
    expect(warning).toMatchObject({ level: 'warn', nodeId: 'gw-claims-labs', claimed: labs, served: payers });
    const status = await getProxyStatus(controller.grpcAddress, grpcTls.tls);
    expect(status.proxies.find((p) => p.identity?.nodeId === 'gw-claims-labs')?.identity?.namespace).toBe(payers);
    // No proxy is counted for the labs route: the claim did not put one there.
    const labRoute = await waitForCondition(kube, labs, 'lab', { type: 'Programmed', status: 'False', reason: 'NoProxies' });
    expect(labRoute.status?.proxies).toEqual({ total: 0, programmed: 0 });
  });

  it('refuses a proxy without a token: UNAUTHENTICATED, no routes, not ready', async () => {
    const proxy = await startProxy('gw-no-token', payers, undefined);
    const ended = await proxy.waitForLog((line) => line.msg === 'route discovery stream ended', 15_000);
    expect(ended).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(String(ended['detail'])).toMatch(/^no bearer token: mount a projected service-account token with audience fhirmesh and pass it with --token-file$/);
    expect(await destinationsOf(proxy)).toEqual([]);
    expect((await fetch(`${proxy.adminUrl}/readyz`)).status).toBe(503);
    const status = await getProxyStatus(controller.grpcAddress, grpcTls.tls);
    expect(status.proxies.map((p) => p.identity?.nodeId)).not.toContain('gw-no-token');
  });

  it.each<[string, () => Promise<string | undefined>, RegExp]>([
    ['no token', () => Promise.resolve(undefined), /^no bearer token/],
    [
      'an expired token (signed by the apiserver, exp an hour ago)',
      async () => expiredCopyOf(await proxyToken(kube, payers), fs.readFileSync(cluster.serviceAccountSigningKeyPath, 'utf8')),
      /^token refused: \[invalid bearer token, service account token has expired\]; use a current token with audience fhirmesh$/,
    ],
    [
      'a token for another audience',
      () => createServiceAccountToken(kube, 'fhirmesh-proxy', { namespace: payers, audiences: ['vault'] }),
      /^token refused: .*token audiences \["vault"\] is invalid for the target audiences \["fhirmesh"\].*; use a current token with audience fhirmesh$/,
    ],
    ['a token that is no JWT', () => Promise.resolve('not-a-token'), /^token refused: invalid bearer token; /],
    ["a valid token that is not a service account's (the admin's)", () => Promise.resolve(cluster.token), /does not belong to a service account/],
  ])('closes the stream of a proxy with %s: UNAUTHENTICATED, before any route is sent', async (_what, token, detail) => {
    const given = await token();
    const refused = fake({ nodeId: `gw-${fakes.length}`, ...(given === undefined ? {} : { token: given }) });
    const end = await refused.ended;
    expect(grpc.status[end.code]).toBe('UNAUTHENTICATED');
    expect(end.details).toMatch(detail);
    expect(refused.responses).toEqual([]);
  });

  it('accepts the same re-signed copy with exp an hour ahead: the refusal above is about time alone', async () => {
    // A copy whose signature or claims were broken would be refused too, and prove nothing about exp.
    const original = await proxyToken(kube, payers);
    const current = expiredCopyOf(original, fs.readFileSync(cluster.serviceAccountSigningKeyPath, 'utf8'), -3_600);
    const accepted = fake({ nodeId: 'gw-resigned-valid', token: current });
    expect((await accepted.next(10_000)).upserted.map((route) => route.destinationId)).toEqual([acme]);
  });

  it('refuses to start in Kubernetes mode without TLS, in one line (exit 2), unless --insecure-grpc says so; then it warns and still checks tokens', async () => {
    const kubeconfig = kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token: await chartIdentity(kube, release, 'fhirmesh-controller-2') });
    const refused = await spawnController(['--kubeconfig', kubeconfig]).then(
      () => 'started',
      (err: unknown) => String(err),
    );
    expect(refused).toContain('controller exited with 2');
    expect(refused).toContain(
      'fhirmesh-controller: Kubernetes mode serves proxies over TLS: give --grpc-tls-cert FILE --grpc-tls-key FILE (the chart mounts the Secret grpc.tls.secretName), or --insecure-grpc to serve plaintext on purpose (fhirmesh-controller --help lists every flag)',
    );

    // Watching payers only: a second status writer on the other namespaces would fight the first.
    const insecure = await spawnController(['--kubeconfig', kubeconfig, '--insecure-grpc', '--replica-id', 'ctrl-insecure', '--namespace', payers]);
    try {
      expect(insecure.logs.find((line) => line['msg'] === 'controller listening')?.['grpcTls']).toBe('off (plaintext)');
      // Warnings come on stderr, the listening line on stdout: either pipe may be read first.
      await expect
        .poll(() => insecure.logs.find((line) => String(line['msg']).startsWith('INSECURE: --insecure-grpc serves route discovery in plaintext')))
        .toMatchObject({ level: 'warn' });
      const anonymous = connectFakeProxy({ address: insecure.grpcAddress, nodeId: 'gw-insecure-anon', namespace: payers });
      fakes.push(anonymous);
      expect(grpc.status[(await anonymous.ended).code]).toBe('UNAUTHENTICATED');
      const withToken = connectFakeProxy({ address: insecure.grpcAddress, nodeId: 'gw-insecure', namespace: labs, mode: 'auto', token: payersToken });
      fakes.push(withToken);
      expect((await withToken.next(10_000)).upserted.map((route) => route.destinationId)).toEqual([acme]);
      expect((await insecure.stop()).code).toBe(0);
    } finally {
      await insecure.kill();
    }
  });

  it('gives a plaintext client with a valid token nothing: the listener speaks only TLS', async () => {
    const plaintext = fake({ nodeId: 'gw-plaintext', token: payersToken, tls: false });
    const end = await plaintext.ended;
    expect(grpc.status[end.code]).toBe('UNAVAILABLE');
    expect(plaintext.responses).toEqual([]);
  });
});
