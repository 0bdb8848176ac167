// The Kubernetes source: the real kube-apiserver + etcd of test/cluster (binaries built by
// test/cluster/build/build-control-plane.sh), the FhirRoute CRD, the routes created through the API
// with bounded concurrency, and what the controller and proxies need in Kubernetes mode: a kubeconfig,
// a TLS certificate for gRPC, and one service-account token (audience fhirmesh) per namespace, which
// the controller checks by TokenReview as it would a pod's projected token.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch } from 'undici';
import { parse as parseYaml } from 'yaml';
import { locateBinaries } from '../../../test/cluster/binaries.ts';
import { startControlPlane } from '../../../test/cluster/control-plane.ts';
import { KubeHttp, KubeHttpError } from '../../../test/cluster/kube-http.ts';
import type { KubeObject } from '../../../test/cluster/kube-http.ts';
import { createServiceAccountToken } from '../../../test/cluster/service-account-tokens.ts';
import { makeTestPki } from '../../../test/support/tls.ts';
import { onCleanup } from './processes.ts';
import { routeObject } from './routes.ts';
import type { MeshSource, RouteRef } from './routes.ts';
import type { ControllerEndpoint } from './simulated-proxy.ts';

/** The name in the controller's gRPC certificate, as the chart's Service is reached. */
const SERVER_NAME = 'fhirmesh-controller.fhirmesh-system.svc';

export interface KubernetesMesh extends MeshSource {
  /** TLS the proxies use to reach the controller. */
  readonly tls: NonNullable<ControllerEndpoint['tls']>;
  readonly caFile: string;
  /** Namespace → a service-account token of that namespace. */
  readonly tokens: Readonly<Record<string, string>>;
  /** Namespace → the same token as a file, for the real proxy's --token-file. */
  readonly tokenFiles: Readonly<Record<string, string>>;
  readonly kubeVersion: string;
}

/** Throws with the build command when the binaries are missing: checked before anything starts. */
export function checkKubernetesBinaries(): void {
  locateBinaries();
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
async function bounded<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(lanes);
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

export async function kubernetesMesh(repoRoot: string, workDir: string, routes: readonly RouteRef[], namespaces: readonly string[], backendUrl: string, concurrency: number): Promise<KubernetesMesh> {
  const plane = await startControlPlane();
  onCleanup(() => plane.stop());
  const kube = new KubeHttp(plane.connection);
  onCleanup(() => kube.close());
  const started = performance.now();

  const crd = parseYaml(readFileSync(join(repoRoot, 'crds/fhirroutes.fhirmesh.io.yaml'), 'utf8')) as KubeObject;
  const created = await kube.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (created.status !== 201) throw new KubeHttpError('POST', 'customresourcedefinitions', created);
  await until('the FhirRoute CRD to be served', 30_000, async () => (await kube.request('GET', '/apis/fhirmesh.io/v1alpha1/fhirroutes?limit=1')).status === 200);
  for (const namespace of namespaces) await kube.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  const routesPath = (route: RouteRef): string => `/apis/fhirmesh.io/v1alpha1/namespaces/${route.namespace}/fhirroutes`;
  await bounded(routes, concurrency, async (route) => {
    await kube.json('POST', routesPath(route), routeObject(route, backendUrl));
  });
  const setupMs = performance.now() - started;

  const tokens: Record<string, string> = {};
  const tokenFiles: Record<string, string> = {};
  for (const namespace of namespaces) {
    const token = await createServiceAccountToken(kube, 'fhirmesh-proxy', { namespace, audiences: ['fhirmesh'] });
    tokens[namespace] = token;
    const file = join(workDir, `token-${namespace}`);
    writeFileSync(file, token, { mode: 0o600 });
    tokenFiles[namespace] = file;
  }
  const pki = makeTestPki(join(workDir, 'grpc-tls'), SERVER_NAME);

  // PATCH takes a merge patch, which KubeHttp (application/json only) cannot send.
  const agent = new Agent({ connect: { ca: plane.caPem }, connections: concurrency });
  onCleanup(() => agent.close());
  const edit = async (route: RouteRef, url: string): Promise<void> => {
    const target = `${routesPath(route)}/${route.name}`;
    const response = await fetch(new URL(target, plane.url), {
      method: 'PATCH',
      dispatcher: agent,
      headers: { authorization: `Bearer ${plane.adminToken}`, 'content-type': 'application/merge-patch+json', accept: 'application/json' },
      body: JSON.stringify({ spec: { backend: { url } } }),
    });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`PATCH ${target} answered ${response.status}: ${body.slice(0, 300)}`);
  };
  return {
    kind: 'kubernetes',
    controllerArgs: ['--kubeconfig', plane.kubeconfigPath, '--grpc-tls-cert', join(pki.dir, pki.files.serverCert), '--grpc-tls-key', join(pki.dir, pki.files.serverKey)],
    controllerEnv: {},
    setupMs,
    tls: { caPem: pki.caPem, serverName: SERVER_NAME },
    caFile: join(pki.dir, pki.files.ca),
    tokens,
    tokenFiles,
    kubeVersion: plane.version,
    edit,
    editMany: (edits) => bounded(edits, concurrency, ([route, url]) => edit(route, url)),
    pids: () => [],
    stop: () => plane.stop(),
  };
}
