// Two fhirmesh-controller replicas with the chart RBAC and a 3 s Lease: one leads and alone writes
// status, counting the proxies of both replicas; killed, the other takes over within the lease
// duration while the proxies connected to it keep their table, and the dead replica's report expires.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, type FakeProxy } from '../support/fake-proxy.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import {
  applyRoute,
  chartIdentity,
  controllerTls,
  createNamespace,
  ensureCrd,
  fhirRoute,
  kubeconfigFor,
  patchSpec,
  proxyToken,
  waitForCondition,
} from './controller-fixtures.ts';
import type { KubeHttp } from './kube-http.ts';

const LEASE = { durationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

interface Lease {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string };
}

describe('two controller replicas with leader election', () => {
  const cluster = clusterContext();
  const release = uniqueName('fhirmesh-system');
  const appA = uniqueName('app-a');
  const appB = uniqueName('app-b');
  const routes = uniqueName('routes');
  let kube: KubeHttp;
  const replicas = new Map<string, SpawnedController>();
  const proxies: FakeProxy[] = [];
  let leader = '';
  let follower = '';
  const grpcTls = controllerTls();

  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${release}/leases/fhirmesh-controller`;
  const holder = async (): Promise<string> => (await kube.json<Lease>('GET', leasePath)).spec.holderIdentity ?? '';

  beforeAll(async () => {
    kube = adminClient();
    await ensureCrd(kube);
    for (const ns of [release, appA, appB, routes]) await createNamespace(kube, ns);
    const token = await chartIdentity(kube, release);
    const kubeconfig = kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token });
    const args = (replica: string): string[] => [
      '--kubeconfig',
      kubeconfig,
      '--replica-id',
      replica,
      '--leader-elect',
      '--lease-namespace',
      release,
      '--leader-elect-lease-duration',
      `${LEASE.durationMs}ms`,
      '--leader-elect-renew-deadline',
      `${LEASE.renewDeadlineMs}ms`,
      '--leader-elect-retry-period',
      `${LEASE.retryPeriodMs}ms`,
      ...grpcTls.args,
      '--log-level',
      'debug',
    ];
    const started = await Promise.all(['ctrl-a', 'ctrl-b'].map((replica) => spawnController(args(replica))));
    replicas.set('ctrl-a', started[0] as SpawnedController);
    replicas.set('ctrl-b', started[1] as SpawnedController);
  });

  afterAll(async () => {
    for (const proxy of proxies) proxy.close();
    for (const replica of replicas.values()) await replica.stop();
    await kube?.close();
  });

  it('elects exactly one replica as holder of the Lease', async () => {
    leader = await eventually(async () => {
      const name = await holder();
      if (name === '') throw new Error('no holder yet');
      return name;
    });
    follower = leader === 'ctrl-a' ? 'ctrl-b' : 'ctrl-a';
    expect(['ctrl-a', 'ctrl-b']).toContain(leader);
    await eventually(async () => {
      expect(await replicas.get(leader)?.metric('fhirmesh_controller_leader')).toBe(1);
      expect(await replicas.get(follower)?.metric('fhirmesh_controller_leader')).toBe(0);
    });
  });

  it('counts the proxies of both replicas in Programmed, and only the leader writes status', async () => {
    await applyRoute(kube, fhirRoute(routes, 'shared', { destination: 'shared', exportTo: [appA, appB] }));
    // One proxy on each replica, in different namespaces.
    const [tokenA, tokenB] = await Promise.all([proxyToken(kube, appA), proxyToken(kube, appB)]);
    proxies.push(connectFakeProxy({ address: replicas.get(leader)?.grpcAddress ?? '', nodeId: 'gw-on-leader', namespace: appA, mode: 'auto', tls: grpcTls.tls, token: tokenA }));
    proxies.push(connectFakeProxy({ address: replicas.get(follower)?.grpcAddress ?? '', nodeId: 'gw-on-follower', namespace: appB, mode: 'auto', tls: grpcTls.tls, token: tokenB }));
    const route = await eventually(async () => {
      const current = await waitForCondition(kube, routes, 'shared', { type: 'Programmed', status: 'True' }, 10_000);
      expect(current.status?.proxies).toEqual({ total: 2, programmed: 2 });
      return current;
    });
    expect(route.status?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe('all 2 proxies in scope run generation 1');

    expect(await replicas.get(leader)?.metric('fhirmesh_controller_status_writes_total', { result: 'written' })).toBeGreaterThan(0);
    expect(await replicas.get(follower)?.metric('fhirmesh_controller_status_writes_total')).toBe(0);
    // Each replica's report is a ConfigMap in the release namespace.
    const reports = await kube.json<{ items: { metadata: { name: string } }[] }>('GET', `/api/v1/namespaces/${release}/configmaps?labelSelector=fhirmesh.io/proxy-report%3Dtrue`);
    expect(reports.items.map((item) => item.metadata.name).sort()).toEqual(['fhirmesh-proxies-ctrl-a', 'fhirmesh-proxies-ctrl-b']);
  });

  it('hands over to the other replica within the lease duration when the leader is killed', async () => {
    const onFollower = proxies[1] as FakeProxy;
    const tableBefore = onFollower.version;
    const responsesBefore = onFollower.responses.length;
    const before = await kube.json<Lease>('GET', leasePath);

    const killedAt = Date.now();
    await replicas.get(leader)?.kill();
    const newHolder = await eventually(async () => {
      const name = await holder();
      if (name === leader) throw new Error('still held by the dead replica');
      return name;
    }, 10_000, 50);
    const takeoverMs = Date.now() - killedAt;
    expect(newHolder).toBe(follower);
    // The Lease was last renewed at most renewDeadline/2 before the kill; the follower takes it once it
    // has seen no change for the lease duration, at its next try.
    expect(takeoverMs).toBeLessThan(LEASE.durationMs + LEASE.retryPeriodMs * 1.2 + 500);
    console.log(`[leader election] ${follower} took the Lease ${takeoverMs} ms after ${leader} was killed`);
    const after = await kube.json<Lease>('GET', leasePath);
    expect(after.spec.leaseTransitions).toBe((before.spec.leaseTransitions ?? 0) + 1);

    // The proxy on the survivor was never disturbed: same stream, same table, nothing resent.
    const ended = await Promise.race([onFollower.ended.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 200))]);
    expect(ended).toBe(false);
    expect(onFollower.responses.length).toBe(responsesBefore);
    expect(onFollower.version).toBe(tableBefore);
    expect(onFollower.table.has('shared')).toBe(true);
    await eventually(async () => expect(await replicas.get(follower)?.metric('fhirmesh_controller_leader')).toBe(1));
  });

  it('lets the new leader write status, and stops counting the dead replica\'s proxies when its report expires', async () => {
    const edited = await patchSpec(kube, routes, 'shared', { allow: { methods: ['GET', 'POST'] } });
    expect(edited.metadata.generation).toBe(2);
    // The dead replica's proxy is gone with it; once its report stops being renewed for the TTL, only
    // the survivor's proxy counts, and it runs generation 2.
    const programmed = await eventually(async () => {
      const current = await waitForCondition(kube, routes, 'shared', { type: 'Programmed', status: 'True' }, 10_000);
      expect(current.status?.proxies).toEqual({ total: 1, programmed: 1 });
      return current;
    }, 20_000);
    expect(programmed.status?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe('all 1 proxies in scope run generation 2');
    expect(await replicas.get(follower)?.metric('fhirmesh_controller_status_writes_total', { result: 'written' })).toBeGreaterThan(0);
    // The new leader also deletes the expired report.
    await eventually(async () => {
      const reports = await kube.json<{ items: { metadata: { name: string } }[] }>('GET', `/api/v1/namespaces/${release}/configmaps?labelSelector=fhirmesh.io/proxy-report%3Dtrue`);
      expect(reports.items.map((item) => item.metadata.name)).toEqual([`fhirmesh-proxies-${follower}`]);
    }, 15_000);
  });

  it('releases the Lease and deletes its report on SIGTERM', async () => {
    expect((await replicas.get(follower)?.stop())?.code).toBe(0);
    const lease = await kube.json<Lease>('GET', leasePath);
    expect(lease.spec.holderIdentity).toBe('');
    const reports = await kube.json<{ items: unknown[] }>('GET', `/api/v1/namespaces/${release}/configmaps?labelSelector=fhirmesh.io/proxy-report%3Dtrue`);
    expect(reports.items).toEqual([]);
  });
});
