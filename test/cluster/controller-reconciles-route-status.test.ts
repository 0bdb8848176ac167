// fhirmesh-controller as a real process against the real apiserver, with an identity that has only the
// chart's RBAC: it writes Accepted / ResolvedRefs / Programmed with observedGeneration, Conflicted on the
// younger route, ResolvedRefs=False for a missing Service or Secret, Programmed once a proxy ACKs.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FhirRoute } from '../../api/index.ts';
import { eventually } from '../support/eventually.ts';
import { connectFakeProxy, type FakeProxy } from '../support/fake-proxy.ts';
import { spawnController, type SpawnedController } from '../support/spawn-controller.ts';
import { cacheDir, pinnedVersions } from './binaries.ts';
import { adminClient, clusterContext, uniqueName } from './cluster-context.ts';
import {
  applyRoute,
  chartIdentity,
  controllerTls,
  createNamespace,
  ensureCrd,
  fhirRoute,
  kubeconfigFor,
  patchSpec,
  proxyToken,
  routesPath,
  waitForCondition,
} from './controller-fixtures.ts';
import { KubeHttp } from './kube-http.ts';
import { createServiceAccountToken } from './service-account-tokens.ts';

const KUBECTL = path.join(cacheDir(process.env['KUBE_VERSION'] || pinnedVersions().kubeVersion), 'kubectl');

function kubectl(args: string[], kubeconfig: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, output: `${stdout}${stderr}` });
    });
  });
}

function conditionsOf(route: FhirRoute): [string, string, string, number | undefined][] {
  return (route.status?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.observedGeneration]);
}

describe('fhirmesh-controller with the chart RBAC reconciles FhirRoute status', () => {
  const cluster = clusterContext();
  const release = uniqueName('fhirmesh-system');
  const ns = uniqueName('payers');
  let kube: KubeHttp;
  let token: string;
  let controller: SpawnedController;
  const proxies: FakeProxy[] = [];
  const grpcTls = controllerTls();

  beforeAll(async () => {
    kube = adminClient();
    await ensureCrd(kube);
    await createNamespace(kube, release);
    await createNamespace(kube, ns);
    token = await chartIdentity(kube, release);
    controller = await spawnController(['--kubeconfig', kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token }), ...grpcTls.args, '--log-level', 'debug']);
  });

  afterAll(async () => {
    for (const proxy of proxies) proxy.close();
    expect((await controller?.stop())?.code).toBe(0);
    await kube?.close();
  });

  it('runs against the installed, Established CRD', async () => {
    const crd = await kube.json<{ status: { conditions: { type: string; status: string }[] } }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/fhirroutes.fhirmesh.io');
    expect(crd.status.conditions.find((c) => c.type === 'Established')?.status).toBe('True');
  });

  it('runs as an identity that may do what the controller needs and nothing more', async () => {
    const self = new KubeHttp({ ...cluster, token });
    try {
      const can = async (verb: string, resource: string, group = '', subresource = ''): Promise<boolean> => {
        const review = await self.json<{ status: { allowed: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { namespace: ns, verb, group, resource, subresource } },
        });
        return review.status.allowed;
      };
      expect(await can('watch', 'fhirroutes', 'fhirmesh.io')).toBe(true);
      expect(await can('patch', 'fhirroutes', 'fhirmesh.io', 'status')).toBe(true);
      expect(await can('list', 'secrets')).toBe(true);
      expect(await can('update', 'fhirroutes', 'fhirmesh.io')).toBe(false);
      expect(await can('delete', 'fhirroutes', 'fhirmesh.io')).toBe(false);
      expect(await can('get', 'secrets')).toBe(false);
      expect(await can('create', 'leases', 'coordination.k8s.io')).toBe(false);
      expect(await can('create', 'tokenreviews', 'authentication.k8s.io')).toBe(true);
    } finally {
      await self.close();
    }
  });

  it('refuses to start, in one line that names the fix, under an identity without the chart RBAC', async () => {
    const bare = await createServiceAccountToken(kube, 'no-rbac', { namespace: release });
    const refused = await spawnController(['--kubeconfig', kubeconfigFor({ url: cluster.url, caPem: cluster.caPem, token: bare }), ...grpcTls.args]);
    expect((await refused.exited).code).toBe(1);
    const errors = refused.logs.filter((line) => typeof line['raw'] === 'string' && String(line['raw']).startsWith('fhirmesh-controller:'));
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.['raw'])).toMatch(/^fhirmesh-controller: cannot read routes: cannot list \S+ \(\/api.*\): .*403 Forbidden.*: the controller's identity may not list and watch it: apply the RBAC of charts\/fhirmesh/);
  });

  it('reports Accepted, ResolvedRefs and Programmed (no proxies yet), each with observedGeneration', async () => {
    await kube.json('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fhir' }, spec: { ports: [{ port: 80, targetPort: 8080 }] } });
    await applyRoute(kube, fhirRoute(ns, 'acme', { destination: 'acme', backend: { service: { name: 'fhir', port: 80, path: '/r4' } } }));
    const route = await waitForCondition(kube, ns, 'acme', { type: 'Programmed', status: 'False', reason: 'NoProxies' });
    expect(conditionsOf(route)).toEqual([
      ['Accepted', 'True', 'Accepted', 1],
      ['ResolvedRefs', 'True', 'ResolvedRefs', 1],
      ['Programmed', 'False', 'NoProxies', 1],
    ]);
    expect(route.status?.observedGeneration).toBe(1);
    expect(route.status?.proxies).toEqual({ total: 0, programmed: 0 });
    // Through the status subresource, under its field manager.
    const managers = (route.metadata as { managedFields?: { manager: string; subresource?: string }[] }).managedFields ?? [];
    expect(managers.filter((m) => m.subresource === 'status').map((m) => m.manager)).toEqual(['fhirmesh-controller']);
  });

  it('marks the younger of two routes claiming one destination Conflicted, naming the older', async () => {
    // creationTimestamp has whole seconds: let one pass, or the two are the same age.
    const older = await kube.json<FhirRoute>('GET', routesPath(ns, 'acme'));
    const ageMs = Date.parse(older.metadata.creationTimestamp ?? '') + 1_000 - Date.now();
    if (ageMs > 0) await new Promise((resolve) => setTimeout(resolve, ageMs));
    await applyRoute(kube, fhirRoute(ns, 'acme-copy', { destination: 'acme' }));
    const younger = await waitForCondition(kube, ns, 'acme-copy', { type: 'Accepted', status: 'False', reason: 'Conflicted' });
    expect(younger.status?.conditions?.find((c) => c.type === 'Accepted')?.message).toContain(`already claimed by ${ns}/acme (older)`);
    await waitForCondition(kube, ns, 'acme', { type: 'Accepted', status: 'True' });
  });

  it('reports ResolvedRefs=False for a missing Service, and True once it exists', async () => {
    await applyRoute(kube, fhirRoute(ns, 'labs', { destination: 'labs', backend: { service: { name: 'labs-fhir', port: 80 } } }));
    const missing = await waitForCondition(kube, ns, 'labs', { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound' });
    expect(missing.status?.conditions?.find((c) => c.type === 'ResolvedRefs')?.message).toContain(`Service ${ns}/labs-fhir does not exist`);
    await kube.json('POST', `/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'labs-fhir' }, spec: { ports: [{ port: 80 }] } });
    await waitForCondition(kube, ns, 'labs', { type: 'ResolvedRefs', status: 'True' });
  });

  it('reports ResolvedRefs=False for a missing Secret, and True once it holds ca.crt', async () => {
    await applyRoute(kube, fhirRoute(ns, 'secure', { destination: 'secure', backend: { url: 'https://fhir.secure.example/r4', tls: { caSecretRef: 'secure-ca' } } }));
    const missing = await waitForCondition(kube, ns, 'secure', { type: 'ResolvedRefs', status: 'False', reason: 'SecretNotFound' });
    expect(missing.status?.conditions?.find((c) => c.type === 'ResolvedRefs')?.message).toContain(`Secret ${ns}/secure-ca has no ca.crt`);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    await kube.json('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'secure-ca' }, type: 'Opaque', data: { 'ca.crt': Buffer.from(pem).toString('base64') } });
    await waitForCondition(kube, ns, 'secure', { type: 'ResolvedRefs', status: 'True' });
  });

  it('turns Programmed once a connected proxy ACKs; kubectl wait sees it; an edit is programmed again', async () => {
    const proxy = connectFakeProxy({ address: controller.grpcAddress, nodeId: 'gw-1', namespace: ns, mode: 'auto', tls: grpcTls.tls, token: await proxyToken(kube, ns) });
    proxies.push(proxy);
    if (fs.existsSync(KUBECTL)) {
      const waited = await kubectl(['wait', '--for=condition=Programmed', '-n', ns, 'fhirroute/acme', 'fhirroute/labs', 'fhirroute/secure', '--timeout=20s'], cluster.kubeconfigPath);
      expect(waited.output).toContain('condition met');
      expect(waited.code).toBe(0);
    }
    const acme = await waitForCondition(kube, ns, 'acme', { type: 'Programmed', status: 'True' });
    expect(acme.status?.proxies).toEqual({ total: 1, programmed: 1 });
    expect(acme.status?.conditions?.find((c) => c.type === 'Programmed')?.message).toBe('all 1 proxies in scope run generation 1');
    // Conflicted routes never reach a proxy.
    await waitForCondition(kube, ns, 'acme-copy', { type: 'Programmed', status: 'False', reason: 'Conflicted' });

    const edited = await patchSpec(kube, ns, 'acme', { allow: { methods: ['GET'] } });
    expect(edited.metadata.generation).toBe(2);
    const programmed = await waitForCondition(kube, ns, 'acme', { type: 'Programmed', status: 'True' });
    expect(conditionsOf(programmed).map(([type, status, , generation]) => [type, status, generation])).toEqual([
      ['Accepted', 'True', 2],
      ['ResolvedRefs', 'True', 2],
      ['Programmed', 'True', 2],
    ]);
    expect(proxy.table.get('acme')?.allowedMethods).toEqual(['GET']);
  });

  it('writes the status of a route deleted and created again under the same name', async () => {
    const first = await kube.json<FhirRoute>('GET', routesPath(ns, 'acme-copy'));
    await kube.json('DELETE', routesPath(ns, 'acme-copy'));
    await applyRoute(kube, fhirRoute(ns, 'acme-copy', { destination: 'acme-two' }));
    const second = await waitForCondition(kube, ns, 'acme-copy', { type: 'Programmed', status: 'True' });
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    expect(second.status?.observedGeneration).toBe(1);
  });

  it('writes nothing while nothing changes', async () => {
    await waitForCondition(kube, ns, 'acme', { type: 'Programmed', status: 'True' });
    const before = await eventually(async () => {
      const a = await controller.metric('fhirmesh_controller_status_writes_total', { result: 'written' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const b = await controller.metric('fhirmesh_controller_status_writes_total', { result: 'written' });
      if (a !== b) throw new Error('still writing');
      return b;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await controller.metric('fhirmesh_controller_status_writes_total', { result: 'written' })).toBe(before);
    expect(await controller.metric('fhirmesh_controller_status_writes_total', { result: 'refused' })).toBe(0);
  });
});
