// The informers behind a fault-injecting proxy in front of the real apiserver: a 410 in the stream,
// a 410 answer, dropped connections and silently hung watches all heal, and no update made while a
// watch was broken is lost (the relist finds it), including a delete and re-create under one name.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FhirRoute } from '../../api/index.ts';
import { K8sFaultProxy } from '../support/k8s-fault-proxy.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import {
  applyRoute,
  createNamespace,
  ensureCrd,
  fhirRoute,
  kubeConfigOf,
  patchSpec,
  routesPath,
  startInProcessController,
  waitForCondition,
  type InProcessController,
} from './controller-fixtures.ts';
import type { KubeHttp } from './kube-http.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('informers behind a faulty connection to the apiserver', () => {
  const cluster = clusterContext();
  const ns = uniqueName('faults');
  let kube: KubeHttp;
  let proxy: K8sFaultProxy;
  let running: InProcessController | undefined;

  /** The controller through the fault proxy; restarts after errors are quick so tests stay short. */
  const start = async (stallTimeoutMs: number): Promise<InProcessController> => {
    running = await startInProcessController({
      kubeConfig: kubeConfigOf(proxy.url, cluster.token),
      namespace: ns,
      tuning: { informer: { stallTimeoutMs, restartBaseMs: 100, restartMaxMs: 1_000 } },
    });
    // Ready means listed; each informer opens its watch a moment later.
    await expect.poll(() => proxy.openWatches).toBe(3);
    return running;
  };
  const routesInformer = (): InProcessController['mode']['routes'] => {
    if (running === undefined) throw new Error('not started');
    return running.mode.routes;
  };

  beforeAll(async () => {
    kube = adminClient();
    await ensureCrd(kube);
    await createNamespace(kube, ns);
    proxy = await K8sFaultProxy.start({ url: cluster.url, caPem: cluster.caPem });
  });
  afterEach(async () => {
    proxy.heal();
    await running?.stop();
    running = undefined;
    // Hung watches of the stopped controller would otherwise count as open in the next test.
    proxy.dropWatches();
  });
  afterAll(async () => {
    await proxy?.close();
    await kube?.close();
  });

  it('asks the apiserver for bookmarks and a server-side timeout on every watch', async () => {
    await start(60_000);
    const watches = proxy.requests.filter((r) => r.watch);
    expect(watches.length).toBeGreaterThanOrEqual(3);
    for (const request of watches) {
      const query = new URL(request.path, 'http://x').searchParams;
      expect(query.get('allowWatchBookmarks')).toBe('true');
      expect(Number(query.get('timeoutSeconds'))).toBeGreaterThanOrEqual(300);
      expect(query.get('resourceVersion')).not.toBe('');
    }
  });

  it('relists after a 410 in the watch stream and loses no update, delete or re-create made meanwhile', async () => {
    await applyRoute(kube, fhirRoute(ns, 'stream-a', { destination: 'stream-a' }));
    await applyRoute(kube, fhirRoute(ns, 'stream-b', { destination: 'stream-b' }));
    await start(60_000);
    await waitForCondition(kube, ns, 'stream-b', { type: 'Accepted', status: 'True' });
    const before = routesInformer().stats();
    const oldUid = routesInformer().uidOf(`${ns}/stream-b`);

    proxy.hangWatches();
    await applyRoute(kube, fhirRoute(ns, 'stream-c', { destination: 'stream-c' }));
    await patchSpec(kube, ns, 'stream-a', { allow: { methods: ['GET'] } });
    await kube.json('DELETE', routesPath(ns, 'stream-b'));
    await applyRoute(kube, fhirRoute(ns, 'stream-b', { destination: 'stream-b2' }));
    await sleep(300);
    // The events were withheld: the cache has not seen any of it.
    expect(routesInformer().get(`${ns}/stream-c`)).toBeUndefined();

    proxy.heal();
    expect(proxy.expireOpenWatches()).toBe(3);
    await waitForCondition(kube, ns, 'stream-c', { type: 'Accepted', status: 'True' });
    await waitForCondition(kube, ns, 'stream-a', { type: 'Programmed', status: 'False', observedGeneration: 2 });
    const recreated = await waitForCondition(kube, ns, 'stream-b', { type: 'Accepted', status: 'True' });
    expect(recreated.metadata.uid).not.toBe(oldUid);
    expect(routesInformer().uidOf(`${ns}/stream-b`)).toBe(recreated.metadata.uid);
    expect(running?.mode.source.state().routes.find((r) => r.metadata.name === 'stream-b')?.spec.destination).toBe('stream-b2');
    // client-node relisted by itself: no restart was needed.
    expect(routesInformer().stats().restarts).toBe(before.restarts);
    expect(routesInformer().stats().lists).toBe(before.lists + 1);
  });

  it('relists after a watch request answered 410 Gone', async () => {
    await start(60_000);
    const before = routesInformer().stats();
    proxy.hangWatches();
    await applyRoute(kube, fhirRoute(ns, 'gone-a', { destination: 'gone-a' }));
    await sleep(200);
    proxy.heal();
    // The open watches end cleanly; client-node comes back from its resourceVersion and hears 410.
    proxy.expireNextWatches(3, 'status');
    const mark = performance.now();
    proxy.endOpenWatches();
    await waitForCondition(kube, ns, 'gone-a', { type: 'Accepted', status: 'True' });
    expect(routesInformer().stats().lists).toBe(before.lists + 1);
    expect(routesInformer().stats().restarts).toBe(before.restarts);
    expect(proxy.listRequests('/fhirroutes', mark)).toBe(1);
  });

  it('restarts after dropped connections with one new watch each, despite a listener that throws', async () => {
    await start(60_000);
    await waitForCondition(kube, ns, 'stream-a', { type: 'Accepted', status: 'True' });
    // An event handler with a bug: it must neither crash the process nor stop the informer.
    routesInformer().onChange(() => {
      throw new Error('a listener bug');
    });
    const before = routesInformer().stats();
    const mark = performance.now();
    expect(proxy.dropWatches()).toBe(3);
    await applyRoute(kube, fhirRoute(ns, 'dropped-a', { destination: 'dropped-a' }));
    await kube.json('DELETE', routesPath(ns, 'gone-a'));
    await waitForCondition(kube, ns, 'dropped-a', { type: 'Accepted', status: 'True' });
    await expect.poll(() => running?.mode.source.state().routes.some((r) => r.metadata.name === 'gone-a')).toBe(false);
    expect(routesInformer().stats().restarts).toBe(before.restarts + 1);
    await sleep(500);
    // One restart per informer, each one list and one watch: no reconnect storm (#1933).
    expect(proxy.watchRequests(mark)).toBe(3);
    expect(proxy.listRequests('/fhirroutes', mark)).toBe(1);
  });

  it('notices a silently hung watch with its stall watchdog and relists', async () => {
    await start(1_500);
    await waitForCondition(kube, ns, 'dropped-a', { type: 'Accepted', status: 'True' });
    const before = routesInformer().stats();
    proxy.hangWatches();
    await applyRoute(kube, fhirRoute(ns, 'hung-a', { destination: 'hung-a' }));
    const startedMs = performance.now();
    // Lists still pass: the watchdog's restart relists and finds the route although watches stay dead.
    const route: FhirRoute = await waitForCondition(kube, ns, 'hung-a', { type: 'Accepted', status: 'True' }, 10_000);
    const healedMs = performance.now() - startedMs;
    expect(route.status?.observedGeneration).toBe(1);
    expect(routesInformer().stats().restarts).toBeGreaterThan(before.restarts);
    expect(healedMs).toBeLessThan(1_500 + 375 + 1_000 + 1_000);
    const stalled = await running?.metrics.registry.getSingleMetric('fhirmesh_controller_informer_restarts_total')?.get();
    expect(stalled?.values.some((v) => v.labels['reason'] === 'stalled' && v.labels['resource'] === 'fhirroutes.fhirmesh.io' && v.value >= 1)).toBe(true);

    proxy.heal();
    await applyRoute(kube, fhirRoute(ns, 'hung-b', { destination: 'hung-b' }));
    await waitForCondition(kube, ns, 'hung-b', { type: 'Accepted', status: 'True' });
  });
});
