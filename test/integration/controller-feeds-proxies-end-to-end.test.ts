// Standalone control plane end to end, all real processes: a controller over a routes directory,
// two proxies fed over gRPC, a sample FHIR destination. Edits reach both proxies; traffic survives
// the controller being killed and restarted; a proxy restarted meanwhile starts from its state dir.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleFhirServer, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { eventually } from '../support/eventually.ts';
import { freePort, spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { NODE_BIN } from '../support/logged-process.ts';
import { spawnProxy, type SpawnedProxy } from '../support/spawn-proxy.ts';

const CLI = path.resolve(import.meta.dirname, '../../cli/src/main.ts');

let dir: string;
let routesDir: string;
let grpcPort: number;
let main: SampleFhirServer;
let labs: SampleFhirServer;
let controller: SpawnedController | undefined;
const proxies: SpawnedProxy[] = [];

function route(backendUrl: string): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme, namespace: payers }
spec:
  destination: acme
  addressing: { header: true, pathSegment: true }
  backend: { url: ${backendUrl} }
`;
}

function writeRoute(backendUrl: string): void {
  const file = path.join(routesDir, 'acme.yaml');
  fs.writeFileSync(`${file}.tmp`, route(backendUrl));
  fs.renameSync(`${file}.tmp`, file);
}

async function startFedProxy(name: string): Promise<SpawnedProxy> {
  return spawnProxy({
    listen: '127.0.0.1:0',
    intermediaryId: name,
    args: ['--controller', `127.0.0.1:${grpcPort}`, '--node-id', name, '--namespace', 'payers', '--state-dir', path.join(dir, `state-${name}`)],
  });
}

/** Which sample server answered: each seeds resources whose meta.source names it. */
async function answeredBy(proxy: SpawnedProxy): Promise<string> {
  const res = await fetch(`${proxy.url}/acme/metadata`, { headers: { Accept: 'application/fhir+json' } });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  const capability = (await res.json()) as { software?: { name?: string }; implementation?: { description?: string } };
  return JSON.stringify(capability).includes('labs') ? 'labs' : 'main';
}

function cliStatus(): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(NODE_BIN, [CLI, 'status', '--controller', `127.0.0.1:${grpcPort}`], { timeout: 10_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout });
    });
  });
}

/** Sends requests back to back until stopped; records every failure. */
function trafficLoop(proxy: SpawnedProxy): { stop(): Promise<{ sent: number; failures: string[] }> } {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`${proxy.url}/acme/Patient?_count=1`, { headers: { Accept: 'application/fhir+json' } });
        await res.arrayBuffer();
        if (res.status !== 200) failures.push(`status ${res.status}`);
      } catch (err) {
        failures.push(String(err));
      }
      sent++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { sent, failures };
    },
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-e2e-'));
  routesDir = path.join(dir, 'routes');
  fs.mkdirSync(routesDir);
  main = await startSampleFhirServer({ name: 'main', seed: true });
  labs = await startSampleFhirServer({ name: 'labs', seed: true });
  writeRoute(main.url);
  grpcPort = await freePort();
  controller = await spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`]);
  proxies.push(await startFedProxy('proxy-a'), await startFedProxy('proxy-b'));
}, 60_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.kill();
  await controller?.kill();
  await main.close();
  await labs.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('controller feeding two proxies', () => {
  it('serves both proxies the route, and status shows them SYNCED', async () => {
    for (const proxy of proxies) expect(await eventually(() => answeredBy(proxy))).toBe('main');
    const status = await eventually(async () => {
      const result = await cliStatus();
      if ((result.stdout.match(/SYNCED/g) ?? []).length !== 2) throw new Error(result.stdout);
      return result;
    });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/proxy-a\s+payers\s+\S+.*SYNCED/);
    expect(status.stdout).toMatch(/proxy-b\s+payers\s+\S+.*SYNCED/);
  });

  it('routes both proxies the new way after a route file edit', async () => {
    writeRoute(labs.url);
    for (const proxy of proxies) {
      await eventually(async () => {
        if ((await answeredBy(proxy)) !== 'labs') throw new Error('not yet');
      });
    }
    const status = await eventually(async () => {
      const result = await cliStatus();
      if ((result.stdout.match(/SYNCED/g) ?? []).length !== 2) throw new Error(result.stdout);
      return result.stdout;
    });
    expect(status).not.toMatch(/STALE|NACKED/);
  });

  it('keeps traffic flowing while the controller is killed and restarted, then resyncs', async () => {
    const [proxyA] = proxies as [SpawnedProxy];
    const traffic = trafficLoop(proxyA);
    await new Promise((r) => setTimeout(r, 300));
    await controller?.kill();
    controller = undefined;
    await new Promise((r) => setTimeout(r, 1_000));
    // A proxy restarted while the controller is down starts from its state dir and is ready at once.
    const restarted = proxies.pop() as SpawnedProxy;
    await restarted.kill();
    const fromDisk = await startFedProxy('proxy-b');
    proxies.push(fromDisk);
    expect((await fetch(`${fromDisk.adminUrl}/readyz`)).status).toBe(200);
    expect(await answeredBy(fromDisk)).toBe('labs');
    expect(fromDisk.logs.some((l) => l.msg === 'route table loaded from the state dir')).toBe(true);

    controller = await spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`]);
    await eventually(async () => {
      const result = await cliStatus();
      if ((result.stdout.match(/SYNCED/g) ?? []).length !== 2) throw new Error(result.stdout);
    }, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const { sent, failures } = await traffic.stop();
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(10);
    // Both proxies resumed with "current": nothing to apply, so the table in force was never swapped.
    expect(await answeredBy(fromDisk)).toBe('labs');
  }, 60_000);
});
