// A kube-apiserver killed and restarted on the same etcd under a running controller: the informers'
// watches break, they restart with backoff until it answers again, and changes made right after the
// restart are reconciled; status writes that failed meanwhile are retried.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from './cluster-context.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import {
  applyRoute,
  createNamespace,
  ensureCrd,
  fhirRoute,
  kubeConfigOf,
  patchSpec,
  startInProcessController,
  waitForCondition,
  type InProcessController,
} from './controller-fixtures.ts';
import { KubeHttp } from './kube-http.ts';

// Its own control plane: restarting the shared one would pull it from under other test files.
describe('controller across a kube-apiserver restart', () => {
  const ns = uniqueName('restart');
  let plane: ControlPlane;
  let running: InProcessController;

  beforeAll(async () => {
    plane = await startControlPlane();
    const kube = new KubeHttp(plane.connection);
    try {
      await ensureCrd(kube);
      await createNamespace(kube, ns);
      await applyRoute(kube, fhirRoute(ns, 'before', { destination: 'before' }));
    } finally {
      await kube.close();
    }
    running = await startInProcessController({
      kubeConfig: kubeConfigOf(plane.url, plane.adminToken, plane.caPem),
      namespace: ns,
      tuning: { informer: { restartBaseMs: 200, restartMaxMs: 2_000 } },
    });
  });

  afterAll(async () => {
    await running?.stop();
    await plane?.stop();
  });

  it('heals its watches and reconciles what changed right after the restart', async () => {
    let kube = new KubeHttp(plane.connection);
    await waitForCondition(kube, ns, 'before', { type: 'Accepted', status: 'True' });
    await kube.close();
    const restartsBefore = running.mode.routes.stats().restarts;

    const restartedAt = performance.now();
    await plane.restartApiserver({ signal: 'SIGKILL', downtimeMs: 1_000 });
    kube = new KubeHttp(plane.connection);
    try {
      await applyRoute(kube, fhirRoute(ns, 'after', { destination: 'after' }));
      await patchSpec(kube, ns, 'before', { allow: { methods: ['GET'] } });
      await waitForCondition(kube, ns, 'after', { type: 'Accepted', status: 'True' }, 20_000);
      await waitForCondition(kube, ns, 'before', { type: 'Accepted', status: 'True', observedGeneration: 2 }, 20_000);
      console.log(`[apiserver restart] reconciled ${Math.round(performance.now() - restartedAt)} ms after the restart began`);
    } finally {
      await kube.close();
    }
    expect(running.mode.routes.stats().restarts).toBeGreaterThan(restartsBefore);
    expect(running.mode.source.state().routes.map((route) => route.metadata.name).sort()).toEqual(['after', 'before']);
  });
});
