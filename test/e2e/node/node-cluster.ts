// A single-node Kubernetes cluster from binaries built here, inside the network namespace test/e2e/run.sh
// made: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd + runc, the kubelet
// (bridge CNI), kube-proxy (iptables) and CoreDNS (no forwarder). Every file lives in the run dir;
// stop() tears it down in the order that leaves no container, shim or mount behind.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { locateBinaries } from '../../cluster/binaries.ts';
import { KubeHttp, type KubeConnection } from '../../cluster/kube-http.ts';
import { writeKubeconfig } from '../../cluster/kubeconfig.ts';
import { ManagedProcess } from '../../cluster/managed-process.ts';
import { makeClusterPki } from './pki.ts';

export const NODE_NAME = 'fhirmesh-e2e';
export const NODE_IP = '10.77.0.2';
const SERVICE_CIDR = '10.96.0.0/24';
const SERVICE_IP = '10.96.0.1';
const POD_SUBNET = '10.244.0.0/24';
const CLUSTER_CIDR = '10.244.0.0/16';
const SANDBOX_IMAGE = 'fhirmesh.local/e2e/pause:1';

export interface NodeCluster {
  dir: string;
  /** Admin kubeconfig (system:masters) for kubectl and helm. */
  kubeconfig: string;
  connection: KubeConnection;
  kube: KubeHttp;
  kubectlBinary: string;
  logsDir: string;
  /** Seconds each phase of the start took, for the report. */
  timings: Record<string, number>;
  stop(): Promise<void>;
}

interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubectl: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubelet: string;
  kubeProxy: string;
  coredns: string;
  crictl: string;
  pauseImage: string;
}

function nodeBinaries(): Binaries {
  const plane = locateBinaries();
  const nodeBin = process.env['FHIRMESH_NODE_BIN'];
  if (nodeBin === undefined || nodeBin === '') throw new Error('FHIRMESH_NODE_BIN is not set: run the suite with npm run test:e2e (test/e2e/run.sh)');
  const bin = (name: string): string => {
    const file = path.join(nodeBin, name);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run bash test/e2e/build/build-node.sh`);
    return file;
  };
  return {
    etcd: plane.etcd,
    kubeApiserver: plane.kubeApiserver,
    kubectl: path.join(path.dirname(plane.kubeApiserver), 'kubectl'),
    kubeControllerManager: bin('kube-controller-manager'),
    kubeScheduler: bin('kube-scheduler'),
    kubelet: bin('kubelet'),
    kubeProxy: bin('kube-proxy'),
    coredns: bin('coredns'),
    crictl: bin('crictl'),
    pauseImage: bin('pause-image.tar'),
  };
}

/** Polls `check` until it is true; fails early, with the log's tail, when `process` has exited. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean, processes: ManagedProcess[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    for (const p of processes) {
      if (p.exitStatus !== undefined) throw new Error(`waiting for ${what}: ${p.describeState()}; its log ends:\n${p.tail(30)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const tails = processes.map((p) => `--- ${p.name} (${p.logPath}):\n${p.tail(20)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${tails}`);
    }
    await sleep(250);
  }
}

function yaml(value: unknown): string {
  // JSON is YAML: the component configs are written as JSON text.
  return JSON.stringify(value, null, 2) + '\n';
}

export async function startNodeCluster(): Promise<NodeCluster> {
  const dir = process.env['FHIRMESH_E2E_DIR'];
  if (dir === undefined || !fs.existsSync(dir)) throw new Error('FHIRMESH_E2E_DIR is not set: run the suite with npm run test:e2e (test/e2e/run.sh)');
  // os.networkInterfaces() asks the kernel about this process's own network namespace (/sys does not).
  if (os.networkInterfaces()['fm-node'] === undefined) throw new Error('not inside the suite\'s network namespace (no fm-node interface): run it with npm run test:e2e');
  const bins = nodeBinaries();
  const timings: Record<string, number> = {};
  let phaseStart = performance.now();
  const phase = (name: string): void => {
    timings[name] = Math.round((performance.now() - phaseStart) / 100) / 10;
    phaseStart = performance.now();
  };

  const logsDir = path.join(dir, 'logs');
  const d = (...parts: string[]): string => path.join(dir, ...parts);
  for (const sub of ['logs', 'etcd', 'kubelet', 'kubelet-pki', 'pod-logs', 'manifests', 'volume-plugins', 'containerd', 'cni/net.d', 'cni/ipam', 'coredns']) {
    fs.mkdirSync(d(sub), { recursive: true });
  }
  const pki = makeClusterPki(d('pki'), NODE_IP, SERVICE_IP);
  const adminToken = crypto.randomBytes(24).toString('hex');
  const nodeToken = crypto.randomBytes(24).toString('hex');
  // Static tokens: the admin (system:masters) for the test and the infrastructure processes, and the
  // kubelet as system:node:<name> in system:nodes, so the Node authorizer and NodeRestriction apply.
  fs.writeFileSync(d('tokens.csv'), `${adminToken},admin,admin,"system:masters"\n${nodeToken},system:node:${NODE_NAME},node,"system:nodes"\n`, { mode: 0o600 });
  const apiUrl = `https://${NODE_IP}:6443`;
  const kubeconfig = d('admin.kubeconfig');
  writeKubeconfig(kubeconfig, { url: apiUrl, caPem: pki.caPem, token: adminToken, name: 'fhirmesh-e2e' });
  const nodeKubeconfig = d('kubelet.kubeconfig');
  writeKubeconfig(nodeKubeconfig, { url: apiUrl, caPem: pki.caPem, token: nodeToken, name: 'fhirmesh-e2e-node' });
  const connection: KubeConnection = { url: apiUrl, caPem: pki.caPem, token: adminToken };
  const kube = new KubeHttp(connection);

  const processes: ManagedProcess[] = [];
  const start = (name: string, binary: string, args: string[]): ManagedProcess => {
    const p = ManagedProcess.start(name, binary, args, path.join(logsDir, `${name}.log`));
    processes.push(p);
    return p;
  };
  const byName = (name: string): ManagedProcess | undefined => processes.find((p) => p.name === name);

  const stop = async (): Promise<void> => {
    // The kubelet first, so it restarts nothing; then every pod through the CRI (containers, shims,
    // network); then the rest, the store last.
    await byName('kubelet')?.stop('SIGTERM', 15_000);
    const containerd = byName('containerd');
    if (containerd !== undefined && containerd.exitStatus === undefined) {
      try {
        execFileSync(bins.crictl, ['--runtime-endpoint', `unix://${d('containerd/containerd.sock')}`, '--timeout', '30s', 'rmp', '--all', '--force'], { stdio: 'pipe' });
      } catch (err) {
        fs.appendFileSync(path.join(logsDir, 'teardown.log'), `crictl rmp failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}\n`);
      }
    }
    for (const name of ['kube-proxy', 'coredns', 'kube-scheduler', 'kube-controller-manager', 'containerd', 'kube-apiserver', 'etcd']) {
      await byName(name)?.stop('SIGTERM', 15_000);
    }
    await kube.close();
  };

  try {
    // etcd and kube-apiserver.
    start('etcd', bins.etcd, [
      '--name=fhirmesh-e2e',
      `--data-dir=${d('etcd')}`,
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2380',
      '--initial-advertise-peer-urls=http://127.0.0.1:2380',
      '--initial-cluster=fhirmesh-e2e=http://127.0.0.1:2380',
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    const apiserver = start('kube-apiserver', bins.kubeApiserver, [
      '--etcd-servers=http://127.0.0.1:2379',
      `--advertise-address=${NODE_IP}`,
      '--bind-address=0.0.0.0',
      '--secure-port=6443',
      `--tls-cert-file=${pki.apiserverCert}`,
      `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${d('tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${pki.serviceAccountPrivateKey}`,
      `--kubelet-client-certificate=${pki.kubeletClientCert}`,
      `--kubelet-client-key=${pki.kubeletClientKey}`,
      '--kubelet-preferred-address-types=InternalIP',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    await waitFor('kube-apiserver /readyz', 90_000, async () => (await kube.request('GET', '/readyz')).status === 200, [apiserver, byName('etcd')!]);
    phase('etcd+apiserver');

    const controllerManager = start('kube-controller-manager', bins.kubeControllerManager, [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountPrivateKey}`,
      `--root-ca-file=${pki.caCert}`,
      `--cluster-signing-cert-file=${pki.caCert}`,
      `--cluster-signing-key-file=${pki.caKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--controllers=*,-nodeipam',
    ]);
    const scheduler = start('kube-scheduler', bins.kubeScheduler, [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
    ]);

    // containerd: root, state and sockets in the run dir; CRI with the local pause image and bridge CNI.
    const socket = d('containerd/containerd.sock');
    fs.writeFileSync(
      d('containerd/config.toml'),
      `version = 2
root = "${d('containerd/root')}"
state = "${d('containerd/state')}"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = "${socket}.debug"
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  # The sandbox lacks CAP_SYS_RESOURCE: lowering oom_score_adj would fail and runc with it.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${d('cni/net.d')}"
`,
    );
    fs.writeFileSync(
      d('cni/net.d/10-fhirmesh-e2e.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: 'fhirmesh-e2e',
          plugins: [
            {
              type: 'bridge',
              bridge: 'cni0',
              isGateway: true,
              // No masquerade: nothing leaves the namespace anyway, and pod IPs stay visible to peers.
              ipMasq: false,
              hairpinMode: true,
              ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET, gateway: '10.244.0.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: d('cni/ipam') },
            },
          ],
        },
        null,
        2,
      ),
    );
    const containerd = start('containerd', 'containerd', ['--config', d('containerd/config.toml')]);
    await waitFor('containerd to listen', 30_000, () => fs.existsSync(socket), [containerd]);
    const ctr = (...args: string[]): string => execFileSync('ctr', ['--address', socket, '-n', 'k8s.io', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor('containerd to answer', 30_000, () => (ctr('version'), true), [containerd]);
    ctr('images', 'import', bins.pauseImage);
    const imageArchive = process.env['FHIRMESH_IMAGE_ARCHIVE'];
    if (imageArchive === undefined) throw new Error('FHIRMESH_IMAGE_ARCHIVE is not set: run the suite with npm run test:e2e');
    ctr('images', 'import', imageArchive);
    phase('containerd+images');

    // The kubelet, registered with the apiserver as system:node:fhirmesh-e2e.
    fs.writeFileSync(d('resolv.conf'), '# no upstream resolver: cluster DNS answers cluster names only\n');
    fs.writeFileSync(
      d('kubelet-config.yaml'),
      yaml({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        // The machine's cgroups are v1 with no systemd; 1.37 still runs there when told to.
        failCgroupV1: false,
        cgroupDriver: 'cgroupfs',
        failSwapOn: false,
        // The default -999 cannot be set in this sandbox.
        oomScoreAdj: 0,
        containerRuntimeEndpoint: `unix://${socket}`,
        staticPodPath: d('manifests'),
        podLogsDir: d('pod-logs'),
        volumePluginDir: d('volume-plugins'),
        readOnlyPort: 0,
        authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.caCert } },
        authorization: { mode: 'Webhook' },
        clusterDNS: [NODE_IP],
        clusterDomain: 'cluster.local',
        resolvConf: d('resolv.conf'),
        healthzBindAddress: '127.0.0.1',
        serializeImagePulls: false,
        // Shared build machines: evict for nothing but a machine truly out of memory or disk.
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        maxPods: 40,
        // Pods of a test run come and go quickly.
        syncFrequency: '10s',
        fileCheckFrequency: '10s',
      }),
    );
    const kubelet = start('kubelet', bins.kubelet, [
      `--config=${d('kubelet-config.yaml')}`,
      `--kubeconfig=${nodeKubeconfig}`,
      `--root-dir=${d('kubelet')}`,
      `--cert-dir=${d('kubelet-pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
      '--v=1',
    ]);
    await waitFor(
      `node ${NODE_NAME} to be Ready`,
      120_000,
      async () => {
        const node = await kube.json<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', `/api/v1/nodes/${NODE_NAME}`);
        return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      },
      [kubelet, containerd, apiserver],
    );
    phase('kubelet ready');

    fs.writeFileSync(
      d('kube-proxy-config.yaml'),
      yaml({
        apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
        kind: 'KubeProxyConfiguration',
        clientConnection: { kubeconfig },
        mode: 'iptables',
        clusterCIDR: CLUSTER_CIDR,
        hostnameOverride: NODE_NAME,
        bindAddress: NODE_IP,
        healthzBindAddress: '127.0.0.1:10256',
        metricsBindAddress: '127.0.0.1:10249',
        // conntrack limits are the machine's: do not touch them.
        conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      }),
    );
    const kubeProxy = start('kube-proxy', bins.kubeProxy, [`--config=${d('kube-proxy-config.yaml')}`]);

    // CoreDNS on the node IP: cluster names only, no forward plugin compiled in.
    fs.writeFileSync(
      d('coredns/Corefile'),
      `.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} fhirmesh-e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`,
    );
    const coredns = start('coredns', bins.coredns, ['-conf', d('coredns/Corefile'), '-dns.port', '53']);

    // Ready for workloads: the default ServiceAccount and kube-root-ca.crt exist (the controller
    // manager makes them), Services have endpoints (kube-proxy has synced), DNS answers.
    await waitFor(
      'the default ServiceAccount and kube-root-ca.crt',
      60_000,
      async () =>
        (await kube.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200 &&
        (await kube.request('GET', '/api/v1/namespaces/default/configmaps/kube-root-ca.crt')).status === 200,
      [controllerManager, scheduler],
    );
    await waitFor('kube-proxy to sync', 30_000, async () => (await fetch('http://127.0.0.1:10256/healthz')).status === 200, [kubeProxy]);
    await waitFor('CoreDNS to resolve kubernetes.default', 30_000, () => resolves('kubernetes.default.svc.cluster.local', SERVICE_IP), [coredns]);
    phase('proxy+dns');

    return { dir, kubeconfig, connection, kube, kubectlBinary: bins.kubectl, logsDir, timings, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** True when the cluster DNS on the node IP answers `name` with `ip` (the test process's own resolver is the host's). */
async function resolves(name: string, ip: string): Promise<boolean> {
  const { Resolver } = await import('node:dns/promises');
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([NODE_IP]);
  return (await resolver.resolve4(name)).includes(ip);
}
