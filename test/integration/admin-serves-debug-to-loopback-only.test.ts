// In a pod the admin listeners bind the pod IP (probes, Prometheus); /debug shows route tables and
// connected proxies, so it answers only clients on loopback (kubectl port-forward arrives there).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { ControllerMetrics, createMode, startController, type ControllerConfig } from '../../controller/src/index.ts';
import { silentLogger as silentControllerLogger } from '../../runtime/index.ts';
import { silentLogger, startProxy } from '../../proxy/src/index.ts';
import { routeYaml } from '../support/proxy-fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An address of this machine that is not loopback, as another pod would reach the pod IP. */
const outsideAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;

function tempDirWith(file: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-admin-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

const ROUTE = routeYaml('acme', 'destination: acme\naddressing: { header: true }\nbackend: { url: "http://127.0.0.1:9/fhir" }');

test.skipIf(outsideAddress === undefined)('the proxy serves probes and metrics on every address and /debug/routes to loopback only', async () => {
  const dir = tempDirWith('routes.yaml', ROUTE);
  const proxy = await startProxy(
    {
      routesFile: path.join(dir, 'routes.yaml'),
      listen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '0.0.0.0', port: 0 },
      intermediaryId: 'gw-test',
      shutdownGraceMs: 0,
      logLevel: 'error',
      accessLog: false,
    },
    { logger: silentLogger() },
  );
  cleanups.push(async () => {
    await proxy.shutdown(0);
  });
  const port = new URL(proxy.adminUrl).port;
  const outside = `http://${outsideAddress}:${port}`;

  expect((await fetch(`${outside}/readyz`)).status).toBe(200);
  expect(await (await fetch(`${outside}/metrics`)).text()).toContain('fhirmesh_proxy_');
  const refused = await fetch(`${outside}/debug/routes`);
  expect(refused.status).toBe(403);
  expect(await refused.text()).toBe('/debug/routes answers loopback clients only: use kubectl port-forward\n');
  const local = await fetch(`http://127.0.0.1:${port}/debug/routes`);
  expect(local.status).toBe(200);
  expect(((await local.json()) as { routes: { destinationId: string }[] }).routes.map((route) => route.destinationId)).toEqual(['acme']);
});

test.skipIf(outsideAddress === undefined)('the controller serves probes and metrics on every address and /debug/status to loopback only', async () => {
  const dir = tempDirWith('routes.yaml', ROUTE);
  const config: ControllerConfig = {
    source: { kind: 'directory', routesDir: dir },
    grpcListen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '0.0.0.0', port: 0 },
    batchWindowMs: 10,
    ackTimeoutMs: 5_000,
    logLevel: 'error',
  };
  const mode = await createMode(config, { logger: silentControllerLogger(), metrics: new ControllerMetrics({ defaultMetrics: false }), directoryWatch: { debounceMs: 10, pollMs: 150 } });
  const controller = await startController(config, mode);
  cleanups.push(() => controller.shutdown());
  await controller.ready;
  const port = new URL(controller.adminUrl).port;
  const outside = `http://${outsideAddress}:${port}`;

  expect((await fetch(`${outside}/readyz`)).status).toBe(200);
  expect(await (await fetch(`${outside}/metrics`)).text()).toContain('fhirmesh_controller_');
  const refused = await fetch(`${outside}/debug/status`);
  expect(refused.status).toBe(403);
  expect(await refused.text()).toBe('/debug/status answers loopback clients only: use kubectl port-forward\n');
  expect((await fetch(`http://127.0.0.1:${port}/debug/status`)).status).toBe(200);
});
