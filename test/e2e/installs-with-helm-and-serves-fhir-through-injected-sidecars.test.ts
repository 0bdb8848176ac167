// The install path a platform team takes, on a real node, in the order docs/install.md gives it:
// helm install, a Programmed route, an injected Deployment and Job whose FHIR traffic goes through
// the sidecar byte for byte, the gateway by header, path and Host, a controller pod deleted under
// traffic with nothing failing, then helm upgrade and helm uninstall leaving nothing that would
// block a pod. The steps build on each other and run in order.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, test } from 'vitest';
import { e2eContext } from './node/e2e-context.ts';
import { apply, helm, httpRequest, kubectl, kubectlJson, postJson, REPO_ROOT } from './node/kube-cli.ts';
import { makeCa, makeLeaf } from './node/pki.ts';

const RELEASE = 'fhirmesh';
const SYSTEM = 'fhirmesh-system';
const APPS = 'payers';
const CONTROLLER_HOST = 'fhirmesh-controller.fhirmesh-system.svc';
const CHART = path.join(REPO_ROOT, 'charts/fhirmesh');
// What a platform team passes: the image it built and the controller's TLS Secret. Turning on the
// gateway is a feature choice of theirs, documented in values.yaml; everything else is the default.
const INSTALL_VALUES = (): string[] => {
  const { name, tag } = e2eContext().image;
  return ['--set', `image.repository=${name}`, '--set', `image.tag=${tag}`, '--set', 'grpc.tls.secretName=fhirmesh-grpc-tls', '--set', 'gateway.enabled=true'];
};
const ECHO_BODY = Buffer.from('{"resourceType":"Bundle","type":"batch",  "entry":[{"resource":{"resourceType":"Patient","name":[{"family":"Ñúñez","given":["Åsa","花子"]}]}}]}\n\t');

interface Pod {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: {
    initContainers?: Container[];
    containers: Container[];
    volumes?: { name: string; projected?: unknown; emptyDir?: unknown }[];
  };
  status: { phase: string; podIP?: string; conditions?: { type: string; status: string }[]; initContainerStatuses?: { name: string; started?: boolean; ready: boolean }[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  restartPolicy?: string;
  env?: { name: string; value?: string }[];
  securityContext?: Record<string, unknown>;
}
interface Condition {
  type: string;
  status: string;
  observedGeneration?: number;
  reason?: string;
}

let grpcCaPem = '';
let image = '';

function ready(pod: Pod): boolean {
  return pod.status.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true && pod.metadata.deletionTimestamp === undefined;
}

async function pods(namespace: string, selector: string): Promise<Pod[]> {
  return (await kubectlJson<{ items: Pod[] }>(['-n', namespace, 'get', 'pods', '-l', selector])).items;
}

async function leaseHolder(): Promise<string> {
  const lease = await kubectlJson<{ spec: { holderIdentity?: string } }>(['-n', SYSTEM, 'get', 'lease', 'fhirmesh-controller']);
  return lease.spec.holderIdentity ?? '';
}

async function routeConditions(): Promise<{ generation: number; conditions: Condition[] }> {
  const route = await kubectlJson<{ metadata: { generation: number }; status?: { conditions?: Condition[] } }>(['-n', APPS, 'get', 'fhirroute', 'acme']);
  return { generation: route.metadata.generation, conditions: route.status?.conditions ?? [] };
}

async function serviceIp(namespace: string, name: string): Promise<string> {
  return (await kubectlJson<{ spec: { clusterIP: string } }>(['-n', namespace, 'get', 'service', name])).spec.clusterIP;
}

/** The destination pod answering directly: what the proxy must hand back unchanged. */
async function direct(pathname: string): Promise<Buffer> {
  const [destination] = await pods(APPS, 'app=acme-fhir');
  const answer = await httpRequest(`http://${destination?.status.podIP}:8080/fhir${pathname}`);
  expect(answer.status).toBe(200);
  return answer.body;
}

const peerVolume = { name: 'fhir-peer', configMap: { name: 'fhir-peer' } };
const peerMount = { name: 'fhir-peer', mountPath: '/e2e', readOnly: true };
const hardened = {
  runAsNonRoot: true,
  runAsUser: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};
function peerContainer(args: string[], port?: number): Record<string, unknown> {
  return {
    name: 'app',
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', '/e2e/fhir-peer.mts', ...args],
    securityContext: hardened,
    volumeMounts: [peerMount],
    ...(port === undefined ? {} : { ports: [{ name: 'http', containerPort: port }], readinessProbe: { tcpSocket: { port }, periodSeconds: 1 } }),
  };
}
function deployment(name: string, podLabels: Record<string, string>, container: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: APPS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name, ...podLabels } }, spec: { terminationGracePeriodSeconds: 5, containers: [container], volumes: [peerVolume] } },
    },
  };
}

beforeAll(async () => {
  const context = e2eContext();
  image = `${context.image.name}:${context.image.tag}`;
  // The controller's gRPC certificate, as cert-manager would write it: tls.crt, tls.key and ca.crt.
  const dir = path.join(context.dir, 'grpc-pki');
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'ca', 'fhirmesh-grpc-ca');
  makeLeaf(dir, 'controller', 'ca', `/CN=${CONTROLLER_HOST}`, `subjectAltName=DNS:${CONTROLLER_HOST}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  grpcCaPem = fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  await kubectl(['create', 'namespace', SYSTEM]);
  await kubectl([
    '-n', SYSTEM, 'create', 'secret', 'generic', 'fhirmesh-grpc-tls', '--type=kubernetes.io/tls',
    `--from-file=tls.crt=${path.join(dir, 'controller.crt')}`, `--from-file=tls.key=${path.join(dir, 'controller.key')}`, `--from-file=ca.crt=${path.join(dir, 'ca.crt')}`,
  ]);
});

describe('the install path on a real node', () => {
  test('1. helm install: the controller replicas run Ready as 65532, one holds the Lease', async () => {
    const out = await helm(['install', RELEASE, CHART, '-n', SYSTEM, ...INSTALL_VALUES(), '--wait', '--timeout', '5m']);
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain('kubectl label namespace <namespace> fhirmesh.io/inject=enabled');
    const controllers = await pods(SYSTEM, 'app.kubernetes.io/component=controller');
    expect(controllers).toHaveLength(2);
    expect(controllers.every(ready)).toBe(true);
    // The release namespace is never injected: the controller pods have no sidecar.
    expect(controllers.every((pod) => pod.spec.initContainers === undefined)).toBe(true);
    await expect.poll(leaseHolder, { timeout: 60_000, interval: 500 }).toSatisfy((holder: string) => controllers.some((pod) => pod.metadata.name === holder));
    // Each replica's proxy report is owned by its pod, so it cannot outlive it.
    const reports = await kubectlJson<{ items: { metadata: { ownerReferences?: { kind: string; name: string }[] } }[] }>(['-n', SYSTEM, 'get', 'configmaps', '-l', 'fhirmesh.io/proxy-report=true']);
    expect(reports.items.map((r) => r.metadata.ownerReferences?.map((o) => `${o.kind}/${o.name}`)).flat().sort()).toEqual(controllers.map((pod) => `Pod/${pod.metadata.name}`).sort());
  });

  test('2. a FhirRoute becomes Programmed (kubectl wait)', async () => {
    await kubectl(['create', 'namespace', APPS]);
    await kubectl(['label', 'namespace', APPS, 'fhirmesh.io/inject=enabled']);
    await kubectl(['-n', APPS, 'create', 'configmap', 'fhir-peer', `--from-file=fhir-peer.mts=${path.join(REPO_ROOT, 'test/e2e/workloads/fhir-peer.mts')}`]);
    // The destination opts out: it is the FHIR server, not an originator.
    await apply(
      deployment('acme-fhir', { 'fhirmesh.io/inject': 'disabled' }, peerContainer(['destination', '8080', 'acme'], 8080)),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'acme-fhir', namespace: APPS }, spec: { selector: { app: 'acme-fhir' }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] } },
      {
        apiVersion: 'fhirmesh.io/v1alpha1',
        kind: 'FhirRoute',
        metadata: { name: 'acme', namespace: APPS },
        spec: {
          destination: 'acme',
          addressing: { header: true, pathSegment: true, hosts: ['acme.fhir.test'] },
          backend: { service: { name: 'acme-fhir', port: 8080, path: '/fhir' } },
          // The apps' own proxies, and the gateway in the release namespace.
          exportTo: [APPS, SYSTEM],
        },
      },
    );
    await kubectl(['-n', APPS, 'rollout', 'status', 'deployment/acme-fhir', '--timeout=180s']);
    await kubectl(['-n', APPS, 'wait', '--for=condition=Programmed', 'fhirroute/acme', '--timeout=120s']);
    const [destination] = await pods(APPS, 'app=acme-fhir');
    expect(destination?.spec.initContainers).toBe(undefined);
  });

  test('3. an annotated Deployment gets the native sidecar; its FHIR traffic comes back byte for byte; an injected Job completes', async () => {
    await apply(deployment('claims-client', {}, peerContainer(['driver', '8081'], 8081)));
    await kubectl(['-n', APPS, 'rollout', 'status', 'deployment/claims-client', '--timeout=180s']);
    const [client] = (await pods(APPS, 'app=claims-client')).filter(ready);
    expect(client).toBeDefined();
    const pod = client!;
    expect(pod.metadata.labels?.['fhirmesh.io/injected']).toBe('true');
    const sidecar = pod.spec.initContainers?.[0];
    expect(sidecar).toMatchObject({ name: 'fhirmesh-proxy', image, restartPolicy: 'Always', command: ['fhirmesh-proxy'] });
    expect(sidecar?.args).toEqual([
      `--controller=${CONTROLLER_HOST}:15010`,
      `--controller-server-name=${CONTROLLER_HOST}`,
      '--token-file=/var/run/secrets/fhirmesh/token',
      '--state-dir=/var/lib/fhirmesh',
      '--listen=127.0.0.1:15001',
      '--admin-listen=0.0.0.0:15020',
      '--log-level=info',
    ]);
    expect(sidecar?.env?.find((e) => e.name === 'FHIRMESH_CONTROLLER_CA_PEM')?.value).toBe(grpcCaPem);
    expect(sidecar?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(pod.spec.volumes).toContainEqual({
      name: 'fhirmesh-token',
      projected: { defaultMode: 420, sources: [{ serviceAccountToken: { audience: 'fhirmesh', expirationSeconds: 3600, path: 'token' } }] },
    });
    expect(pod.spec.volumes).toContainEqual({ name: 'fhirmesh-state', emptyDir: { sizeLimit: '16Mi' } });
    expect(pod.spec.containers[0]?.env).toContainEqual({ name: 'FHIRMESH_PROXY_URL', value: 'http://127.0.0.1:15001' });
    expect(pod.status.initContainerStatuses?.[0]).toMatchObject({ name: 'fhirmesh-proxy', started: true, ready: true });

    const driver = `http://${pod.status.podIP}:8081`;
    const read = await postJson<{ status: number; headers: Record<string, string>; bodyBase64: string }>(`${driver}/request`, { path: '/Patient/123', headers: { 'X-Destination': 'acme' } });
    expect(read.status).toBe(200);
    expect(read.headers['x-seen-path']).toBe('/fhir/Patient/123');
    expect(Buffer.from(read.bodyBase64, 'base64').equals(await direct('/Patient/123'))).toBe(true);
    const echo = await postJson<{ status: number; bodyBase64: string }>(`${driver}/request`, {
      method: 'POST',
      path: '/Bundle',
      headers: { 'X-Destination': 'acme', 'Content-Type': 'application/fhir+json' },
      bodyBase64: ECHO_BODY.toString('base64'),
    });
    expect(echo.status).toBe(201);
    expect(Buffer.from(echo.bodyBase64, 'base64').equals(ECHO_BODY)).toBe(true);

    await apply({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'claims-batch', namespace: APPS },
      spec: {
        backoffLimit: 0,
        template: { metadata: { labels: { app: 'claims-batch' } }, spec: { restartPolicy: 'Never', containers: [peerContainer(['once', 'acme'])], volumes: [peerVolume] } },
      },
    });
    // The app container exits 0 only if its echo came back unchanged; the sidecar then stops too.
    await kubectl(['-n', APPS, 'wait', '--for=condition=complete', 'job/claims-batch', '--timeout=180s']);
    const [jobPod] = await pods(APPS, 'app=claims-batch');
    expect(jobPod?.spec.initContainers?.[0]?.name).toBe('fhirmesh-proxy');
    expect(await kubectl(['-n', APPS, 'logs', jobPod!.metadata.name, '-c', 'app'])).toContain('"same":true');
  });

  test('3b. only opted-in pods are sent to the webhook: a pod label in another namespace, never kube-system', async () => {
    const dryRun = async (namespace: string, labels: Record<string, string>): Promise<Pod> =>
      JSON.parse(
        await kubectl(
          ['create', '--dry-run=server', '-o', 'json', '-f', '-'],
          JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace, labels }, spec: { containers: [{ name: 'app', image }] } }),
        ),
      ) as Pod;
    await kubectl(['create', 'namespace', 'unlabelled']);
    expect((await dryRun('unlabelled', { 'fhirmesh.io/inject': 'enabled' })).spec.initContainers?.[0]?.name).toBe('fhirmesh-proxy');
    expect((await dryRun('unlabelled', {})).spec.initContainers).toBe(undefined);
    expect((await dryRun(APPS, { 'fhirmesh.io/inject': 'disabled' })).spec.initContainers).toBe(undefined);
    expect((await dryRun('kube-system', { 'fhirmesh.io/inject': 'enabled' })).spec.initContainers).toBe(undefined);
  });

  test('4. the gateway Service routes by X-Destination, by path segment and by Host', async () => {
    const gateway = `http://${await serviceIp(SYSTEM, 'fhirmesh-gateway')}`;
    const expected = await direct('/Patient/7');
    const byHeader = await httpRequest(`${gateway}/Patient/7`, { headers: { 'X-Destination': 'acme' } });
    const byPath = await httpRequest(`${gateway}/acme/Patient/7`);
    const byHost = await httpRequest(`${gateway}/Patient/7`, { headers: { Host: 'acme.fhir.test' } });
    for (const answer of [byHeader, byPath, byHost]) {
      expect(answer.status).toBe(200);
      expect(answer.headers['x-seen-path']).toBe('/fhir/Patient/7');
      expect(answer.body.equals(expected)).toBe(true);
    }
    const unknown = await httpRequest(`${gateway}/Patient/7`, { headers: { 'X-Destination': 'nobody' } });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body.toString('utf8'))).toMatchObject({ resourceType: 'OperationOutcome' });
  });

  test('5. the leader controller pod is deleted under steady traffic: nothing fails, the new leader writes status', async () => {
    const [client] = (await pods(APPS, 'app=claims-client')).filter(ready);
    const driver = `http://${client?.status.podIP}:8081`;
    await postJson(`${driver}/load/start`, { path: '/Patient/1', headers: { 'X-Destination': 'acme' }, intervalMs: 20 });
    // The same through the gateway, from here.
    const gateway = `http://${await serviceIp(SYSTEM, 'fhirmesh-gateway')}`;
    const gatewayLoad = { ok: 0, failed: [] as string[], running: true };
    const gatewayLoop = (async () => {
      while (gatewayLoad.running) {
        try {
          const answer = await httpRequest(`${gateway}/acme/Patient/1`);
          if (answer.status === 200) gatewayLoad.ok++;
          else gatewayLoad.failed.push(`status ${answer.status}: ${answer.body.toString('utf8').slice(0, 200)}`);
        } catch (err) {
          gatewayLoad.failed.push(String(err));
        }
        await sleep(20);
      }
    })();

    try {
      await sleep(2_000);
      const leader = await leaseHolder();
      await kubectl(['-n', SYSTEM, 'delete', 'pod', leader, '--wait=true']);
      await expect
        .poll(async () => {
          const holder = await leaseHolder();
          const controllers = await pods(SYSTEM, 'app.kubernetes.io/component=controller');
          return holder !== '' && holder !== leader && controllers.some((pod) => pod.metadata.name === holder && ready(pod));
        }, { timeout: 90_000, interval: 500 })
        .toBe(true);
      // Status is written by the new leader: a new generation becomes Programmed.
      await kubectl(['-n', APPS, 'patch', 'fhirroute', 'acme', '--type=merge', '-p', JSON.stringify({ spec: { addressing: { hosts: ['acme.fhir.test', 'acme2.fhir.test'] } } })]);
      await expect
        .poll(async () => {
          const { generation, conditions } = await routeConditions();
          const programmed = conditions.find((c) => c.type === 'Programmed');
          return generation >= 2 && programmed?.status === 'True' && programmed.observedGeneration === generation;
        }, { timeout: 90_000, interval: 500 })
        .toBe(true);
      await kubectl(['-n', SYSTEM, 'rollout', 'status', 'deployment/fhirmesh-controller', '--timeout=180s']);
      await sleep(2_000);
    } finally {
      gatewayLoad.running = false;
      await gatewayLoop;
    }
    const sidecarLoad = await postJson<{ ok: number; failed: number; failures: string[] }>(`${driver}/load/stop`, {});
    expect(sidecarLoad.failures).toEqual([]);
    expect(sidecarLoad.failed).toBe(0);
    expect(sidecarLoad.ok).toBeGreaterThan(100);
    expect(gatewayLoad.failed).toEqual([]);
    expect(gatewayLoad.ok).toBeGreaterThan(100);
  });

  test('6. helm upgrade with a changed value reaches new pods; helm uninstall leaves nothing that blocks a pod', async () => {
    const upgraded = await helm(['upgrade', RELEASE, CHART, '-n', SYSTEM, ...INSTALL_VALUES(), '--set', 'injector.proxy.logLevel=debug', '--wait', '--timeout', '5m']);
    expect(upgraded).toContain('STATUS: deployed');
    await kubectl(['-n', SYSTEM, 'rollout', 'status', 'deployment/fhirmesh-controller', '--timeout=180s']);
    // The webhook certificate survived the upgrade: same Secret, same caBundle.
    await kubectl(['-n', APPS, 'rollout', 'restart', 'deployment/claims-client']);
    await kubectl(['-n', APPS, 'rollout', 'status', 'deployment/claims-client', '--timeout=180s']);
    const [client] = (await pods(APPS, 'app=claims-client')).filter(ready);
    expect(client?.spec.initContainers?.[0]?.args).toContain('--log-level=debug');
    const read = await postJson<{ status: number }>(`http://${client?.status.podIP}:8081/request`, { path: '/Patient/9', headers: { 'X-Destination': 'acme' } });
    expect(read.status).toBe(200);

    await helm(['uninstall', RELEASE, '-n', SYSTEM, '--wait', '--timeout', '5m']);
    const webhooks = await kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'mutatingwebhookconfigurations']);
    expect(webhooks.items.map((w) => w.metadata.name)).toEqual([]);
    const leftovers = await kubectl(['get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name']);
    expect(leftovers.trim()).toBe('');
    // What stays: the user's own Secret and the namespace's built-ins. The replicas' proxy reports
    // go with their pods (owner references), once the garbage collector has seen the pods go.
    await expect
      .poll(async () => (await kubectl(['-n', SYSTEM, 'get', 'deployments,services,configmaps,secrets,serviceaccounts,poddisruptionbudgets,roles,rolebindings', '-o', 'name'])).trim().split('\n').sort(), {
        timeout: 60_000,
        interval: 1_000,
      })
      .toEqual(['configmap/kube-root-ca.crt', 'secret/fhirmesh-grpc-tls', 'serviceaccount/default']);
    // The controller's Lease is the one object of its own that stays (docs/install.md says so).
    expect((await kubectl(['-n', SYSTEM, 'get', 'leases', '-o', 'name'])).trim()).toBe('lease.coordination.k8s.io/fhirmesh-controller');
    // Pods in the opted-in namespace are created again, now without a proxy.
    await kubectl(['-n', APPS, 'rollout', 'restart', 'deployment/claims-client']);
    await kubectl(['-n', APPS, 'rollout', 'status', 'deployment/claims-client', '--timeout=180s']);
    const [plain] = (await pods(APPS, 'app=claims-client')).filter(ready);
    expect(plain?.spec.initContainers).toBe(undefined);
  });
});
