// fhirmesh-controller replicas with the chart RBAC and a 3 s Lease: one leads and alone writes
// status, counting the proxies of both replicas; killed, the other takes over within the lease
// duration while the proxies connected to it keep their table, and the dead replica's report expires;
// on SIGTERM a leader releases the Lease. Each describe starts its own replicas in its own release
// namespace (its own Lease), so no test depends on what another did.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, type FakeProxy } from '../support/fake-proxy.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import { applyRoute, chartIdentity, controllerTls, createNamespace, ensureCrd, fhirRoute, kubeconfigFor, proxyToken, waitForCondition } from './controller-fixtures.ts';
import type { KubeHttp } from './kube-http.ts';

const LEASE = { durationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

interface Lease {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string };
}

const cluster = clusterContext();
const grpcTls = controllerTls();
let kube: KubeHttp;

beforeAll(async () => {
  kube = adminClient();
  await ensureCrd(kube);
});

afterAll(async () => {
  await kube?.close();
});

/** Replicas of one release: its namespace, its Lease, and the processes by replica id. */
class Release {
  readonly namespace = uniqueName('fhirmesh-system');
  readonly replicas = new Map<string, SpawnedController>();
  readonly proxies: FakeProxy[] = [];
  readonly leasePath = `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases/fhirmesh-controller`;

  /** Starts `replicaIds` with the chart's identity and leader election on this release's Lease. */
  async start(replicaIds: string[]): Promise<void> {
    await createNamespace(kube, this.namespace);
    const token = await chartIdentity(kube, this.namespace);
    const kubeconfig = kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token });
    const args = (replica: string): string[] => [
      '--kubeconfig',
      kubeconfig,
      '--replica-id',
      replica,
      '--leader-elect',
      '--lease-namespace',
      this.namespace,
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
    const started = await Promise.all(replicaIds.map((replica) => spawnController(args(replica))));
    replicaIds.forEach((replica, index) => this.replicas.set(replica, started[index] as SpawnedController));
  }

  replica(id: string): SpawnedController {
    const replica = this.replicas.get(id);
    if (replica === undefined) throw new Error(`no replica ${id}`);
    return replica;
  }

  async holder(): Promise<string> {
    return (await kube.json<Lease>('GET', this.leasePath)).spec.holderIdentity ?? '';
  }

  /** Resolves with the replica holding the Lease once one does. */
  elected(): Promise<string> {
    return eventually(async () => {
      const name = await this.holder();
      if (name === '') throw new Error('no holder yet');
      return name;
    });
  }

  async reportNames(): Promise<string[]> {
    const reports = await kube.json<{ items: { metadata: { name: string } }[] }>('GET', `/api/v1/namespaces/${this.namespace}/configmaps?labelSelector=fhirmesh.io/proxy-report%3Dtrue`);
    return reports.items.map((item) => item.metadata.name).sort();
  }

  async stop(): Promise<void> {
    for (const proxy of this.proxies) proxy.close();
    for (const replica of this.replicas.values()) await replica.stop();
  }
}

/**
 * Two replicas, one route exported to two app namespaces, and one proxy of each namespace on each
 * replica; resolves once the route is Programmed by both proxies, with who leads.
 */
async function twoReplicasServingTwoProxies(release: Release): Promise<{ routes: string; destination: string; leader: string; follower: string; onLeader: FakeProxy; onFollower: FakeProxy }> {
  const [appA, appB, routes] = [uniqueName('app-a'), uniqueName('app-b'), uniqueName('routes')];
  // Destination ids are claimed cluster-wide, and routes outlive the replicas that served them.
  const destination = uniqueName('shared');
  for (const ns of [appA, appB, routes]) await createNamespace(kube, ns);
  await release.start(['ctrl-a', 'ctrl-b']);
  const leader = await release.elected();
  const follower = leader === 'ctrl-a' ? 'ctrl-b' : 'ctrl-a';
  await applyRoute(kube, fhirRoute(routes, 'shared', { destination, exportTo: [appA, appB] }));
  const [tokenA, tokenB] = await Promise.all([proxyToken(kube, appA), proxyToken(kube, appB)]);
  const onLeader = connectFakeProxy({ address: release.replica(leader).grpcAddress, nodeId: 'gw-on-leader', namespace: appA, mode: 'auto', tls: grpcTls.tls, token: tokenA });
  const onFollower = connectFakeProxy({ address: release.replica(follower).grpcAddress, nodeId: 'gw-on-follower', namespace: appB, mode: 'auto', tls: grpcTls.tls, token: tokenB });
  release.proxies.push(onLeader, onFollower);
  await eventually(async () => {
    const current = await waitForCondition(kube, routes, 'shared', { type: 'Programmed', status: 'True' }, 10_000);
    expect(current.status?.proxies).toEqual({ total: 2, programmed: 2 });
  });
  return { routes, destination, leader, follower, onLeader, onFollower };
}

describe('two controller replicas with leader election', () => {
  const release = new Release();
  let serving: Awaited<ReturnType<typeof twoReplicasServingTwoProxies>>;

  beforeAll(async () => {
    serving = await twoReplicasServingTwoProxies(release);
  });

  afterAll(() => release.stop());

  it('elects exactly one replica as holder of the Lease', async () => {
    expect(['ctrl-a', 'ctrl-b']).toContain(serving.leader);
    expect(await release.holder()).toBe(serving.leader);
    await eventually(async () => {
      expect(await release.replica(serving.leader).metric('fhirmesh_controller_leader')).toBe(1);
      expect(await release.replica(serving.follower).metric('fhirmesh_controller_leader')).toBe(0);
    });
  });

  it('counts the proxies of both replicas in Programmed, and only the leader writes status', async () => {
    const route = await waitForCondition(kube, serving.routes, 'shared', { type: 'Programmed', status: 'True' });
    expect(route.status?.proxies).toEqual({ total: 2, programmed: 2 });
    expect(route.status?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe('all 2 proxies in scope run generation 1');
    expect(await release.replica(serving.leader).metric('fhirmesh_controller_status_writes_total', { result: 'written' })).toBeGreaterThan(0);
    expect(await release.replica(serving.follower).metric('fhirmesh_controller_status_writes_total')).toBe(0);
    // Each replica's report is a ConfigMap in the release namespace.
    expect(await release.reportNames()).toEqual(['fhirmesh-proxies-ctrl-a', 'fhirmesh-proxies-ctrl-b']);
  });
});

describe('two controller replicas when the leader is killed', () => {
  const release = new Release();
  let serving: Awaited<ReturnType<typeof twoReplicasServingTwoProxies>>;
  let before: { lease: Lease; table: string; responses: number };
  /** Set if the survivor's proxy stream ends at any time from before the kill on. */
  let survivorStreamEnded = false;
  /** Who held the Lease first after the kill, and how long after it (watched from the kill on, whichever test runs first). */
  let takeover: { holder: string; afterMs: number };

  beforeAll(async () => {
    serving = await twoReplicasServingTwoProxies(release);
    void serving.onFollower.ended.then(() => (survivorStreamEnded = true));
    before = { lease: await kube.json<Lease>('GET', release.leasePath), table: serving.onFollower.version, responses: serving.onFollower.responses.length };
    const killedAt = Date.now();
    await release.replica(serving.leader).kill();
    takeover = await eventually(async () => {
      const holder = await release.holder();
      if (holder === serving.leader) throw new Error('still held by the dead replica');
      return { holder, afterMs: Date.now() - killedAt };
    }, 10_000, 50);
  });

  afterAll(() => release.stop());

  it('hands over to the other replica within the lease duration, leaving the survivor\'s proxy undisturbed', async () => {
    const { holder: newHolder, afterMs: takeoverMs } = takeover;
    expect(newHolder).toBe(serving.follower);
    // The Lease was last renewed at most renewDeadline/2 before the kill; the follower takes it once it
    // has seen no change for the lease duration, at its next try.
    expect(takeoverMs).toBeLessThan(LEASE.durationMs + LEASE.retryPeriodMs * 1.2 + 500);
    console.log(`[leader election] ${serving.follower} took the Lease ${takeoverMs} ms after ${serving.leader} was killed`);
    const after = await kube.json<Lease>('GET', release.leasePath);
    expect(after.spec.leaseTransitions).toBe((before.lease.spec.leaseTransitions ?? 0) + 1);
    await eventually(async () => expect(await release.replica(serving.follower).metric('fhirmesh_controller_leader')).toBe(1));

    // The proxy on the survivor was never disturbed: same stream, same table, nothing resent.
    const { onFollower } = serving;
    expect(survivorStreamEnded).toBe(false);
    expect(onFollower.responses.length).toBe(before.responses);
    expect(onFollower.version).toBe(before.table);
    expect(onFollower.table.has(serving.destination)).toBe(true);
  });

  it("lets the new leader write status, which stops counting the dead replica's proxy once its report expires", async () => {
    // The dead replica's proxy went with it; once its report has not been renewed for the TTL, only
    // the survivor's proxy counts: a status only the new leader can have written.
    const programmed = await eventually(async () => {
      const current = await waitForCondition(kube, serving.routes, 'shared', { type: 'Programmed', status: 'True' }, 10_000);
      expect(current.status?.proxies).toEqual({ total: 1, programmed: 1 });
      return current;
    }, 30_000);
    expect(programmed.status?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe('all 1 proxies in scope run generation 1');
    expect(await release.replica(serving.follower).metric('fhirmesh_controller_status_writes_total', { result: 'written' })).toBeGreaterThan(0);
    // The new leader also deletes the expired report.
    await eventually(async () => expect(await release.reportNames()).toEqual([`fhirmesh-proxies-${serving.follower}`]), 15_000);
  });
});

describe('a leading replica on SIGTERM', () => {
  const release = new Release();

  beforeAll(async () => {
    await release.start(['ctrl-solo']);
    await release.elected();
    await eventually(async () => expect(await release.reportNames()).toEqual(['fhirmesh-proxies-ctrl-solo']));
  });

  afterAll(() => release.stop());

  it('releases the Lease and deletes its report', async () => {
    expect(await release.replica('ctrl-solo').stop()).toEqual({ code: 0, signal: null });
    expect(await release.holder()).toBe('');
    expect(await release.reportNames()).toEqual([]);
  });
});
