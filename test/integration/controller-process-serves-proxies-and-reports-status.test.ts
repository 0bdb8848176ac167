// End to end with real processes: fhirmesh-controller over a routes directory serves fake proxies,
// `fhirmesh status` prints their sync state, an edit reaches them, SIGTERM stops it with exit 0.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, getProxyStatus, type FakeProxy, type FakeProxyOptions } from '../support/fake-proxy.ts';
import { runToExit } from '../support/logged-process.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';

const CONTROLLER = path.resolve(import.meta.dirname, '../../controller/src/main.ts');
const CLI = path.resolve(import.meta.dirname, '../../cli/src/main.ts');

const ACME = `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: acme, namespace: payers }
spec:
  destination: acme
  addressing: { header: true }
  backend: { url: BACKEND }
`;
const LABS = `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: labs, namespace: labs }
spec:
  destination: labs
  addressing: { header: true }
  backend: { url: https://labs.example.org/fhir }
  exportTo: ["*"]
`;

/** `fhirmesh status` against `grpcAddress`. */
const status = (grpcAddress: string) => runToExit(CLI, ['status', '--controller', grpcAddress], { timeoutMs: 15_000 });

/** The cells of a `fhirmesh status` line: columns are separated by two or more spaces. */
const cells = (line: string): string[] => line.split(/ {2,}/);

/** A controller process over its own routes directory (acme in payers, labs exported), and the fake proxies a test connects. */
interface Controlled {
  dir: string;
  controller: SpawnedController;
  connect(options: Omit<FakeProxyOptions, 'address'>): FakeProxy;
}

const started: { dir: string; controller: SpawnedController; proxies: FakeProxy[] }[] = [];

afterEach(async () => {
  for (const { dir, controller, proxies } of started.splice(0)) {
    for (const proxy of proxies) proxy.close();
    await controller.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Each test gets its own: nothing one test connects, edits or stops is seen by another. */
async function startControlled(): Promise<Controlled> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-ctl-proc-'));
  fs.writeFileSync(path.join(dir, 'acme.yaml'), ACME.replace('BACKEND', 'https://acme.example.org/fhir'));
  fs.writeFileSync(path.join(dir, 'labs.yaml'), LABS);
  const proxies: FakeProxy[] = [];
  const controller = await spawnController(['--routes-dir', dir, '--batch-window', '50ms']).catch((err: unknown) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  started.push({ dir, controller, proxies });
  return {
    dir,
    controller,
    connect(options) {
      const proxy = connectFakeProxy({ address: controller.grpcAddress, ...options });
      proxies.push(proxy);
      return proxy;
    },
  };
}

/** gw-a in payers applies and ACKs what it is sent; gw-b in labs NACKs its first table. Resolves once the controller shows both. */
async function oneSyncedOneNacked(controlled: Controlled): Promise<{ payers: FakeProxy; labsFull: Awaited<ReturnType<FakeProxy['next']>> }> {
  const payers = controlled.connect({ nodeId: 'gw-a', namespace: 'payers', mode: 'auto' });
  const labs = controlled.connect({ nodeId: 'gw-b', namespace: 'labs' });
  await payers.next();
  const labsFull = await labs.next();
  labs.nack(labsFull, 'route labs: cannot load its CA');
  await eventually(async () => expect((await getProxyStatus(controlled.controller.grpcAddress)).proxies.map((p) => p.syncState)).toEqual(['NACKED', 'SYNCED']));
  return { payers, labsFull };
}

describe('fhirmesh-controller process with a routes directory', () => {
  it('logs the bound addresses and that streams are unauthenticated, and becomes ready', async () => {
    const { controller } = await startControlled();
    expect(controller.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(controller.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Warnings come on stderr, the listening line on stdout: either pipe may be read first.
    await expect.poll(() => controller.logs.find((l) => l.level === 'warn' && String(l.msg).startsWith('discovery streams are unauthenticated'))).toBeDefined();
    await expect.poll(async () => (await fetch(`${controller.adminUrl}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    expect(await (await fetch(`${controller.adminUrl}/healthz`)).text()).toBe('ok\n');
  });

  it('prints one line per proxy with its acknowledged and target versions, SYNCED / NACKED and the NACK message', async () => {
    const controlled = await startControlled();
    const { payers, labsFull } = await oneSyncedOneNacked(controlled);

    const result = await status(controlled.controller.grpcAddress);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE ID +NAMESPACE +ACKED +TARGET +STATE +NACK$/);
    expect(lines.slice(1).map(cells)).toEqual([
      ['gw-a', 'payers', payers.version, payers.version, 'SYNCED'],
      ['gw-b', 'labs', '-', labsFull.versionInfo, 'NACKED', `version ${labsFull.versionInfo}: route labs: cannot load its CA`],
    ]);
  });

  it('pushes an edited route file to the proxy, and status and metrics show who runs which generation', async () => {
    const controlled = await startControlled();
    const { grpcAddress, adminUrl } = controlled.controller;
    const { payers } = await oneSyncedOneNacked(controlled);
    const before = payers.version;
    const tmp = path.join(controlled.dir, '.acme.yaml.tmp');
    fs.writeFileSync(tmp, ACME.replace('BACKEND', 'https://acme-v2.example.org/fhir'));
    fs.renameSync(tmp, path.join(controlled.dir, 'acme.yaml'));
    const delta = await payers.next(5_000);
    expect(delta).toMatchObject({ fullSnapshot: false, baseVersion: before, removed: [] });
    expect(delta.upserted.map((r) => [r.destinationId, r.backend?.baseUrl, r.source?.generation])).toEqual([['acme', 'https://acme-v2.example.org/fhir', 2]]);

    const result = await eventually(async () => {
      const answer = await status(grpcAddress);
      const gwA = answer.stdout.split('\n').find((line) => line.startsWith('gw-a'));
      expect(cells(gwA ?? '')).toEqual(['gw-a', 'payers', delta.versionInfo, delta.versionInfo, 'SYNCED']);
      return answer;
    });
    expect(result.code).toBe(0);

    const debug = await eventually(async () => {
      const body = (await (await fetch(`${adminUrl}/debug/status`)).json()) as { routes: { key: string; status: { observedGeneration: number; conditions: { type: string; status: string; reason: string }[]; proxies: unknown } }[] };
      expect(body.routes.find((r) => r.key === 'payers/acme')?.status.observedGeneration).toBe(2);
      return body;
    });
    const programmed = (key: string): unknown => {
      const route = debug.routes.find((r) => r.key === key);
      const condition = route?.status.conditions.find((c) => c.type === 'Programmed');
      return { status: condition?.status, reason: condition?.reason, proxies: route?.status.proxies };
    };
    expect(programmed('payers/acme')).toEqual({ status: 'True', reason: 'Programmed', proxies: { total: 1, programmed: 1 } });
    expect(programmed('labs/labs')).toEqual({ status: 'False', reason: 'Nacked', proxies: { total: 2, programmed: 1 } });

    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^fhirmesh_controller_routes\{condition="Programmed",status="True"\} 1$/m);
    expect(metrics).toMatch(/^fhirmesh_controller_routes\{condition="Programmed",status="False"\} 1$/m);
    expect(metrics).toMatch(/^fhirmesh_controller_connected_proxies\{sync_state="NACKED"\} 1$/m);
    // The fake proxies send no reason code (as proxies before ErrorDetail.reason did): counted as unspecified.
    expect(metrics).toMatch(/^fhirmesh_controller_nacks_total\{reason="unspecified"\} 1$/m);
    expect(metrics).toMatch(/^fhirmesh_controller_convergence_seconds_count [1-9]/m);
  });

  it('stops on SIGTERM with exit 0, closing proxy streams with UNAVAILABLE', async () => {
    const controlled = await startControlled();
    const proxies = [controlled.connect({ nodeId: 'gw-a', namespace: 'payers', mode: 'auto' }), controlled.connect({ nodeId: 'gw-b', namespace: 'labs', mode: 'auto' })];
    for (const proxy of proxies) await proxy.next();
    expect(await controlled.controller.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    for (const proxy of proxies) expect((await proxy.ended).code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('refusals', () => {
  it('fhirmesh status says so and exits 1 when no controller answers', async () => {
    const result = await runToExit(CLI, ['status', '--controller', '127.0.0.1:1', '--timeout', '1'], { timeoutMs: 15_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^fhirmesh status: cannot reach the controller at 127\.0\.0\.1:1 \(\w+: .*\); check --controller/);
  });

  it.each([
    [['--routes-dir', '/tmp', '--kubeconfig', '/tmp/k'], 'fhirmesh-controller: --routes-dir and --kubeconfig exclude each other'],
    [['--routes-dir', '/tmp', '--batch-window', 'soon'], "fhirmesh-controller: --batch-window 'soon' must be a duration"],
    [['--routes-dir', '/tmp', '--namespace', 'Bad_NS'], "fhirmesh-controller: --namespace 'Bad_NS' must be a namespace name"],
  ])('fhirmesh-controller %j exits 2 with one line', async (args, start) => {
    const result = await runToExit(CONTROLLER, args, { timeoutMs: 15_000 });
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stderr.startsWith(start)).toBe(true);
  });

  it('fhirmesh-controller with an unreadable kubeconfig exits 1 with one line saying so', async () => {
    const result = await runToExit(CONTROLLER, ['--kubeconfig', '/nonexistent/kubeconfig', '--insecure-grpc'], { timeoutMs: 15_000 });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stderr).toMatch(/^fhirmesh-controller: cannot start: cannot read --kubeconfig \/nonexistent\/kubeconfig/);
  });
});
