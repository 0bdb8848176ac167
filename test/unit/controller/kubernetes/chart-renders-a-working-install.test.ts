// Pins what charts/fhirmesh renders for the install path: commands the image has, numeric users,
// the injector's config the controller accepts, webhook selectors that never reach kube-system or
// the release namespace, a gateway whose args the proxy accepts, monitors only when asked, and a
// values schema that refuses typos. Skipped without a helm binary (FHIRMESH_HELM or PATH).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { checkInjectionConfig } from '../../../../controller/src/injector/index.ts';
import { parseControllerFlags } from '../../../../controller/src/index.ts';
import { parseProxyFlags } from '../../../../proxy/src/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../../..');
const CHART = path.join(ROOT, 'charts/fhirmesh');
const helm = [process.env['FHIRMESH_HELM'], ...(process.env['PATH'] ?? '').split(':').map((dir) => path.join(dir, 'helm'))].find(
  (file): file is string => file !== undefined && file !== '' && fs.existsSync(file),
);
const TLS = 'grpc.tls.secretName=fhirmesh-grpc-tls';
const IMAGE_LAUNCHERS = fs.readdirSync(path.join(ROOT, 'image/rootfs/usr/local/bin'));

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- rendered manifests, read by path

function helmRun(args: string[]): string {
  return execFileSync(helm as string, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function render(...set: string[]): Doc[] {
  const text = helmRun(['template', 'r1', CHART, '-n', 'fhirmesh-system', '--kube-version', '1.37.1', ...set.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Doc | null)
    .filter((doc): doc is Doc => doc !== null);
}

function find(docs: Doc[], kind: string, name: string): Doc {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (doc === undefined) throw new Error(`no ${kind}/${name} rendered`);
  return doc;
}

function refusal(...set: string[]): string {
  try {
    render(...set);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`helm rendered with ${set.join(' ')}`);
}

describe.skipIf(helm === undefined)('charts/fhirmesh install path', () => {
  it('passes helm lint --strict', () => {
    expect(helmRun(['lint', '--strict', CHART, '--kube-version', '1.37.1', '--set', TLS])).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('runs programs the image has, as the image user 65532, with the hardened context', () => {
    const docs = render(TLS, 'gateway.enabled=true');
    for (const name of ['r1-fhirmesh-controller', 'r1-fhirmesh-gateway']) {
      const pod = find(docs, 'Deployment', name).spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 });
      for (const container of pod.containers) {
        expect(IMAGE_LAUNCHERS).toContain(container.command[0]);
        expect(container.securityContext).toEqual({
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
      }
    }
  });

  it('serves the webhook from the controller with a config it accepts, rolling the replicas when that config changes', () => {
    const docs = render(TLS);
    const config = checkInjectionConfig(JSON.parse(find(docs, 'ConfigMap', 'r1-fhirmesh-injector').data['config.json']), 'rendered');
    expect(config).toEqual({
      image: 'ghcr.io/fhirmesh/fhirmesh:0.1.0',
      imagePullPolicy: 'IfNotPresent',
      controllerAddress: 'r1-fhirmesh-controller.fhirmesh-system.svc:15010',
      controllerTls: { serverName: 'r1-fhirmesh-controller.fhirmesh-system.svc', caFile: '/etc/fhirmesh/grpc-tls/ca.crt' },
      defaults: { proxyPort: 15001, adminPort: 15020, logLevel: 'info', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } } },
      tokenExpirationSeconds: 3600,
    });
    const pod = find(docs, 'Deployment', 'r1-fhirmesh-controller').spec.template;
    const flags = parseControllerFlags(pod.spec.containers[0].args, { KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(flags).toMatchObject({
      injector: { listen: { host: '0.0.0.0', port: 9443 }, tlsCertFile: '/etc/fhirmesh/injector-tls/tls.crt', configFile: '/etc/fhirmesh/injector/config.json' },
    });
    const changed = find(render(TLS, 'injector.proxy.logLevel=debug'), 'Deployment', 'r1-fhirmesh-controller').spec.template;
    expect(changed.metadata.annotations['checksum/injector-config']).not.toBe(pod.metadata.annotations['checksum/injector-config']);
  });

  it('sends only opted-in pods to the webhook, never kube-system or the release namespace, over the Service with the chart CA', () => {
    const docs = render(TLS, 'injector.excludedNamespaces={legacy}');
    const webhook = find(docs, 'MutatingWebhookConfiguration', 'r1-fhirmesh-injector');
    const secret = find(docs, 'Secret', 'r1-fhirmesh-injector-tls');
    expect(webhook.webhooks.map((w: Doc) => [w.name, w.failurePolicy, w.namespaceSelector.matchExpressions, w.objectSelector.matchExpressions])).toEqual([
      [
        'namespace.inject.fhirmesh.io',
        'Fail',
        [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'fhirmesh-system', 'legacy'] },
          { key: 'fhirmesh.io/inject', operator: 'In', values: ['enabled'] },
        ],
        [{ key: 'fhirmesh.io/inject', operator: 'NotIn', values: ['disabled'] }],
      ],
      [
        'pod.inject.fhirmesh.io',
        'Fail',
        [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'fhirmesh-system', 'legacy'] },
          { key: 'fhirmesh.io/inject', operator: 'NotIn', values: ['enabled', 'disabled'] },
        ],
        [{ key: 'fhirmesh.io/inject', operator: 'In', values: ['enabled'] }],
      ],
    ]);
    for (const w of webhook.webhooks) {
      expect(w.clientConfig).toEqual({ service: { name: 'r1-fhirmesh-controller', namespace: 'fhirmesh-system', path: '/inject', port: 443 }, caBundle: secret.data['ca.crt'] });
      expect(w.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    }
    const certificate = Buffer.from(secret.data['tls.crt'], 'base64').toString('utf8');
    expect(certificate).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('takes the webhook certificate from cert-manager when asked: a Certificate, no Secret, the CA injected', () => {
    expect(refusal(TLS, 'injector.tls.mode=certManager')).toContain('injector.tls.certManager.issuerRef.name is required');
    const docs = render(TLS, 'injector.tls.mode=certManager', 'injector.tls.certManager.issuerRef.name=internal-ca', 'injector.tls.certManager.issuerRef.kind=ClusterIssuer');
    expect(find(docs, 'Certificate', 'r1-fhirmesh-injector').spec).toEqual({
      secretName: 'r1-fhirmesh-injector-tls',
      dnsNames: ['r1-fhirmesh-controller', 'r1-fhirmesh-controller.fhirmesh-system', 'r1-fhirmesh-controller.fhirmesh-system.svc'],
      issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
    expect(docs.filter((d) => d.kind === 'Secret')).toEqual([]);
    const webhook = find(docs, 'MutatingWebhookConfiguration', 'r1-fhirmesh-injector');
    expect(webhook.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': 'fhirmesh-system/r1-fhirmesh-injector' });
    expect(webhook.webhooks[0].clientConfig.caBundle).toBe(undefined);
  });

  it('renders the gateway (Deployment, Service, PDB) with args the proxy accepts and only ca.crt of the controller Secret', () => {
    const docs = render(TLS, 'gateway.enabled=true', 'gateway.replicas=3');
    const gateway = find(docs, 'Deployment', 'r1-fhirmesh-gateway');
    expect(gateway.spec.replicas).toBe(3);
    const container = gateway.spec.template.spec.containers[0];
    // The CA file the kubelet would mount, at a path of this machine.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-chart-'));
    fs.writeFileSync(path.join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const args = container.args.map((a: string) => a.replace('/etc/fhirmesh/controller-ca/', `${dir}/`));
    const flags = parseProxyFlags(args, { POD_NAME: 'r1-fhirmesh-gateway-abc', POD_NAMESPACE: 'fhirmesh-system' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(flags).toMatchObject({
      controller: {
        address: 'r1-fhirmesh-controller.fhirmesh-system.svc:15010',
        identity: { nodeId: 'r1-fhirmesh-gateway-abc', namespace: 'fhirmesh-system' },
        stateDir: '/var/lib/fhirmesh',
        tokenFile: '/var/run/secrets/fhirmesh/token',
        tls: { serverName: 'r1-fhirmesh-controller.fhirmesh-system.svc' },
      },
      listen: { host: '0.0.0.0', port: 8080 },
      adminListen: { host: '0.0.0.0', port: 9901 },
    });
    expect(gateway.spec.template.spec.volumes).toContainEqual({ name: 'controller-ca', secret: { secretName: 'fhirmesh-grpc-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    expect(find(docs, 'Service', 'r1-fhirmesh-gateway').spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'metrics', port: 9901, targetPort: 'admin', protocol: 'TCP' },
    ]);
    expect(find(docs, 'PodDisruptionBudget', 'r1-fhirmesh-gateway').spec.minAvailable).toBe(1);
    expect(render(TLS).filter((d) => d.metadata.name === 'r1-fhirmesh-gateway')).toEqual([]);
  });

  it('serves the gateway listener over TLS from a kubernetes.io/tls Secret when asked, with flags the proxy accepts', () => {
    const docs = render(TLS, 'gateway.enabled=true', 'gateway.tls.secretName=acme-public-tls');
    const spec = find(docs, 'Deployment', 'r1-fhirmesh-gateway').spec.template.spec;
    const container = spec.containers[0];
    expect(container.args).toEqual(expect.arrayContaining(['--tls-cert=/etc/fhirmesh/listener-tls/tls.crt', '--tls-key=/etc/fhirmesh/listener-tls/tls.key']));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirmesh-chart-'));
    fs.writeFileSync(path.join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const args = container.args.map((a: string) => a.replace('/etc/fhirmesh/controller-ca/', `${dir}/`));
    const flags = parseProxyFlags(args, { POD_NAME: 'r1-fhirmesh-gateway-abc', POD_NAMESPACE: 'fhirmesh-system' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(flags).toMatchObject({ listenTls: { certFile: '/etc/fhirmesh/listener-tls/tls.crt', keyFile: '/etc/fhirmesh/listener-tls/tls.key' } });
    expect(container.volumeMounts).toContainEqual({ name: 'listener-tls', mountPath: '/etc/fhirmesh/listener-tls', readOnly: true });
    expect(spec.volumes).toContainEqual({
      name: 'listener-tls',
      secret: { secretName: 'acme-public-tls', items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] },
    });
    expect(find(docs, 'Service', 'r1-fhirmesh-gateway').spec.ports[0]).toEqual({ name: 'https', port: 80, targetPort: 'https', protocol: 'TCP' });
  });

  it('renders the ServiceMonitor and PodMonitor only when asked', () => {
    expect(render(TLS).filter((d) => String(d.apiVersion).startsWith('monitoring.coreos.com'))).toEqual([]);
    const docs = render(TLS, 'monitoring.serviceMonitor.enabled=true', 'monitoring.podMonitor.enabled=true', 'monitoring.podMonitor.labels.release=prom');
    expect(find(docs, 'ServiceMonitor', 'r1-fhirmesh').spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    const podMonitor = find(docs, 'PodMonitor', 'r1-fhirmesh-sidecars');
    expect(podMonitor.metadata.labels.release).toBe('prom');
    expect(podMonitor.spec).toEqual({
      selector: { matchLabels: { 'fhirmesh.io/injected': 'true' } },
      namespaceSelector: { any: true },
      podMetricsEndpoints: [{ port: 'fhirmesh-admin', path: '/metrics', interval: '30s' }],
    });
  });

  it('lets the built-in edit and view roles manage and read FhirRoutes, and nothing else', () => {
    const docs = render(TLS);
    const edit = find(docs, 'ClusterRole', 'r1-fhirmesh-fhirroutes-edit');
    expect(edit.metadata.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' });
    expect(edit.rules).toEqual([
      { apiGroups: ['fhirmesh.io'], resources: ['fhirroutes'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] },
      { apiGroups: ['fhirmesh.io'], resources: ['fhirroutes/status'], verbs: ['get', 'list', 'watch'] },
    ]);
    const view = find(docs, 'ClusterRole', 'r1-fhirmesh-fhirroutes-view');
    expect(view.metadata.labels['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
    expect(view.rules).toEqual([{ apiGroups: ['fhirmesh.io'], resources: ['fhirroutes', 'fhirroutes/status'], verbs: ['get', 'list', 'watch'] }]);
  });

  it.each([
    [['controller.replcas=3'], "at '/controller': additional properties 'replcas' not allowed"],
    [['controller.replicas=two'], "at '/controller/replicas': got string, want integer"],
    [['injector.failurePolicy=Sometimes'], "at '/injector/failurePolicy'"],
    [['injector.proxy.resources.limits.memory=lots'], "at '/injector/proxy/resources/limits/memory'"],
    [['gateway.service.port=0'], "at '/gateway/service/port'"],
    [['controller.leaderElection.leaseDuration=15'], "at '/controller/leaderElection/leaseDuration'"],
  ])('refuses %j by the values schema', (set, message) => {
    expect(refusal(TLS, ...set)).toContain(message);
  });
});
