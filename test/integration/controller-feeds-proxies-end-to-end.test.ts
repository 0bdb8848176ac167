// Standalone control plane end to end, all real processes: a controller over a routes directory,
// two proxies fed over gRPC, two sample FHIR destinations. Edits reach both proxies; traffic keeps
// being answered, without a pause, while the controller is killed and restarted; a proxy restarted
// meanwhile starts from its state dir.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleFhirServer, type SampleFhirServer } from '../../cli/src/demo/sample-fhir-server.ts';
import { eventually } from '../support/eventually.ts';
import { runToExit } from '../support/logged-process.ts';
import { metricValue } from '../support/metrics.ts';
import { freePort, spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { spawnProxy, type SpawnedProxy } from '../support/spawn-proxy.ts';

const CLI = path.resolve(import.meta.dirname, '../../cli/src/main.ts');

/**
 * The longest a proxy may go without answering while its controller is away. A request here takes
 * a few ms; the longest pauses measured on a loaded two-core machine, while a second proxy process
 * starts beside it, were a few hundred ms. A proxy that held requests until the controller came
 * back would show a gap of at least OUTAGE_MS.
 */
const MAX_GAP_MS = 1_000;
/** How long the controller stays down, measured in answered traffic: well over MAX_GAP_MS. */
const OUTAGE_MS = 2_500;
/** Answers to see in each phase (before the kill, during the outage, after the resync). */
const ANSWERS_PER_PHASE = 20;

let dir: string;
let routesDir: string;
let grpcPort: number;
const servers = new Map<'main' | 'labs', SampleFhirServer>();
/** Where the routes file points now: each test reads it, so none depends on another's edit. */
let routedTo: 'main' | 'labs';
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

function routeTo(server: 'main' | 'labs'): void {
  const file = path.join(routesDir, 'acme.yaml');
  fs.writeFileSync(`${file}.tmp`, route(servers.get(server)?.url ?? ''));
  fs.renameSync(`${file}.tmp`, file);
  routedTo = server;
}

function startController(): Promise<SpawnedController> {
  return spawnController(['--routes-dir', routesDir, '--grpc-listen', `127.0.0.1:${grpcPort}`]);
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

/** Resolves once `fhirmesh status` lists both proxies SYNCED; with its output. */
function bothSynced(timeoutMs?: number): Promise<string> {
  return eventually(async () => {
    const result = await runToExit(CLI, ['status', '--controller', `127.0.0.1:${grpcPort}`]);
    expect(result.code).toBe(0);
    expect(result.stdout.match(/SYNCED/g) ?? []).toHaveLength(2);
    return result.stdout;
  }, timeoutMs);
}

interface Traffic {
  /** When each 200 arrived (performance.now()), in order. */
  answeredAt: number[];
  answeredSince(at: number): number;
  stop(): Promise<{ startedAt: number; answeredAt: number[]; failures: string[] }>;
}

/** Sends requests back to back until stopped; records when each was answered, and every failure. */
function trafficLoop(proxy: SpawnedProxy): Traffic {
  let running = true;
  const startedAt = performance.now();
  const answeredAt: number[] = [];
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`${proxy.url}/acme/Patient?_count=1`, { headers: { Accept: 'application/fhir+json' } });
        await res.arrayBuffer();
        if (res.status === 200) answeredAt.push(performance.now());
        else failures.push(`status ${res.status}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  })();
  return {
    answeredAt,
    answeredSince: (at) => answeredAt.filter((t) => t >= at).length,
    async stop() {
      running = false;
      await loop;
      return { startedAt, answeredAt, failures };
    },
  };
}

/** The longest wait between the start and the first answer, or between two answers. */
function largestGap(startedAt: number, answeredAt: readonly number[]): number {
  let largest = 0;
  let previous = startedAt;
  for (const at of answeredAt) {
    largest = Math.max(largest, at - previous);
    previous = at;
  }
  return largest;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-e2e-'));
  routesDir = path.join(dir, 'routes');
  fs.mkdirSync(routesDir);
  servers.set('main', await startSampleFhirServer({ name: 'main', seed: true }));
  servers.set('labs', await startSampleFhirServer({ name: 'labs', seed: true }));
  routeTo('main');
  grpcPort = await freePort();
  controller = await startController();
  proxies.push(await startFedProxy('proxy-a'), await startFedProxy('proxy-b'));
  await bothSynced();
}, 60_000);

afterAll(async () => {
  for (const proxy of proxies) await proxy.kill();
  await controller?.kill();
  for (const server of servers.values()) await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('controller feeding two proxies', () => {
  it('serves both proxies the route, and status shows them SYNCED', async () => {
    for (const proxy of proxies) expect(await eventually(() => answeredBy(proxy))).toBe(routedTo);
    const status = await bothSynced();
    expect(status).toMatch(/proxy-a\s+payers\s+\S+.*SYNCED/);
    expect(status).toMatch(/proxy-b\s+payers\s+\S+.*SYNCED/);
  });

  it('routes both proxies the new way after a route file edit', async () => {
    const other = routedTo === 'main' ? 'labs' : 'main';
    routeTo(other);
    for (const proxy of proxies) await expect.poll(() => answeredBy(proxy), { timeout: 15_000, interval: 100 }).toBe(other);
    expect(await bothSynced()).not.toMatch(/STALE|NACKED/);
  });

  it('keeps answering, without a pause, while the controller is killed and restarted, then resyncs', async () => {
    const [proxyA] = proxies as [SpawnedProxy];
    const traffic = trafficLoop(proxyA);
    await expect.poll(() => traffic.answeredAt.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(ANSWERS_PER_PHASE);

    await controller?.kill();
    controller = undefined;
    const killedAt = performance.now();
    // The proxy knows its controller is gone, and serves on from the table in force.
    await expect.poll(() => metricValue(proxyA.adminUrl, 'fhirmesh_proxy_discovery_connected'), { timeout: 10_000 }).toBe(0);

    // A proxy restarted while the controller is down starts from its state dir and is ready at once.
    const restarted = proxies.pop() as SpawnedProxy;
    await restarted.kill();
    const fromDisk = await startFedProxy('proxy-b');
    proxies.push(fromDisk);
    expect((await fetch(`${fromDisk.adminUrl}/readyz`)).status).toBe(200);
    expect(await answeredBy(fromDisk)).toBe(routedTo);
    expect(fromDisk.logs.some((l) => l.msg === 'route table loaded from the state dir')).toBe(true);

    // The outage lasts until proxy A has answered for OUTAGE_MS without its controller.
    await expect.poll(() => traffic.answeredSince(killedAt), { timeout: 15_000 }).toBeGreaterThanOrEqual(ANSWERS_PER_PHASE);
    await expect.poll(() => (traffic.answeredAt.at(-1) ?? 0) - killedAt, { timeout: 15_000 }).toBeGreaterThanOrEqual(OUTAGE_MS);

    controller = await startController();
    await bothSynced(30_000);
    await expect.poll(() => metricValue(proxyA.adminUrl, 'fhirmesh_proxy_discovery_connected'), { timeout: 10_000 }).toBe(1);
    const resyncedAt = performance.now();
    await expect.poll(() => traffic.answeredSince(resyncedAt), { timeout: 10_000 }).toBeGreaterThanOrEqual(ANSWERS_PER_PHASE);
    const { startedAt, answeredAt, failures } = await traffic.stop();

    expect(failures).toEqual([]);
    const gapMs = largestGap(startedAt, answeredAt);
    console.log(`[controller outage] ${answeredAt.length} answers over ${Math.round((answeredAt.at(-1) ?? startedAt) - startedAt)} ms; largest gap ${Math.round(gapMs)} ms`);
    expect(gapMs).toBeLessThan(MAX_GAP_MS);
    // Both proxies resumed with "current": nothing to apply, so the table in force was never swapped.
    expect(await answeredBy(fromDisk)).toBe(routedTo);
  }, 60_000);
});
