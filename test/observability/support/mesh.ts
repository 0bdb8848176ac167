// The mesh the observability tests watch: a real controller (routes directory) streaming to two real
// proxies in a chain, gw-a → gw-b → destinations, each a child process, with the OTEL_* variables given.
//
//   gw-a  acme     (path segment) → gw-b as acme-b    gw-b  acme-b (header) → destination, rule lab-orders → labs
//         flaky    (path segment) → gw-b as flaky-b         flaky-b (header) → failing (always 503, retried once)
//         down     (path segment) → a closed port (502 FHIRMESH_UPSTREAM_REFUSED from gw-a)

import fs from 'node:fs';
import path from 'node:path';
import { routeYaml } from '../../support/proxy-fixture.ts';
import { spawnController, type SpawnedController } from '../../support/spawn-controller.ts';
import { spawnProxy, type SpawnedProxy } from '../../support/spawn-proxy.ts';
import { startUpstream, type TestUpstream, type UpstreamHandler } from '../../support/upstream.ts';
import { freePorts } from './tools.ts';

export interface Mesh {
  controller: SpawnedController;
  gwA: SpawnedProxy;
  gwB: SpawnedProxy;
  /** The FHIR server behind acme-b; records what reached it (headers included). */
  destination: TestUpstream;
  /** Where lab orders of acme go (rule lab-orders on gw-b). */
  labs: TestUpstream;
  /** Answers every request 503 (behind flaky-b). */
  failing: TestUpstream;
  /** The originator-facing base URL of a destination through gw-a, e.g. `${gwA.url}/acme`. */
  base(destination: 'acme' | 'flaky' | 'down'): string;
  /** The admin URLs Prometheus scrapes, by job. */
  scrapeTargets(): { job: string; instance: string }[];
  stop(): Promise<void>;
}

const patientJson = (id: string): string => JSON.stringify({ resourceType: 'Patient', id });

export const fhirHandler: UpstreamHandler = (req, res) => {
  const text = patientJson(req.method === 'POST' ? 'new' : 'p1');
  res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const unavailable: UpstreamHandler = (_req, res) => {
  const text = JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'down for maintenance' }] });
  res.writeHead(503, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

export async function startMesh(
  dir: string,
  options: { env?: Record<string, string>; controllerEnv?: Record<string, string>; proxyArgs?: string[] } = {},
): Promise<Mesh> {
  const destination = await startUpstream(fhirHandler);
  const labs = await startUpstream(fhirHandler);
  const failing = await startUpstream(unavailable);
  const [grpcPort = 0, gwBPort = 0, closedPort = 0] = await freePorts(3);
  const gwBUrl = `http://127.0.0.1:${gwBPort}`;
  const routesDir = path.join(dir, 'routes');
  fs.mkdirSync(routesDir, { recursive: true });
  const viaGwB = (name: string, nextHop: string): string =>
    routeYaml(name, `destination: ${name}\naddressing: { pathSegment: true }\nbackend: { url: ${gwBUrl}, nextHopDestination: ${nextHop} }\ntimeouts: { firstByte: 5s }`);
  fs.writeFileSync(
    path.join(routesDir, 'routes.yaml'),
    viaGwB('acme', 'acme-b') +
      viaGwB('flaky', 'flaky-b') +
      routeYaml('down', `destination: down\naddressing: { pathSegment: true }\nbackend: { url: http://127.0.0.1:${closedPort}/fhir }`) +
      routeYaml(
        'acme-b',
        `destination: acme-b
addressing: { header: true }
backend: { url: ${destination.url}/fhir }
rules:
  - name: lab-orders
    match: { resourceTypes: [ServiceRequest], interactions: [create] }
    backend: { url: ${labs.url}/fhir }`,
      ) +
      routeYaml('flaky-b', `destination: flaky-b\naddressing: { header: true }\nbackend: { url: ${failing.url}/fhir }\nretries: { attempts: 1, retryOn: [unavailable] }`),
  );
  const controller = await spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`], { env: { ...options.env, ...options.controllerEnv } });
  const proxy = (id: string, listen: string): Promise<SpawnedProxy> =>
    spawnProxy({
      listen,
      intermediaryId: id,
      args: ['--controller', `127.0.0.1:${grpcPort}`, '--node-id', id, '--namespace', 'default', ...(options.proxyArgs ?? [])],
      env: { ...options.env },
    });
  const gwB = await proxy('gw-b', `127.0.0.1:${gwBPort}`);
  const gwA = await proxy('gw-a', '127.0.0.1:0');
  // Both have the controller's table before the first request.
  await Promise.all([gwA, gwB].map((p) => p.waitForLog((line) => line.msg === 'route table applied', 20_000)));
  return {
    controller,
    gwA,
    gwB,
    destination,
    labs,
    failing,
    base: (name) => `${gwA.url}/${name}`,
    scrapeTargets: () => [
      { job: 'fhirmesh-controller', instance: new URL(controller.adminUrl).host },
      { job: 'fhirmesh-proxy', instance: new URL(gwA.adminUrl).host },
      { job: 'fhirmesh-proxy', instance: new URL(gwB.adminUrl).host },
    ],
    async stop() {
      // SIGTERM: the proxies and the controller export their last spans on the way out.
      for (const p of [gwA, gwB]) p.signal('SIGTERM');
      await Promise.all([gwA, gwB].map((p) => p.waitForExit(15_000).catch(() => p.kill())));
      controller.child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        if (controller.child.exitCode !== null) resolve();
        else controller.child.once('exit', () => resolve());
      });
      await Promise.all([destination.close(), labs.close(), failing.close()]);
    },
  };
}

/** The OTEL_* environment of a mesh that sends every span to `otlpHttpUrl` at once. */
export function tracingEnv(otlpHttpUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpHttpUrl,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: 'parentbased_always_on',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    ...extra,
  };
}
