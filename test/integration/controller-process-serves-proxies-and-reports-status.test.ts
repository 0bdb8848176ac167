// End to end with real processes: fhirmesh-controller over a routes directory serves fake proxies,
// `fhirmesh status` prints their sync state, an edit reaches them, SIGTERM stops it with exit 0.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectFakeProxy, getProxyStatus, type FakeProxy } from '../support/fake-proxy.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const CONTROLLER = path.join(ROOT, 'controller/src/main.ts');
const CLI = path.join(ROOT, 'cli/src/main.ts');

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

interface Process {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(NODE, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

function startControllerProcess(args: string[]): Process {
  const child = spawn(NODE, [CONTROLLER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      partial += chunk;
      let at: number;
      while ((at = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, at);
        partial = partial.slice(at + 1);
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ raw: line });
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, logs, exited };
}

async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The cells of a `fhirmesh status` line: columns are separated by two or more spaces. */
const cells = (line: string): string[] => line.split(/ {2,}/);

describe('fhirmesh-controller process with a routes directory', () => {
  let dir: string;
  let controller: Process;
  let grpcAddress: string;
  let adminUrl: string;
  const proxies: FakeProxy[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-ctl-proc-'));
    fs.writeFileSync(path.join(dir, 'acme.yaml'), ACME.replace('BACKEND', 'https://acme.example.org/fhir'));
    fs.writeFileSync(path.join(dir, 'labs.yaml'), LABS);
    controller = startControllerProcess(['--routes-dir', dir, '--grpc-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--batch-window', '50ms']);
    const listening = await eventually(() => {
      const line = controller.logs.find((l) => l.msg === 'controller listening');
      if (line === undefined) throw new Error(`no "controller listening" yet: ${JSON.stringify(controller.logs)}`);
      return line;
    });
    grpcAddress = String(listening.grpcAddress);
    adminUrl = String(listening.adminUrl);
  });

  afterAll(async () => {
    for (const proxy of proxies) proxy.close();
    if (controller.child.exitCode === null) controller.child.kill('SIGKILL');
    await controller.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('logs the bound addresses and that streams are unauthenticated, and becomes ready', async () => {
    expect(grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(controller.logs.find((l) => l.level === 'warn' && String(l.msg).startsWith('discovery streams are unauthenticated'))).toBeDefined();
    await eventually(async () => expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200));
    expect(await (await fetch(`${adminUrl}/healthz`)).text()).toBe('ok\n');
  });

  it('prints one line per proxy with its acknowledged and target versions, SYNCED / NACKED and the NACK message', async () => {
    const payers = connectFakeProxy({ address: grpcAddress, nodeId: 'gw-a', namespace: 'payers', mode: 'auto' });
    const labs = connectFakeProxy({ address: grpcAddress, nodeId: 'gw-b', namespace: 'labs' });
    proxies.push(payers, labs);
    await payers.next();
    const labsFull = await labs.next();
    labs.nack(labsFull, 'route labs: cannot load its CA');
    await eventually(async () => expect((await getProxyStatus(grpcAddress)).proxies.map((p) => p.syncState)).toEqual(['NACKED', 'SYNCED']));

    const status = await run([CLI, 'status', '--controller', grpcAddress]);
    expect(status.code).toBe(0);
    const lines = status.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE ID +NAMESPACE +ACKED +TARGET +STATE +NACK$/);
    expect(lines.slice(1).map(cells)).toEqual([
      ['gw-a', 'payers', payers.version, payers.version, 'SYNCED'],
      ['gw-b', 'labs', '-', labsFull.versionInfo, 'NACKED', `version ${labsFull.versionInfo}: route labs: cannot load its CA`],
    ]);
  });

  it('pushes an edited route file to the proxy, and status and metrics show who runs which generation', async () => {
    const [payers] = proxies as [FakeProxy, FakeProxy];
    const before = payers.version;
    const tmp = path.join(dir, '.acme.yaml.tmp');
    fs.writeFileSync(tmp, ACME.replace('BACKEND', 'https://acme-v2.example.org/fhir'));
    fs.renameSync(tmp, path.join(dir, 'acme.yaml'));
    const delta = await payers.next(5_000);
    expect(delta).toMatchObject({ fullSnapshot: false, baseVersion: before, removed: [] });
    expect(delta.upserted.map((r) => [r.destinationId, r.backend?.baseUrl, r.source?.generation])).toEqual([['acme', 'https://acme-v2.example.org/fhir', 2]]);

    const status = await eventually(async () => {
      const result = await run([CLI, 'status', '--controller', grpcAddress]);
      const gwA = result.stdout.split('\n').find((line) => line.startsWith('gw-a'));
      expect(cells(gwA ?? '')).toEqual(['gw-a', 'payers', delta.versionInfo, delta.versionInfo, 'SYNCED']);
      return result;
    });
    expect(status.code).toBe(0);

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
    controller.child.kill('SIGTERM');
    expect(await controller.exited).toBe(0);
    for (const proxy of proxies) expect((await proxy.ended).code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('refusals', () => {
  it('fhirmesh status says so and exits 1 when no controller answers', async () => {
    const result = await run([CLI, 'status', '--controller', '127.0.0.1:1', '--timeout', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^fhirmesh status: cannot reach the controller at 127\.0\.0\.1:1 \(\w+: .*\); check --controller/);
  });

  it.each([
    [['--routes-dir', '/tmp', '--kubeconfig', '/tmp/k'], 'fhirmesh-controller: --routes-dir and --kubeconfig exclude each other'],
    [['--routes-dir', '/tmp', '--batch-window', 'soon'], "fhirmesh-controller: --batch-window 'soon' must be a duration"],
    [['--routes-dir', '/tmp', '--namespace', 'Bad_NS'], "fhirmesh-controller: --namespace 'Bad_NS' must be a namespace name"],
  ])('fhirmesh-controller %j exits 2 with one line', async (args, start) => {
    const result = await run([CONTROLLER, ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stderr.startsWith(start)).toBe(true);
  });

  it('fhirmesh-controller with an unreadable kubeconfig exits 1 with one line saying so', async () => {
    const result = await run([CONTROLLER, '--kubeconfig', '/nonexistent/kubeconfig', '--insecure-grpc']);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(result.stderr).toMatch(/^fhirmesh-controller: cannot start: cannot read --kubeconfig \/nonexistent\/kubeconfig/);
  });
});
