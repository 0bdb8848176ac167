// bench/control-plane's simulated proxies against a real controller process: they get their
// namespace's table, ACK it (the controller counts them SYNCED), see a one-route change arrive in
// their namespace only, and that change reaches no proxy of the other namespace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryMesh } from '../../bench/control-plane/internal/directory-mesh.ts';
import { namespaceNames, routeRefs, type MeshSource, type RouteRef } from '../../bench/control-plane/internal/routes.ts';
import { ProxyWorkers } from '../../bench/control-plane/internal/workers.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';

describe('bench/control-plane simulated proxies', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-cpbench-smoke-'));
  const namespaces = namespaceNames(2);
  const routes = routeRefs(20, namespaces);
  let source: MeshSource;
  let controller: SpawnedController;
  let workers: ProxyWorkers;

  beforeAll(async () => {
    source = directoryMesh(dir, routes, 'http://127.0.0.1:9/initial');
    controller = await spawnController([...source.controllerArgs]);
    workers = await ProxyWorkers.start(1, dir);
  });

  afterAll(async () => {
    await workers?.stop();
    await controller?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ACK their namespace table and see a change in their namespace only', async () => {
    const proxies = Array.from({ length: 4 }, (_, index) => ({ nodeId: `smoke-${index}`, namespace: namespaces[index % 2] as string }));
    await workers.open({ address: controller.grpcAddress }, proxies, {});
    const first = await workers.waitFirstTables(10_000);
    expect(first).toMatchObject({ complete: true, done: 4 });
    expect(first.stats.snapshotRoutes).toEqual({ 'ns-0': 10, 'ns-1': 10 });
    await expect.poll(() => controller.metric('fhirmesh_controller_connected_proxies', { sync_state: 'SYNCED' })).toBe(4);

    const route = routes[0] as RouteRef;
    const url = 'http://127.0.0.1:9/changed';
    await workers.watch([[route.namespace, route.destinationId, url]]);
    await source.edit(route, url);
    const change = await workers.waitWatched(10_000);
    expect(change).toMatchObject({ complete: true, proxies: 2, done: 2, outOfScopeResponses: 0 });
    expect(change.stats.nacks).toBe(0);
    await expect.poll(() => controller.metric('fhirmesh_controller_connected_proxies', { sync_state: 'SYNCED' })).toBe(4);
  });
});
