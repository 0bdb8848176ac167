// Pins charts/fhirmesh: its CRD is byte for byte crds/'s, its RBAC grants exactly the verbs the
// controller uses, and (when a helm binary is at hand) what it renders, TLS included, parses as flags.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseControllerFlags } from '../../../../controller/src/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const CHART = path.join(ROOT, 'charts/fhirmesh');

/** helm from FHIRMESH_HELM or PATH; undefined when there is none (the render tests are then skipped). */
function findHelm(): string | undefined {
  const candidates = [process.env['FHIRMESH_HELM'], ...(process.env['PATH'] ?? '').split(':').map((dir) => path.join(dir, 'helm'))];
  return candidates.find((file): file is string => file !== undefined && file !== '' && fs.existsSync(file));
}
const helm = findHelm();
const TLS_SECRET = 'grpc.tls.secretName=fhirmesh-grpc-tls';

function render(...set: string[]): Record<string, unknown>[] {
  const text = execFileSync(helm as string, ['template', 'r1', CHART, '-n', 'fhirmesh-system', '--kube-version', '1.37.1', ...set.flatMap((s) => ['--set', s])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Record<string, unknown> | null)
    .filter((doc): doc is Record<string, unknown> => doc !== null);
}

describe('charts/fhirmesh', () => {
  it('ships the CRD of crds/ unchanged', () => {
    const source = fs.readFileSync(path.join(ROOT, 'crds/fhirroutes.fhirmesh.io.yaml'), 'utf8');
    const shipped = fs.readFileSync(path.join(CHART, 'crds/fhirroutes.fhirmesh.io.yaml'), 'utf8');
    // Helm installs crds/ as is; a drifted copy would install another schema than the one tested.
    expect(shipped === source, 'charts/fhirmesh/crds/fhirroutes.fhirmesh.io.yaml differs from crds/: copy it again').toBe(true);
  });

  it('grants exactly the verbs the controller uses in the watched namespaces', () => {
    expect(parseYaml(fs.readFileSync(path.join(CHART, 'files/rbac/watch-rules.yaml'), 'utf8'))).toEqual([
      { apiGroups: ['fhirmesh.io'], resources: ['fhirroutes'], verbs: ['list', 'watch'] },
      { apiGroups: ['fhirmesh.io'], resources: ['fhirroutes/status'], verbs: ['patch'] },
      { apiGroups: [''], resources: ['services', 'secrets'], verbs: ['list', 'watch'] },
    ]);
  });

  it('grants Lease and proxy-report ConfigMap verbs in its own namespace only', () => {
    expect(parseYaml(fs.readFileSync(path.join(CHART, 'files/rbac/release-namespace-rules.yaml'), 'utf8'))).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
    ]);
  });

  it('grants create on TokenReviews (cluster-scoped) to check proxy tokens, nothing more', () => {
    expect(parseYaml(fs.readFileSync(path.join(CHART, 'files/rbac/token-review-rules.yaml'), 'utf8'))).toEqual([
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
  });

  it('takes its RBAC rules from those files, not from a second copy in a template', () => {
    const rbac = fs.readFileSync(path.join(CHART, 'templates/rbac.yaml'), 'utf8');
    expect(rbac).toContain('.Files.Get "files/rbac/watch-rules.yaml"');
    expect(rbac).toContain('.Files.Get "files/rbac/release-namespace-rules.yaml"');
    expect(rbac).toContain('.Files.Get "files/rbac/token-review-rules.yaml"');
    expect(rbac).not.toMatch(/verbs:/);
    expect(fs.readdirSync(path.join(CHART, 'files/rbac')).sort()).toEqual(['release-namespace-rules.yaml', 'token-review-rules.yaml', 'watch-rules.yaml']);
  });

  it.skipIf(helm === undefined)('renders 2 replicas with leader election, whose args parse as controller flags', () => {
    const docs = render(TLS_SECRET);
    const kinds = docs.map((doc) => `${String(doc['kind'])}/${String((doc['metadata'] as { name: string }).name)}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/r1-fhirmesh-controller',
      'ClusterRole/r1-fhirmesh-controller-token-review',
      'ClusterRole/r1-fhirmesh-fhirroutes-edit',
      'ClusterRole/r1-fhirmesh-fhirroutes-view',
      'ClusterRoleBinding/r1-fhirmesh-controller',
      'ClusterRoleBinding/r1-fhirmesh-controller-token-review',
      'ConfigMap/r1-fhirmesh-injector',
      'Deployment/r1-fhirmesh-controller',
      'MutatingWebhookConfiguration/r1-fhirmesh-injector',
      'PodDisruptionBudget/r1-fhirmesh-controller',
      'Role/r1-fhirmesh-controller-replicas',
      'RoleBinding/r1-fhirmesh-controller-replicas',
      'Secret/r1-fhirmesh-injector-tls',
      'Service/r1-fhirmesh-controller',
      'ServiceAccount/r1-fhirmesh-controller',
    ]);
    const deployment = docs.find((doc) => doc['kind'] === 'Deployment') as { spec: { replicas: number; template: { spec: { containers: { args: string[] }[] } } } };
    expect(deployment.spec.replicas).toBe(2);
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    const config = parseControllerFlags(args, { KUBERNETES_SERVICE_HOST: '10.0.0.1', POD_NAME: 'r1-fhirmesh-controller-abc', POD_NAMESPACE: 'fhirmesh-system' });
    expect(config).toMatchObject({
      source: {
        kind: 'kubernetes',
        replicaId: 'r1-fhirmesh-controller-abc',
        leaderElection: { leaseName: 'fhirmesh-controller', leaseNamespace: 'fhirmesh-system', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      },
      grpcListen: { host: '0.0.0.0', port: 15010 },
      grpcTls: { certFile: '/etc/fhirmesh/grpc-tls/tls.crt', keyFile: '/etc/fhirmesh/grpc-tls/tls.key' },
      adminListen: { host: '0.0.0.0', port: 9902 },
    });
  });

  it.skipIf(helm === undefined)('mounts the gRPC certificate Secret where --grpc-tls-cert/--grpc-tls-key read it', () => {
    const deployment = render(TLS_SECRET).find((doc) => doc['kind'] === 'Deployment') as {
      spec: { template: { spec: { volumes: { name: string; secret?: { secretName: string } }[]; containers: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[] } } };
    };
    const pod = deployment.spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'grpc-tls', secret: { secretName: 'fhirmesh-grpc-tls' } });
    expect(pod.containers[0]?.volumeMounts).toContainEqual({ name: 'grpc-tls', mountPath: '/etc/fhirmesh/grpc-tls', readOnly: true });
  });

  it.skipIf(helm === undefined)('refuses to render without grpc.tls.secretName, and serves plaintext only with grpc.insecure', () => {
    expect(() => render()).toThrow(/grpc\.tls\.secretName is required/);
    const deployment = render('grpc.insecure=true').find((doc) => doc['kind'] === 'Deployment') as { spec: { template: { spec: { volumes?: unknown; containers: { args: string[] }[] } } } };
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    expect(args).toContain('--insecure-grpc');
    expect(deployment.spec.template.spec.volumes).not.toContainEqual(expect.objectContaining({ name: 'grpc-tls' }));
    expect(parseControllerFlags(args, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ insecureGrpc: true });
  });

  it.skipIf(helm === undefined)('narrows to a Role in controller.watchNamespace and drops the Lease rules for one replica', () => {
    const docs = render(TLS_SECRET, 'controller.watchNamespace=payers', 'controller.replicas=1', 'controller.leaderElection.enabled=false');
    const roles = docs.filter((doc) => (String(doc['kind']).startsWith('Role') || String(doc['kind']).startsWith('Cluster')) && !(doc['metadata'] as { name: string }).name.includes('fhirroutes'));
    // TokenReview is cluster-scoped: its ClusterRole stays whatever the watched namespace.
    expect(roles.map((doc) => [doc['kind'], (doc['metadata'] as { name: string }).name, (doc['metadata'] as { namespace?: string }).namespace])).toEqual([
      ['ClusterRole', 'r1-fhirmesh-controller-token-review', undefined],
      ['ClusterRoleBinding', 'r1-fhirmesh-controller-token-review', undefined],
      ['Role', 'r1-fhirmesh-controller', 'payers'],
      ['RoleBinding', 'r1-fhirmesh-controller', 'payers'],
    ]);
    const deployment = docs.find((doc) => doc['kind'] === 'Deployment') as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const args = deployment.spec.template.spec.containers[0]?.args ?? [];
    expect(parseControllerFlags(args, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ namespace: 'payers', source: { kind: 'kubernetes' } });
    expect(args).not.toContain('--leader-elect');
  });
});
