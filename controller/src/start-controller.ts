// Wires one controller together (source → snapshot store → discovery server, status reconciler,
// admin listener) for main.ts and for tests that run it in-process; returns a handle to stop it.

import type http from 'node:http';
import os from 'node:os';
import { createAdminServer } from './admin/index.ts';
import type { ControllerConfig } from './config/flags.ts';
import { ConvergenceTracker, DiscoveryServer, ProxyRegistry, ServingCertificate, SnapshotStore, trustIdentityClaims, type Authenticator } from './discovery/index.ts';
import { loadKubernetesMode } from './kubernetes-seam.ts';
import { DirectorySource, type RouteSource } from './sources/index.ts';
import { MemoryStatusSink, StatusReconciler, type StatusSink } from './status/index.ts';
import { createLogger, type Logger } from './telemetry/logger.ts';
import { ControllerMetrics, type SyncState } from './telemetry/metrics.ts';

export interface ControllerDeps {
  logger?: Logger;
  metrics?: ControllerMetrics;
  /** Replaces the source the config names (tests: a source whose first read they control). */
  source?: RouteSource;
  statusSink?: StatusSink;
  authenticate?: Authenticator;
  controllerId?: string;
  /** Directory source timing, for tests. */
  directoryWatch?: { debounceMs?: number; pollMs?: number };
  /** How often --grpc-tls-cert/--grpc-tls-key are read again; default 10 s. */
  tlsReloadIntervalMs?: number;
}

export interface RunningController {
  /** host:port the discovery server is bound to. */
  grpcAddress: string;
  adminUrl: string;
  /** Resolves once the source has been read and proxies are being answered; rejects if it cannot be. */
  ready: Promise<void>;
  store: SnapshotStore;
  registry: ProxyRegistry;
  server: DiscoveryServer;
  reconciler: StatusReconciler;
  statusSink: StatusSink;
  metrics: ControllerMetrics;
  /** Streams closed with UNAVAILABLE, listeners closed, source stopped. */
  shutdown(): Promise<void>;
}

export async function startController(config: ControllerConfig, deps: ControllerDeps = {}): Promise<RunningController> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel, component: 'controller' });
  const metrics = deps.metrics ?? new ControllerMetrics();
  const controllerId = deps.controllerId ?? os.hostname();
  // First: a certificate that cannot serve stops the start before anything listens or reads.
  const servingCertificate =
    config.grpcTls === undefined
      ? undefined
      : ServingCertificate.load(config.grpcTls, { logger, ...(deps.tlsReloadIntervalMs === undefined ? {} : { reloadIntervalMs: deps.tlsReloadIntervalMs }) });

  let source: RouteSource;
  let statusSink: StatusSink = deps.statusSink ?? new MemoryStatusSink();
  let authenticate: Authenticator = deps.authenticate ?? trustIdentityClaims;
  if (deps.source !== undefined) {
    source = deps.source;
  } else if (config.source.kind === 'directory') {
    source = new DirectorySource({
      dir: config.source.routesDir,
      ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
      logger,
      onRefused: () => metrics.reconcileFailed('source'),
      ...deps.directoryWatch,
    });
  } else {
    const mode = await loadKubernetesMode({
      ...(config.source.kubeconfig === undefined ? {} : { kubeconfig: config.source.kubeconfig }),
      ...(config.namespace === undefined ? {} : { namespace: config.namespace }),
      logger,
      metrics,
    });
    source = mode.source;
    statusSink = deps.statusSink ?? mode.statusSink;
    authenticate = deps.authenticate ?? mode.authenticate ?? trustIdentityClaims;
  }

  const store = new SnapshotStore({ source, batchWindowMs: config.batchWindowMs, logger, metrics });
  const registry = new ProxyRegistry();
  new ConvergenceTracker(store, registry, metrics);
  metrics.countProxiesWith(() => {
    const counts: Record<SyncState, number> = { SYNCED: 0, STALE: 0, NACKED: 0 };
    const translation = store.current;
    for (const proxy of registry.list()) counts[proxy.syncState(translation?.snapshotFor(proxy.namespace).version ?? '')]++;
    return counts;
  });
  const reconciler = new StatusReconciler({
    sink: statusSink,
    translation: () => store.current,
    proxies: () => registry.list(),
    logger,
    metrics,
    delayMs: Math.max(config.batchWindowMs, 10),
  });
  store.subscribe(() => reconciler.schedule());
  registry.onChange(() => reconciler.schedule());

  const server = new DiscoveryServer({ store, registry, authenticate, ackTimeoutMs: config.ackTimeoutMs, controllerId, metrics, logger });
  let stopping = false;
  const admin = createAdminServer({
    metrics,
    notReadyReason: () => (stopping ? 'shutting down' : store.isReady ? undefined : `routes not read yet from ${source.description}`),
    debugStatus: () => ({
      controllerId,
      ready: store.isReady && !stopping,
      source: source.description,
      version: store.current?.version ?? '',
      routes: (statusSink instanceof MemoryStatusSink ? statusSink.entries() : reconciler.published()).map(([key, status]) => ({ key, status })),
      proxies: server.proxyStatuses(),
      ...(source instanceof DirectorySource ? { refusedFiles: source.refusedFiles() } : {}),
    }),
  });

  let grpcBound: { host: string; port: number };
  let adminBound: { host: string; port: number };
  try {
    grpcBound = await server.listen(config.grpcListen.host, config.grpcListen.port, servingCertificate?.serverCredentials()).catch((err: unknown) => {
      throw listenFailure('--grpc-listen', config.grpcListen, err);
    });
    adminBound = await listen(admin, config.adminListen.host, config.adminListen.port).catch((err: unknown) => {
      throw listenFailure('--admin-listen', config.adminListen, err);
    });
  } catch (err) {
    await server.shutdown(0);
    servingCertificate?.close();
    admin.close();
    throw err;
  }
  const grpcAddress = `${hostForUrl(grpcBound.host)}:${grpcBound.port}`;
  const adminUrl = `http://${hostForUrl(adminBound.host)}:${adminBound.port}`;
  const authenticated = authenticate !== trustIdentityClaims;
  if (!authenticated) {
    logger.log(
      'warn',
      `discovery streams are unauthenticated${servingCertificate === undefined ? ' and plaintext' : ''}: each proxy is served the namespace it claims; expose --grpc-listen only on loopback or a trusted network`,
      { grpcAddress },
    );
  } else if (servingCertificate === undefined) {
    // Only --insecure-grpc gets here (flags.ts refuses Kubernetes mode without TLS otherwise).
    logger.log(
      'warn',
      'INSECURE: --insecure-grpc serves route discovery in plaintext: proxies\' service-account tokens and route tables cross the network unencrypted and can be read or replayed; use it only where the network itself is encrypted (a mesh with mTLS) or on loopback',
      { grpcAddress },
    );
  }
  // Last: the line that says the controller is up comes after every warning about how it is up.
  logger.log('info', 'controller listening', {
    grpcAddress,
    adminUrl,
    source: source.description,
    controllerId,
    grpcTls: servingCertificate === undefined ? 'off (plaintext)' : servingCertificate.describe(),
    proxyAuthentication: authenticated ? 'service-account token (TokenReview), namespace from the token' : 'none (the claimed namespace is served)',
  });

  // Listening first, reading second: proxies may connect at once and wait for the first read (rule 1).
  const ready = store.start().then(() => {
    reconciler.reconcile();
  });
  // The caller awaits `ready`; this keeps a failure before it does from counting as unhandled.
  ready.catch(() => undefined);

  return {
    grpcAddress,
    adminUrl,
    ready,
    store,
    registry,
    server,
    reconciler,
    statusSink,
    metrics,
    async shutdown() {
      if (stopping) return;
      stopping = true;
      reconciler.stop();
      store.stop();
      await server.shutdown();
      servingCertificate?.close();
      await source.stop();
      admin.closeAllConnections();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      logger.log('info', 'controller stopped');
    },
  };
}

function listen(server: http.Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('listener has no TCP address'));
      else resolve({ host: address.address, port: address.port });
    });
  });
}

/** Names the address and the flag that set it: a bare EADDRINUSE does not say which listener. */
function listenFailure(flag: string, address: { host: string; port: number }, err: unknown): Error {
  const text = String((err as Error).message ?? err);
  const code = (err as NodeJS.ErrnoException).code ?? /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(text)?.[1];
  const why =
    code === 'EADDRINUSE'
      ? 'the address is already in use; stop what holds it or choose another port'
      : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
        ? 'no such local address; use an address of this host, e.g. 0.0.0.0 or 127.0.0.1'
        : code === 'EACCES'
          ? 'permission denied; ports below 1024 need privileges, choose a higher port'
          : text;
  return new Error(`cannot listen on ${hostForUrl(address.host)}:${address.port} (${flag}): ${why}`, { cause: err });
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
