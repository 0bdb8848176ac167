// `fhirmesh demo`: two sample FHIR destinations (Medplum's router) and a fhirmesh proxy serving
// examples/routes.yaml on loopback, plus the requests that show each addressing mode.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startProxy, type Logger, type RunningProxy } from '../../../proxy/src/index.ts';
import { startSampleFhirServer, type SampleFhirServer } from './sample-fhir-server.ts';

export const EXAMPLE_ROUTES = path.resolve(import.meta.dirname, '../../../examples/routes.yaml');

/** The fixed ports examples/routes.yaml names; `ephemeral` swaps them for free ones. */
const DEMO_PORTS = { proxy: 8080, admin: 9901, acme: 8101, labs: 8102 } as const;

export interface DemoRequest {
  title: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Which sample server should answer it (the delegated rule sends lab orders to `labs`). */
  answeredBy: 'acme' | 'labs';
}

export interface RunningDemo {
  proxy: RunningProxy;
  acme: SampleFhirServer;
  labs: SampleFhirServer;
  routesFile: string;
  requests: DemoRequest[];
  stop(): Promise<void>;
}

export async function runDemo(options: { ephemeral?: boolean; logger?: Logger } = {}): Promise<RunningDemo> {
  const ports = options.ephemeral === true
    ? { proxy: await freePort(), admin: 0, acme: 0, labs: 0 }
    : DEMO_PORTS;
  const proxyBase = `http://127.0.0.1:${ports.proxy}`;
  // Each destination knows its public base URL: the IG puts that duty on the destination.
  const acme = await startSampleFhirServer({ name: 'acme', port: ports.acme, publicBaseUrl: `${proxyBase}/acme`, seed: true });
  const labs = await startSampleFhirServer({ name: 'labs', port: ports.labs, publicBaseUrl: `http://labs.localhost:${ports.proxy}`, seed: true });

  let routesFile = EXAMPLE_ROUTES;
  let tmpDir: string | undefined;
  if (options.ephemeral === true) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-demo-'));
    routesFile = path.join(tmpDir, 'routes.yaml');
    const text = fs
      .readFileSync(EXAMPLE_ROUTES, 'utf8')
      .replaceAll(`127.0.0.1:${DEMO_PORTS.acme}`, `127.0.0.1:${acme.port}`)
      .replaceAll(`127.0.0.1:${DEMO_PORTS.labs}`, `127.0.0.1:${labs.port}`)
      .replaceAll(`:${DEMO_PORTS.proxy}`, `:${ports.proxy}`);
    fs.writeFileSync(routesFile, text);
  }

  let proxy: RunningProxy;
  try {
    proxy = await startProxy(
      {
        routesFile,
        listen: { host: '127.0.0.1', port: ports.proxy },
        adminListen: { host: '127.0.0.1', port: ports.admin },
        intermediaryId: 'fhirmesh-demo',
        shutdownGraceMs: 2_000,
        logLevel: 'info',
        accessLog: true,
      },
      options.logger === undefined ? {} : { logger: options.logger },
    );
  } catch (err) {
    await Promise.all([acme.close(), labs.close()]);
    throw err;
  }

  const requests: DemoRequest[] = [
    { title: 'Header addressing: X-Destination names the destination', method: 'GET', url: `${proxyBase}/Patient?_count=2`, headers: { 'X-Destination': 'acme', Accept: 'application/fhir+json' }, answeredBy: 'acme' },
    { title: 'Path-segment addressing: /acme/ is the destination, stripped before forwarding', method: 'GET', url: `${proxyBase}/acme/metadata`, headers: { Accept: 'application/fhir+json' }, answeredBy: 'acme' },
    { title: 'Host addressing (vanity host fhir.acme.localhost)', method: 'GET', url: `${proxyBase}/Patient?_count=1`, headers: { Host: 'fhir.acme.localhost', Accept: 'application/fhir+json' }, answeredBy: 'acme' },
    { title: 'Host addressing (subdomain labs.localhost)', method: 'GET', url: `${proxyBase}/metadata`, headers: { Host: 'labs.localhost', Accept: 'application/fhir+json' }, answeredBy: 'labs' },
    {
      title: 'Delegated rule: a lab order (ServiceRequest create) sent to acme is routed to labs',
      method: 'POST',
      url: `${proxyBase}/acme/ServiceRequest`,
      headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/example' }, code: { text: 'CBC' } }),
      answeredBy: 'labs',
    },
    { title: 'Intermediary error: an unknown destination gets 404 with an OperationOutcome', method: 'GET', url: `${proxyBase}/Patient`, headers: { 'X-Destination': 'nobody' }, answeredBy: 'acme' },
  ];

  return {
    proxy,
    acme,
    labs,
    routesFile,
    requests,
    async stop() {
      await proxy.shutdown(1_000);
      await Promise.all([acme.close(), labs.close()]);
      if (tmpDir !== undefined) fs.rmSync(tmpDir, { recursive: true, force: true });
    },
  };
}

export function toCurl(request: DemoRequest): string {
  const parts = ['curl -sS -i'];
  if (request.method !== 'GET') parts.push(`-X ${request.method}`);
  for (const [name, value] of Object.entries(request.headers)) parts.push(`-H '${name}: ${value}'`);
  if (request.body !== undefined) parts.push(`--data '${request.body}'`);
  parts.push(`'${request.url}'`);
  return parts.join(' ');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
