// A real etcd + kube-apiserver on loopback for cluster tests, started the way controller-runtime's
// envtest does it, with keys and an admin token made in Node (no openssl, no Docker, no kubelet).

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetch } from 'undici';
import { locateBinaries, type ControlPlaneBinaries } from './binaries.ts';
import { KubeHttp, type KubeConnection } from './kube-http.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { ManagedProcess } from './managed-process.ts';
import { createRunDir, releaseRunDir, retainUntilNextRun } from './run-dirs.ts';
import { createServiceAccountToken, type ServiceAccountTokenOptions } from './service-account-tokens.ts';

export interface ControlPlaneOptions {
  /** Binaries to run instead of locateBinaries() (env FHIRMESH_KUBE_APISERVER / FHIRMESH_ETCD, else the build cache). */
  binaries?: ControlPlaneBinaries;
  /** Added after the default kube-apiserver flags; a repeated flag overrides the default one. */
  apiserverFlags?: string[];
  /** Added after the default etcd flags. */
  etcdFlags?: string[];
  /** Audiences kube-apiserver accepts in service-account tokens, besides its issuer. Default ['fhirmesh']. */
  apiAudiences?: string[];
  /** How long etcd plus kube-apiserver may take to become ready. Default 60 s, or FHIRMESH_CONTROL_PLANE_START_TIMEOUT_MS. */
  startTimeoutMs?: number;
  /** Keep the temp dir (logs, certificates, kubeconfig) after stop() and exit; also FHIRMESH_KEEP_CONTROL_PLANE=1. */
  keepDir?: boolean;
}

export interface RestartOptions {
  /** How to stop the running kube-apiserver: SIGTERM (graceful, default) or SIGKILL (a crash). */
  signal?: NodeJS.Signals;
  /** Time with no apiserver listening before the new one starts, so clients see refused connections. */
  downtimeMs?: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port>; stays the same across restartApiserver(). */
  url: string;
  kubeconfigPath: string;
  /** PEM the apiserver's serving certificate chains to (its self-signed apiserver.crt). */
  caPem: string;
  /** Bearer token of user "admin" in group system:masters. */
  adminToken: string;
  /** gitVersion from /version, e.g. v1.37.1. */
  version: string;
  /** url + caPem + adminToken, the plain-data form tests receive from global setup. */
  connection: KubeConnection;
  serviceAccountIssuer: string;
  /** PKCS#8 PEM of the key kube-apiserver signs service-account tokens with (tests mint tokens it must refuse). */
  serviceAccountSigningKeyPath: string;
  etcdUrl: string;
  /** Temp dir holding logs, certificates, keys and the kubeconfig. */
  dir: string;
  logs: { etcd: string; apiserver: string };
  /** Stops kube-apiserver and etcd and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops kube-apiserver and starts it again on the same port, certificate and etcd; resolves when ready. */
  restartApiserver(options?: RestartOptions): Promise<void>;
  /** A service-account token via the TokenRequest API; creates the ServiceAccount if it is missing. */
  createToken(serviceAccount: string, options?: ServiceAccountTokenOptions): Promise<string>;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const PORT_ATTEMPTS = 3;

/** Starts etcd and kube-apiserver and resolves once /readyz answers ok and the default namespace exists. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = options.binaries ?? locateBinaries();
  const startTimeoutMs =
    options.startTimeoutMs ?? (Number(process.env['FHIRMESH_CONTROL_PLANE_START_TIMEOUT_MS']) || DEFAULT_START_TIMEOUT_MS);
  const keepDir = options.keepDir ?? process.env['FHIRMESH_KEEP_CONTROL_PLANE'] === '1';
  const deadline = Date.now() + startTimeoutMs;

  const dir = createRunDir(keepDir);
  const files = {
    etcdData: path.join(dir, 'etcd-data'),
    etcdLog: path.join(dir, 'etcd.log'),
    apiserverLog: path.join(dir, 'kube-apiserver.log'),
    certDir: path.join(dir, 'apiserver-certs'),
    saPublicKey: path.join(dir, 'sa-signer.pub'),
    saPrivateKey: path.join(dir, 'sa-signer.key'),
    tokens: path.join(dir, 'tokens.csv'),
    kubeconfig: path.join(dir, 'kubeconfig'),
  };

  let etcd: ManagedProcess | undefined;
  let apiserver: ManagedProcess | undefined;
  let client: KubeHttp | undefined;

  try {
    const adminToken = crypto.randomBytes(24).toString('hex');
    writeServiceAccountKeys(files.saPublicKey, files.saPrivateKey);
    // Static token file: token,user,uid,"groups". system:masters bypasses RBAC.
    fs.writeFileSync(files.tokens, `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    const etcdStarted = await startOnFreePorts(2, ([clientPort, peerPort]) => {
      const etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      const args = [
        '--name=fhirmesh-test',
        `--data-dir=${files.etcdData}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=fhirmesh-test=${peerUrl}`,
        ...(supportsFlag(binaries.etcd, '--unsafe-no-fsync') ? ['--unsafe-no-fsync=true'] : []),
        ...(options.etcdFlags ?? []),
      ];
      etcd = ManagedProcess.start('etcd', binaries.etcd, args, files.etcdLog);
      return { process: etcd, etcdUrl };
    }, async (started) => {
      await waitUntil(started.process, deadline, 'etcd to answer /health', async () => {
        const response = await fetch(`${started.etcdUrl}/health`);
        const body = (await response.json()) as { health?: unknown };
        return response.status === 200 && body.health === 'true';
      });
    });
    const etcdUrl = etcdStarted.etcdUrl;

    let apiserverArgs: string[] = [];
    let caPem = '';
    const apiserverStarted = await startOnFreePorts(1, ([securePort]) => {
      const url = `https://127.0.0.1:${securePort}`;
      const issuer = url;
      apiserverArgs = [
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${files.certDir}`,
        `--secure-port=${securePort}`,
        '--bind-address=127.0.0.1',
        // kube-apiserver otherwise advertises the default route's address, where nothing listens (it
        // binds loopback only), and exits on hosts without a default route. Loopback is refused
        // unless the endpoint reconciler, which would publish it on the "kubernetes" Service, is off.
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        // No controller-manager creates the "default" ServiceAccount, so this plugin would reject every pod.
        '--disable-admission-plugins=ServiceAccount',
        `--token-auth-file=${files.tokens}`,
        `--service-account-issuer=${issuer}`,
        `--service-account-key-file=${files.saPublicKey}`,
        `--service-account-signing-key-file=${files.saPrivateKey}`,
        `--api-audiences=${[issuer, ...(options.apiAudiences ?? ['fhirmesh'])].join(',')}`,
        ...(options.apiserverFlags ?? []),
      ];
      apiserver = ManagedProcess.start('kube-apiserver', binaries.kubeApiserver, apiserverArgs, files.apiserverLog);
      return { process: apiserver, url, issuer };
    }, async (started) => {
      const ready = await waitForApiserver(started.process, deadline, started.url, files.certDir, adminToken);
      client = ready.client;
      caPem = ready.caPem;
    });
    const { url, issuer } = apiserverStarted;
    const version = (await client!.json<{ gitVersion: string }>('GET', '/version')).gitVersion;
    // The bootstrap controller creates "default" a moment after /readyz; tests should not race it.
    await waitUntil(apiserverStarted.process, deadline, 'the default namespace to exist', async () => {
      return (await client!.request('GET', '/api/v1/namespaces/default')).status === 200;
    });
    writeKubeconfig(files.kubeconfig, { url, caPem, token: adminToken, name: 'fhirmesh-test' });

    const connection: KubeConnection = { url, caPem, token: adminToken };
    let stopped = false;
    const plane: ControlPlane = {
      url,
      kubeconfigPath: files.kubeconfig,
      caPem,
      adminToken,
      version,
      connection,
      serviceAccountIssuer: issuer,
      serviceAccountSigningKeyPath: files.saPrivateKey,
      etcdUrl,
      dir,
      logs: { etcd: files.etcdLog, apiserver: files.apiserverLog },

      async stop() {
        if (stopped) return;
        stopped = true;
        await client?.close();
        await apiserver?.stop();
        await etcd?.stop();
        releaseRunDir(dir);
      },

      async restartApiserver(restart: RestartOptions = {}) {
        if (stopped) throw new Error('restartApiserver() after stop(): start a new control plane instead');
        await apiserver?.stop(restart.signal ?? 'SIGTERM');
        if (restart.downtimeMs) await sleep(restart.downtimeMs);
        // The serving certificate stays in --cert-dir and is reused, so caPem and the kubeconfig stay valid.
        apiserver = ManagedProcess.start('kube-apiserver', binaries.kubeApiserver, apiserverArgs, files.apiserverLog);
        const restarted = await waitForApiserver(apiserver, Date.now() + startTimeoutMs, url, files.certDir, adminToken);
        await restarted.client.close();
        if (restarted.caPem !== caPem) throw new Error(`kube-apiserver regenerated its serving certificate in ${files.certDir} on restart`);
      },

      createToken(serviceAccount, tokenOptions) {
        return createServiceAccountToken(client!, serviceAccount, tokenOptions);
      },
    };
    return plane;
  } catch (err) {
    await client?.close();
    await apiserver?.stop('SIGKILL');
    await etcd?.stop('SIGKILL');
    // Keep the logs for a look; drop etcd's data, which sits in RAM on tmpfs.
    fs.rmSync(files.etcdData, { recursive: true, force: true });
    retainUntilNextRun(dir);
    if (err instanceof Error) err.message += `\n(control plane logs kept in ${dir})`;
    throw err;
  }
}

/** RSA key pair for signing service-account tokens; kube-apiserver reads PKCS#8 and SPKI PEM. */
function writeServiceAccountKeys(publicKeyFile: string, privateKeyFile: string): void {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  fs.writeFileSync(publicKeyFile, publicKey);
  fs.writeFileSync(privateKeyFile, privateKey, { mode: 0o600 });
}

const helpText = new Map<string, string>();

/** Whether `binary --help` mentions `flag`; cached per binary. */
function supportsFlag(binary: string, flag: string): boolean {
  let text = helpText.get(binary);
  if (text === undefined) {
    try {
      text = execFileSync(binary, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // Some versions print help to stderr or exit non-zero; what they printed still counts.
      const e = err as { stdout?: string; stderr?: string };
      text = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    helpText.set(binary, text);
  }
  return text.includes(flag);
}

/** Loopback ports that were free a moment ago: held together so one call never returns a duplicate. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<net.Server>((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/**
 * Starts a process on fresh free ports and waits for it to be ready; starts it again on new ports when
 * it lost the race for one (another process bound it between freePorts() and the start), which shows
 * as an exit logging "address already in use".
 */
async function startOnFreePorts<T extends { process: ManagedProcess }>(
  count: number,
  start: (ports: number[]) => T,
  ready: (started: T) => Promise<void>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const started = start(await freePorts(count));
    try {
      await ready(started);
      return started;
    } catch (err) {
      const lostPort = started.process.exitStatus && started.process.tail(20).includes('address already in use');
      if (!lostPort || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

/** Polls `check` every 100 ms until it returns true; fails fast if `process` exits, or at `deadline`. */
async function waitUntil(process: ManagedProcess, deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (process.exitStatus) throw startupError(process, `${process.describeState()} while waiting for ${what}`);
    let lastError = '';
    try {
      if (await check()) return;
    } catch (err) {
      lastError = errorText(err);
    }
    if (Date.now() > deadline) {
      throw startupError(process, `gave up waiting for ${what} (${process.describeState()}${lastError ? `; last error: ${lastError}` : ''})`);
    }
    await sleep(100);
  }
}

/** Waits for the self-generated serving certificate, then for /readyz to answer ok over TLS with it. */
async function waitForApiserver(
  process: ManagedProcess,
  deadline: number,
  url: string,
  certDir: string,
  token: string,
): Promise<{ client: KubeHttp; caPem: string }> {
  let client: KubeHttp | undefined;
  let caPem = '';
  await waitUntil(process, deadline, `kube-apiserver /readyz at ${url}`, async () => {
    // The file may be half-written on the first reads; a failed handshake just means another round.
    const pem = fs.readFileSync(path.join(certDir, 'apiserver.crt'), 'utf8');
    if (pem !== caPem || !client) {
      await client?.close();
      caPem = pem;
      client = new KubeHttp({ url, caPem, token });
    }
    const response = await client.request('GET', '/readyz');
    if (response.status !== 200) {
      const failing = String(response.body).split('\n').filter((line) => line.startsWith('[-]'));
      throw new Error(`/readyz answered ${response.status}, failing: ${failing.join(' ') || String(response.body).slice(0, 200)}`);
    }
    return true;
  });
  return { client: client!, caPem };
}

function startupError(process: ManagedProcess, summary: string): Error {
  return new Error(`control plane did not start: ${summary}\n--- last lines of ${process.logPath} ---\n${process.tail()}`);
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}
