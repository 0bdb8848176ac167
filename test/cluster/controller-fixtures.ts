// Shared by the controller-*.test.ts cluster tests: the CRD installed and Established, an identity with
// only the chart's RBAC, TLS and proxy tokens, the controller in this process, kubectl-wait polling.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, fetch } from 'undici';
import { afterAll } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { FhirRoute, FhirRouteSpec } from '../../api/index.ts';
import { ControllerMetrics, createMode, startController, type ControllerConfig, type RunningController } from '../../controller/src/index.ts';
import { KubernetesMode, type KubernetesTuning } from '../../controller/src/kubernetes/internal/kubernetes-mode.ts';
import { createLogger, type LogLevel } from '../../runtime/index.ts';
import { eventually } from '../support/eventually.ts';
import type { ControllerTls } from '../support/fake-proxy.ts';
import { makeTestPki, type TestPki } from '../support/tls.ts';
import { KubeHttpError, type KubeHttp, type KubeObject } from './kube-http.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { createServiceAccountToken } from './service-account-tokens.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CRD_FILE = path.join(ROOT, 'crds/fhirroutes.fhirmesh.io.yaml');
const CHART_RULES = path.join(ROOT, 'charts/fhirmesh/files/rbac');

/** Installs crds/ (or finds it installed by another test file) and waits until it is Established. */
export async function ensureCrd(kube: KubeHttp): Promise<void> {
  const crd = parseYaml(fs.readFileSync(CRD_FILE, 'utf8')) as KubeObject;
  const created = await kube.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (created.status !== 201 && created.status !== 409) throw new KubeHttpError('POST', 'customresourcedefinitions', created);
  await eventually(async () => {
    const current = await kube.json<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/fhirroutes.fhirmesh.io');
    if (current.status?.conditions?.find((c) => c.type === 'Established')?.status !== 'True') throw new Error('CRD fhirroutes.fhirmesh.io not Established yet');
  }, 20_000);
  // Established is per apiserver; the discovery of the new group can trail it by a moment.
  await eventually(async () => {
    const list = await kube.request('GET', '/apis/fhirmesh.io/v1alpha1/fhirroutes?limit=1');
    if (list.status !== 200) throw new Error(`fhirroutes not served yet (${list.status})`);
  }, 20_000);
}

export async function createNamespace(kube: KubeHttp, name: string): Promise<void> {
  await kube.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function chartRules(file: string): unknown[] {
  return parseYaml(fs.readFileSync(path.join(CHART_RULES, file), 'utf8')) as unknown[];
}

/**
 * A ServiceAccount in `releaseNamespace` bound to exactly the rules the chart ships (read from the
 * chart's own files): the watch and TokenReview rules cluster-wide, the Lease/ConfigMap rules in its
 * namespace. Returns a TokenRequest token for it.
 */
export async function chartIdentity(kube: KubeHttp, releaseNamespace: string, name = 'fhirmesh-controller'): Promise<string> {
  const subjects = [{ kind: 'ServiceAccount', name, namespace: releaseNamespace }];
  for (const [clusterRole, file] of [
    [`${releaseNamespace}-${name}`, 'watch-rules.yaml'],
    [`${releaseNamespace}-${name}-token-review`, 'token-review-rules.yaml'],
  ] as const) {
    await kube.json('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole }, rules: chartRules(file) });
    await kube.json('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: clusterRole },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects,
    });
  }
  const roles = `/apis/rbac.authorization.k8s.io/v1/namespaces/${releaseNamespace}`;
  await kube.json('POST', `${roles}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: `${name}-replicas` }, rules: chartRules('release-namespace-rules.yaml') });
  await kube.json('POST', `${roles}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: `${name}-replicas` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${name}-replicas` },
    subjects,
  });
  return createServiceAccountToken(kube, name, { namespace: releaseNamespace });
}

const kubeconfigDirs = new Set<string>();
// They hold bearer tokens and private keys: removed when the test file that made them is done
// (registered on the importing file's root suite; vitest may end its worker without an 'exit' event).
afterAll(() => {
  for (const dir of kubeconfigDirs) fs.rmSync(dir, { recursive: true, force: true });
  kubeconfigDirs.clear();
});

/** The name in the controller's gRPC certificate, as the chart's Service would be reached. */
export const CONTROLLER_SERVER_NAME = 'fhirmesh-controller.fhirmesh-system.svc';

export interface ControllerTlsFiles {
  /** --grpc-tls-cert FILE --grpc-tls-key FILE, for spawnController. */
  args: string[];
  /** What a proxy needs to reach it: the CA (PEM) and the name to check. */
  tls: ControllerTls;
  /** The CA as a file, for the real proxy's --controller-ca. */
  caFile: string;
  pki: TestPki;
}

/** A CA and a serving certificate for CONTROLLER_SERVER_NAME, made with openssl in a temp dir removed after the file. */
export function controllerTls(serverName = CONTROLLER_SERVER_NAME): ControllerTlsFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-grpc-tls-'));
  kubeconfigDirs.add(dir);
  const pki = makeTestPki(dir, serverName);
  return {
    args: ['--grpc-tls-cert', path.join(dir, pki.files.serverCert), '--grpc-tls-key', path.join(dir, pki.files.serverKey)],
    tls: { caPem: pki.caPem, serverName },
    caFile: path.join(dir, pki.files.ca),
    pki,
  };
}

/** A proxy's projected token: a TokenRequest token with audience fhirmesh for a ServiceAccount of `namespace`. */
export function proxyToken(kube: KubeHttp, namespace: string, serviceAccount = 'fhirmesh-proxy', audiences = ['fhirmesh']): Promise<string> {
  return createServiceAccountToken(kube, serviceAccount, { namespace, audiences });
}

/** A file holding `token`, as the kubelet mounts it for --token-file; removed after the test file. */
export function tokenFile(token: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-token-'));
  kubeconfigDirs.add(dir);
  const file = path.join(dir, 'token');
  fs.writeFileSync(file, token, { mode: 0o600 });
  return file;
}

/** A kubeconfig file for `token` against the apiserver at `url`, in a temp dir removed at exit. */
export function kubeconfigFor(connection: { url: string; caPem: string; token: string }, name = 'fhirmesh-test'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-kubeconfig-'));
  kubeconfigDirs.add(dir);
  const file = path.join(dir, 'kubeconfig');
  writeKubeconfig(file, { ...connection, name });
  return file;
}

export function fhirRoute(namespace: string, name: string, spec: Partial<FhirRouteSpec> & Pick<FhirRouteSpec, 'destination'>): FhirRoute {
  return {
    apiVersion: 'fhirmesh.io/v1alpha1',
    kind: 'FhirRoute',
    metadata: { name, namespace },
    spec: { addressing: { header: true }, backend: { url: 'https://fhir.example.org/r4' }, ...spec },
  };
}

export const routesPath = (namespace: string, name = ''): string => `/apis/fhirmesh.io/v1alpha1/namespaces/${namespace}/fhirroutes${name === '' ? '' : `/${name}`}`;

export async function applyRoute(kube: KubeHttp, route: FhirRoute): Promise<FhirRoute> {
  return kube.json<FhirRoute>('POST', routesPath(route.metadata.namespace ?? 'default'), route);
}

/** A JSON merge patch (KubeHttp sends application/json only, which PATCH refuses). */
export async function mergePatch<T>(kube: KubeHttp, target: string, patch: unknown): Promise<T> {
  const agent = new Agent({ connect: { ca: kube.connection.caPem } });
  try {
    const response = await fetch(new URL(target, kube.connection.url), {
      method: 'PATCH',
      dispatcher: agent,
      headers: { authorization: `Bearer ${kube.connection.token}`, 'content-type': 'application/merge-patch+json', accept: 'application/json' },
      body: JSON.stringify(patch),
    });
    const body: unknown = await response.json();
    if (response.status !== 200) throw new KubeHttpError('PATCH', target, { status: response.status, body });
    return body as T;
  } finally {
    await agent.close();
  }
}

/** Changes the spec, which bumps metadata.generation. */
export function patchSpec(kube: KubeHttp, namespace: string, name: string, spec: Partial<FhirRouteSpec>): Promise<FhirRoute> {
  return mergePatch<FhirRoute>(kube, routesPath(namespace, name), { spec });
}

export interface ConditionWanted {
  type: 'Accepted' | 'ResolvedRefs' | 'Programmed';
  status: 'True' | 'False';
  reason?: string;
  /** Default: the object's metadata.generation, as `kubectl wait` users expect. */
  observedGeneration?: number;
}

/**
 * `kubectl wait --for=condition=TYPE=STATUS` done by hand: polls the object until the condition has
 * that status (and reason) for the current generation; fails with what it last saw.
 */
export async function waitForCondition(kube: KubeHttp, namespace: string, name: string, wanted: ConditionWanted, timeoutMs = 15_000): Promise<FhirRoute> {
  let last: unknown = 'nothing yet';
  try {
    return await eventually(async () => {
      const route = await kube.json<FhirRoute>('GET', routesPath(namespace, name));
      const condition = route.status?.conditions?.find((c) => c.type === wanted.type);
      last = { generation: route.metadata.generation, status: route.status };
      const generation = wanted.observedGeneration ?? route.metadata.generation;
      if (condition?.status !== wanted.status || (wanted.reason !== undefined && condition.reason !== wanted.reason) || condition.observedGeneration !== generation || route.status?.observedGeneration !== generation) {
        throw new Error('not yet');
      }
      return route;
    }, timeoutMs);
  } catch {
    throw new Error(`${namespace}/${name}: no ${wanted.type}=${wanted.status}${wanted.reason === undefined ? '' : ` (${wanted.reason})`} within ${timeoutMs} ms; last seen ${JSON.stringify(last)}`);
  }
}

export interface InProcessController {
  controller: RunningController;
  /** The mode createMode built, with its parts (informers, queue, client) as fields. */
  mode: KubernetesMode;
  metrics: ControllerMetrics;
  stop(): Promise<void>;
}

/** A client-node KubeConfig for `server` (an https apiserver with its CA, or an http fault proxy). */
export function kubeConfigOf(server: string, token: string, caPem?: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server, ...(caPem === undefined ? { skipTLSVerify: true } : { caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }) }],
    users: [{ name: 'test', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return config;
}

/**
 * The controller in this process, started as main.ts starts it (createMode, then startController),
 * with informer timing a test can shorten (a process takes no such flags). Watches one namespace.
 * Its gRPC listener is plaintext (--insecure-grpc): these tests are about watches, not about who
 * connects, and connect no proxy.
 */
export async function startInProcessController(options: { kubeConfig: KubeConfig; namespace: string; tuning?: KubernetesTuning; logLevel?: LogLevel }): Promise<InProcessController> {
  const logger = createLogger({ level: options.logLevel ?? (process.env['FHIRMESH_TEST_LOGS'] === '1' ? 'debug' : 'error'), component: 'controller' });
  const metrics = new ControllerMetrics({ defaultMetrics: false });
  const config: ControllerConfig = {
    source: { kind: 'kubernetes', replicaId: 'in-process' },
    grpcListen: { host: '127.0.0.1', port: 0 },
    insecureGrpc: true,
    adminListen: { host: '127.0.0.1', port: 0 },
    namespace: options.namespace,
    batchWindowMs: 20,
    ackTimeoutMs: 5_000,
    logLevel: 'error',
  };
  const mode = await createMode(config, { logger, metrics, kubernetes: { ...options.tuning, kubeConfig: options.kubeConfig } });
  if (!(mode instanceof KubernetesMode)) throw new Error('createMode did not build Kubernetes mode for a kubernetes source');
  const controller = await startController(config, mode);
  await controller.ready;
  return { controller, mode, metrics, stop: () => controller.shutdown() };
}
